"""cpudist against libbpf-tools' cpudist on a helper that sleeps a known number of
times: off-CPU (-O) samples equal; on-CPU, ours counts every slice (bcc's meaning)
where libbpf-tools' counts only the slices that ended in a preemption."""

from __future__ import annotations

import pytest
from oracle import SLEEPER, assert_same_samples, helper, oracle, parse_hists
from tool_proc import ToolProcess


def _both(args: list[str], attach: str = "auto") -> tuple[dict, dict, int]:
    with helper(SLEEPER) as h:
        pid = str(h.pid)
        with ToolProcess(["cpudist", "-p", pid, "--attach", attach, *args]) as ours, \
                oracle("cpudist", "-p", pid, *args, header="Tracing") as theirs:
            assert h.step() == "done"
            for tracer in (ours, theirs):
                assert tracer.stop() == 0
        return parse_hists(ours.stdout), parse_hists(theirs.stdout), h.pid


@pytest.mark.parametrize("attach,args", [("auto", ["-O"]), ("raw_tp", ["-O", "-P"])])
def test_offcpu_equal_libbpf_tools(need_root: None, attach: str, args: list[str]) -> None:
    mine, want, pid = _both(args, attach)
    assert list(mine) == list(want)
    for title in want:
        assert_same_samples(mine[title], want[title])
        assert sum(mine[title].values()) >= 200
    if "-P" in args:
        assert list(mine) == [f"pid = {pid} python"]


def test_oncpu_counts_every_slice(need_root: None) -> None:
    mine, want, _ = _both([])
    ours = sum(mine.get("", {}).values())
    theirs = sum(want.get("", {}).values())
    # every sleep ends a slice: ours sees each; libbpf-tools' only the preempted ones
    assert ours >= 200
    assert ours > theirs
