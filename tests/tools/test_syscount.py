"""syscount against libbpf-tools' syscount on a helper making known numbers of system
calls (both trace it by PID, attached before it starts and stopped while it waits),
per syscall and per process, each attach method; -x/-e/-L/--json on their own."""

from __future__ import annotations

import textwrap

import pytest
from oracle import helper, oracle
from tool_proc import ToolProcess

CALLER = textwrap.dedent("""
    import os, sys
    sys.stdin.readline()
    for _ in range(1000):
        os.getppid()
    for _ in range(300):
        os.umask(0o22)
    for _ in range(200):
        try:
            os.stat("/nonexistent-cf-syscount")
        except FileNotFoundError:
            pass
    print("done", flush=True)
    sys.stdin.readline()
""")


def _table(lines: list[str]) -> dict[str, int]:
    """NAME -> COUNT from the last table printed (header line to the blank line)."""
    rows: dict[str, int] = {}
    for line in lines:
        if line.startswith(("SYSCALL", "PID ")):
            rows = {}
        elif line.strip() and not line.startswith(("[", "Tracing")):
            *name, count = line.split()
            rows[" ".join(name)] = int(count)
    return rows


def _run_both(args: list[str], attach: str = "auto") -> tuple[dict[str, int], dict[str, int],
                                                              int]:
    with helper(CALLER) as h:
        pid = str(h.pid)
        with ToolProcess(["syscount", "-p", pid, "-T", "200", "--attach", attach, *args]) \
                as ours, oracle("syscount", "-p", pid, "-T", "200", *args,
                                         header="Tracing") as theirs:
            assert h.step() == "done"
            for tracer in (ours, theirs):
                assert tracer.stop() == 0
        return _table(ours.stdout), _table(theirs.stdout), h.pid


@pytest.mark.parametrize("attach", ["auto", "tp_btf", "raw_tp", "tracepoint"])
def test_counts_per_syscall_equal_libbpf_tools(need_root: None, attach: str) -> None:
    mine, want, _ = _run_both([], attach)
    assert mine == want
    assert mine["getppid"] == 1000 and mine["umask"] == 300
    assert mine["newfstatat"] >= 200        # os.stat(), plus the interpreter's own


def test_counts_per_process_and_failures_equal_libbpf_tools(need_root: None) -> None:
    mine, want, pid = _run_both(["-P"])
    assert mine == want
    (who,) = mine
    assert who.split()[0] == str(pid)
    mine, want, _ = _run_both(["-x"])
    assert mine == want
    assert mine["newfstatat"] == 200 and "getppid" not in mine


def test_errno_latency_json(need_root: None) -> None:
    with helper(CALLER) as h, ToolProcess(["syscount", "-p", str(h.pid), "-e", "ENOENT",
                                           "-L", "--json"]) as ours:
        assert h.step() == "done"
        assert ours.stop() == 0
        rows = ours.json_records()
    assert [(r["syscall"], r["count"]) for r in rows] == [("newfstatat", 200)]
    assert list(rows[0]) == ["time", "syscall", "nr", "count", "total_ns"]
    assert rows[0]["total_ns"] > 0
