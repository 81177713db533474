"""readhist picks the best attach method this kernel has and counts reads exactly.

A forked child makes READS reads of SIZE bytes from /dev/zero once the
programs are attached (it waits on a pipe first); its histogram must show all
of them in SIZE's log2 slot. The pipe read that releases it may or may not be
seen (an exit probe misses a call already in flight when it was attached), so
it is allowed for but not required.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest
from coreframe_plugins.readhist import ReadHist, decode_entries, probe_methods
from kernkit import Expect

from coreframe import features
from coreframe.errors import ToolError
from coreframe.options import parse

pytestmark = pytest.mark.kernel

SIZE = 3000
READS = 40


def _tool(pid: int) -> ReadHist:
    """The tool as ``coreframe run readhist -p PID`` would build it."""
    opts = parse(ReadHist.params(), ["-p", str(pid)])
    assert opts is not None
    return ReadHist(**opts)


def _reader_child() -> tuple[int, int]:
    """Fork a child that reads once released; returns (pid, write end of its pipe)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.close(w)
            zero = os.open("/dev/zero", os.O_RDONLY)
            os.read(r, 1)
            for _ in range(READS):
                os.read(zero, SIZE)
            code = 0
        finally:
            os._exit(code)
    os.close(r)
    return pid, w


def _run(methods: list[str]) -> str:
    """Load readhist with ``methods``, run the workload, check the histogram."""
    pid, w = _reader_child()
    try:
        obj, method = _tool(pid)._load(methods)
    except BaseException:
        os.close(w)
        os.waitpid(pid, 0)
        raise
    try:
        os.write(w, b"x")
        os.close(w)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        rows = decode_entries(obj.maps.hists.raw.items())  # raw: decode_entries takes bytes
    finally:
        obj.close()
    assert [h.pid for h in rows] == [pid]
    h = rows[0]
    assert h.slots[SIZE.bit_length()] == READS
    assert h.reads in (READS, READS + 1)
    assert h.bytes in (READS * SIZE, READS * SIZE + 1)
    assert h.errors == 0
    return method


def test_readhist_auto_picks_best_method(expect_feature: Expect,
                                        record_property: Callable[[str, object], None]
                                        ) -> None:
    best = probe_methods()[0]
    if expect_feature(features.has_trampoline(), "BPF trampolines"):
        assert best == "fexit"
    assert _run(probe_methods()) == best
    record_property("tool", f"readhist (auto: {best})")


@pytest.mark.parametrize("method", ["kretprobe", "tracepoint"])
def test_readhist_without_fexit(method: str, expect_feature: Expect,
                                record_property: Callable[[str, object], None]) -> None:
    """With fexit disabled readhist falls back to kretprobe; tracepoints work everywhere."""
    methods = ["kretprobe", "tracepoint"] if method == "kretprobe" else ["tracepoint"]
    if method == "kretprobe" and not expect_feature(features.has_kprobe(), "kprobes"):
        with pytest.raises(ToolError, match="kprobe"):
            _tool(os.getpid())._load(["kretprobe"])
        methods = ["kretprobe", "tracepoint"]
        assert _run(methods) == "tracepoint"
        record_property("tool", "readhist (kretprobe unavailable: tracepoint)")
        return
    assert _run(methods) == method
    record_property("tool", f"readhist --attach {method}")
