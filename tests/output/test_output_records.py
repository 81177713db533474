"""RunContext.records against the real kernel: ring buffer and perf buffer maps deliver each
record once, in order, decoded as asked (records shorter than their type too: never
dropped); the loop ends by itself at --duration."""

from __future__ import annotations

import ctypes
import io
import os
from pathlib import Path

import pytest

import coreframe
from coreframe.tool import RunContext

OBJ = Path(__file__).resolve().parents[1] / "objects" / "kern_bufs.bpf.o"
BASE = 1_000_000  # getpgid(N) for N past pid_max: fails with ESRCH, the tracepoint still fires


class KernEvent(ctypes.Structure):
    _fields_ = [("tgid", ctypes.c_uint32), ("pad", ctypes.c_uint32), ("seq", ctypes.c_uint64)]


class TooBig(ctypes.Structure):
    _fields_ = [("event", KernEvent), ("more", ctypes.c_uint64)]


def _getpgid(n: int) -> None:
    try:
        os.getpgid(n)
    except ProcessLookupError:
        pass


def _drain_ring(obj) -> None:  # type: ignore[no-untyped-def]
    """Both maps get every record: what an earlier test left in the ring goes first."""
    with obj.maps.ring.reader() as r:
        for _ in r.poll_records(0):
            pass


@pytest.fixture(scope="module")
def obj():  # type: ignore[no-untyped-def]
    if os.geteuid() != 0:
        pytest.skip("needs root to load BPF programs")
    spec = coreframe.open(str(OBJ))
    spec.rodata.targ_tgid = os.getpid()
    with spec.load() as loaded:
        loaded.attach()
        yield loaded


@pytest.mark.parametrize("map_name", ["ring", "perf"])
def test_each_record_once_in_order(obj, map_name: str) -> None:  # type: ignore[no-untyped-def]
    want = [BASE + i for i in range(50)]
    _drain_ring(obj)
    ctx = RunContext(out=io.StringIO(), err=io.StringIO(), duration=1.0)
    reader = obj.maps[map_name].reader()
    try:
        for n in want:  # sent before the loop starts: the first poll finds them
            _getpgid(n)
        got = [ev.seq for ev in ctx.records(reader, KernEvent)
               if ev.tgid == os.getpid()]
    finally:
        reader.close()
    assert got == want
    assert ctx.err.getvalue() == ""


def test_bytes_without_a_type_and_short_records(obj) -> None:  # type: ignore[no-untyped-def]
    _drain_ring(obj)
    ctx = RunContext(out=io.StringIO(), err=io.StringIO(), duration=0.5)
    gen = ctx.records(obj.maps.ring)  # the reader is opened (and closed) by records()
    _getpgid(BASE + 7)
    raw = list(gen)
    assert KernEvent.from_buffer_copy(raw[0]).seq == BASE + 7 and len(raw[0]) == 16
    ctx = RunContext(out=io.StringIO(), err=io.StringIO(), duration=0.5)
    _drain_ring(obj)
    _getpgid(BASE + 8)
    _getpgid(BASE + 9)
    reader = obj.maps.ring.reader()
    try:
        # shorter than their type: decoded all the same (complete fields), never dropped
        got = list(ctx.records(reader, TooBig))
    finally:
        reader.close()
    assert [ev.event.seq for ev in got] == [BASE + 8, BASE + 9]
    assert ctx.err.getvalue() == ""


def test_a_type_name_is_looked_up_in_the_btf(obj) -> None:  # type: ignore[no-untyped-def]
    from coreframe.errors import Error, ToolError

    ctx = RunContext(out=io.StringIO(), err=io.StringIO(), duration=0.1)
    # a map knows its object's BTF: a struct missing from it is one clear error
    with pytest.raises(Error, match="no type 'struct kern_event'"):
        next(iter(ctx.records(obj.maps.ring, "struct kern_event")))
    # an open reader does not: the name needs btf=
    with obj.maps.ring.reader() as reader, pytest.raises(ToolError, match="btf=obj.btf"):
        next(iter(ctx.records(reader, "struct kern_event")))
