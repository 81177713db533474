"""Ring buffer and perf buffer deliver every record, in order, on this kernel.

tests/objects/kern_bufs.bpf.c sends {tgid, N} through both transports for each
getpgid(N) this process makes; the readers must hand back exactly those N.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from kernkit import OBJECTS, Expect

import coreframe
from coreframe import features
from coreframe.perf import PerfBuffer
from coreframe.ringbuf import RingBuffer

pytestmark = pytest.mark.kernel

OBJ = OBJECTS / "kern_bufs.bpf.o"
EVENT = struct.Struct("<IIQ")
SEQS = [1_000_000 + i for i in range(50)]
MAX_POLLS = 200


@contextmanager
def _loaded() -> Iterator[coreframe.object.loader.Object]:
    spec = coreframe.open(str(OBJ))
    spec.rodata.targ_tgid = os.getpid()
    with spec.load() as obj:
        obj.attach()
        yield obj


def _trigger() -> None:
    for seq in SEQS:
        try:
            os.getpgid(seq)
        except ProcessLookupError:
            pass


def _drain(poll: Callable[[float], object], got: list[int]) -> None:
    for _ in range(MAX_POLLS):
        if len(got) >= len(SEQS):
            return
        poll(0.1)


def _decode(data: memoryview | bytes, got: list[int]) -> None:
    tgid, _pad, seq = EVENT.unpack_from(data)
    assert tgid == os.getpid()
    got.append(seq)


def test_ring_buffer_delivers(expect_feature: Expect) -> None:
    if not expect_feature(features.has_ringbuf(), "BPF ring buffer"):
        pytest.skip("no ring buffer on this kernel")
    got: list[int] = []
    with _loaded() as obj, RingBuffer(obj.maps.ring, lambda rec: _decode(rec, got)) as rb:
        _trigger()
        _drain(rb.poll, got)
    assert got == SEQS


def test_perf_buffer_delivers() -> None:
    got: list[int] = []
    lost: list[int] = []
    with _loaded() as obj, PerfBuffer(obj.maps.perf, callback=lambda rec: _decode(rec, got),
                                      lost_callback=lambda _cpu, n: lost.append(n),
                                      page_cnt=8) as pb:
        _trigger()
        _drain(pb.poll, got)
    assert not lost
    assert sorted(got) == SEQS
