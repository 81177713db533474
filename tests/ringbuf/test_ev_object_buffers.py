"""End to end: a clang-built object (tests/objects/ev_bench.bpf.c) loaded by coreframe,
auto-attached from its SEC() name, read through both buffer readers."""

from __future__ import annotations

import ctypes
import os
import shutil

import pytest

from coreframe.build import compile_bpf
from coreframe.perf import PerfBuffer
from coreframe.ringbuf import RingBuffer

pytestmark = [
    pytest.mark.kernel,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
]

SRC = os.path.join(os.path.dirname(__file__), "..", "objects", "ev_bench.bpf.c")
_libc = ctypes.CDLL(None, use_errno=True)
SYS_getppid = 110


class Event(ctypes.Structure):
    _fields_ = [("seq", ctypes.c_uint64), ("pid", ctypes.c_uint32), ("cpu", ctypes.c_uint32),
                ("a", ctypes.c_uint64), ("b", ctypes.c_uint64)]


@pytest.fixture(scope="module")
def bench_obj(tmp_path_factory):
    if not shutil.which("clang"):
        pytest.skip("clang not installed")
    out = tmp_path_factory.mktemp("obj") / "ev_bench.bpf.o"
    compile_bpf(SRC, out)
    return str(out)


def _load(path: str, use_perf: int, per_hit: int):
    import coreframe

    obj = coreframe.open(path).load()
    cfg = (ctypes.c_uint32 * 4)(os.getpid(), per_hit, use_perf, 0)
    obj.maps["config"].update(0, bytes(cfg))
    return obj


def _stat(obj, idx: int) -> int:
    # stats has BTF types (__u32 -> __u64): lookups return ints
    value = obj.maps["stats"].lookup(idx)
    assert isinstance(value, int)
    return value


@pytest.mark.parametrize("use_perf", [0, 1], ids=["ringbuf", "perf"])
def test_object_producer_to_reader(bench_obj, use_perf):
    obj = _load(bench_obj, use_perf, 3)
    try:
        links = obj.attach()
        assert [link.kind for link in links] == ["tracepoint"]
        events: list[Event] = []
        if use_perf:
            reader = PerfBuffer(obj.maps["pb"], events.append, ctype=Event, page_cnt=8)
        else:
            reader = RingBuffer(obj.maps["rb"], events.append, ctype=Event)
        with reader:
            for _ in range(10):
                _libc.syscall(SYS_getppid)
            while len(events) < 30 and reader.poll(5):
                pass
        assert [e.seq for e in events] == [0, 1, 2] * 10
        assert {e.pid for e in events} == {os.getpid()}
        assert (events[0].a, events[0].b) == (1, 2)
        assert _stat(obj, 0) == 30 and _stat(obj, 1) == 0
    finally:
        obj.close()
