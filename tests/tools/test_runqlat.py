"""runqlat against libbpf-tools' runqlat on a helper that sleeps a known number of
times (each sleep ends in a wakeup, so one run-queue sample each, plus preemptions);
both trace it by PID and must see the same samples."""

from __future__ import annotations

import pytest
from oracle import SLEEPER, assert_same_samples, helper, oracle, parse_hists
from tool_proc import ToolProcess


@pytest.mark.parametrize("attach,args", [("auto", []), ("raw_tp", []), ("auto", ["-P"]),
                                         ("tp_btf", ["-L"])])
def test_samples_equal_libbpf_tools(need_root: None, attach: str, args: list[str]) -> None:
    with helper(SLEEPER) as h:
        pid = str(h.pid)
        with ToolProcess(["runqlat", "-p", pid, "--attach", attach, *args]) as ours, \
                oracle("runqlat", "-p", pid, *args, header="Tracing") as theirs:
            assert h.step() == "done"
            for tracer in (ours, theirs):
                assert tracer.stop() == 0
        mine, want = parse_hists(ours.stdout), parse_hists(theirs.stdout)
    assert list(mine) == list(want)
    if args:
        (title,) = mine
        assert title == f"{'pid' if args == ['-P'] else 'tid'} = {pid} python"
    for title in want:
        assert_same_samples(mine[title], want[title])
        # most sleeps leave the CPU and come back through the run queue; a wakeup that
        # catches the task before it left (ttwu_runnable) makes no sample, in either tool
        assert sum(mine[title].values()) >= 200


def test_json_and_grouping_conflict(need_root: None) -> None:
    with helper(SLEEPER) as h, ToolProcess(["runqlat", "-p", str(h.pid), "-P", "--json"]) as t:
        assert h.step() == "done"
        assert t.stop() == 0
        (doc,) = t.json_records()
    assert (doc["pid"], doc["comm"], doc["unit"]) == (h.pid, "python", "usecs")
    assert sum(r["count"] for r in doc["hist"]) >= 200
    import subprocess

    from tool_proc import COREFRAME
    bad = subprocess.run([COREFRAME, "run", "runqlat", "-P", "-L"], capture_output=True,
                         text=True)
    assert bad.returncode == 2 and "-P and -L cannot be used together" in bad.stderr
