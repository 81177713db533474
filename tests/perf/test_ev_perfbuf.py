"""PerfBuffer against a real perf event array fed by a tracepoint program."""

from __future__ import annotations

import ctypes
import os

import evkit as K
import pytest

from coreframe import link as links
from coreframe.errors import MapError
from coreframe.perf import PerfBuffer, online_cpus
from coreframe.runtime.compat import zip_strict
from coreframe.sys import consts as C

pytestmark = [
    pytest.mark.kernel,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
]

_libc = ctypes.CDLL(None, use_errno=True)
SYS_getppid = 110


class Producer:
    """perf event array + tracepoint program on sys_enter_getppid (this process only)."""

    def __init__(self) -> None:
        ncpu = max(online_cpus()) + 1
        self.pa = K.map_create(C.BPF_MAP_TYPE_PERF_EVENT_ARRAY, 4, 4, ncpu)
        self.params = K.params_map()
        self.drops = K.counter_map()
        insns = K.perf_producer_insns(self.pa, self.params, self.drops, os.getpid())
        self.prog = K.Prog(K.prog_load(C.BPF_PROG_TYPE_TRACEPOINT, insns))
        self.link = links.attach_tracepoint(self.prog, "syscalls", "sys_enter_getppid")

    def emit(self, payload: bytes) -> None:
        K.stage(self.params, K.OP_EMIT, payload)
        _libc.syscall(SYS_getppid)

    @property
    def dropped(self) -> int:
        return K.lookup_u64(self.drops)

    def close(self) -> None:
        self.link.close()
        for fd in (self.prog.fd, self.pa, self.params, self.drops):
            fd.close()


@pytest.fixture
def producer():
    # One CPU keeps the records of the whole test in one per-CPU buffer, in order.
    old = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(old)})
    p = Producer()
    yield p
    p.close()
    os.sched_setaffinity(0, old)


def payload(i: int) -> bytes:
    n = 1 + (i * 29) % 203
    return (i.to_bytes(4, "little") * (n // 4 + 1))[:n]


def test_sequence_with_wraparound(producer):
    got: list[bytes] = []
    sent: list[bytes] = []

    cpus: set[int] = set()

    def cb(cpu: int, data: memoryview) -> None:
        cpus.add(cpu)
        got.append(bytes(data))

    with PerfBuffer(producer.pa, cb, page_cnt=1, with_cpu=True) as pb:
        assert pb.cpus == sorted(pb.cpus) and len(pb.cpus) >= 1
        for i in range(300):
            sent.append(payload(i))
            producer.emit(sent[-1])
            if i % 7 == 6:
                pb.poll(0)
        pb.consume()
        assert pb.lost == 0
    assert cpus == {min(os.sched_getaffinity(0))}
    assert producer.dropped == 0
    assert len(got) == len(sent)
    # Raw samples are padded so that size + the u32 length is 8-byte aligned.
    for g, s in zip_strict(got, sent):
        assert g[:len(s)] == s
        assert len(g) == ((len(s) + 4 + 7) & ~7) - 4


def test_overflow_reports_lost(producer):
    delivered = 0
    lost_calls: list[tuple[int, int]] = []

    def cb(data: memoryview) -> None:
        nonlocal delivered
        delivered += 1

    with PerfBuffer(producer.pa, cb, lambda cpu, n: lost_calls.append((cpu, n)),
                    page_cnt=1) as pb:
        produced = 0
        for _ in range(200):
            producer.emit(bytes(96))
            produced += 1
        pb.consume()
        # The kernel reports the loss with the next sample that fits.
        producer.emit(bytes(96))
        produced += 1
        pb.consume()
        assert pb.lost > 0
        assert sum(n for _, n in lost_calls) == pb.lost
        assert delivered + pb.lost == produced
        assert producer.dropped == pb.lost


def test_iterators_and_watermark(producer):
    class Ev(ctypes.Structure):
        _fields_ = [("seq", ctypes.c_uint32), ("pad", ctypes.c_uint32), ("v", ctypes.c_uint64)]

    with PerfBuffer(producer.pa, page_cnt=4, watermark=1) as pb:
        for i in range(20):
            producer.emit(bytes(Ev(i, 0, i * 7)))
        recs = [bytes(r) for r in pb.poll_records(0)]
        assert pb.current_cpu in pb.cpus
        assert [Ev.from_buffer_copy(r).seq for r in recs] == list(range(20))
        for i in range(20, 50):
            producer.emit(bytes(Ev(i, 0, i * 7)))
        evs = list(pb.read(Ev, 5))
        assert [e.seq for e in evs] == list(range(20, 50))
        assert all(e.v == e.seq * 7 for e in evs)


def test_ctype_callback(producer):
    class Ev(ctypes.Structure):
        _fields_ = [("seq", ctypes.c_uint32)]

    seqs: list[int] = []
    with PerfBuffer(producer.pa, lambda e: seqs.append(e.seq), ctype=Ev, page_cnt=2) as pb:
        for i in range(12):
            producer.emit(bytes(Ev(i)))
        assert pb.consume() == 12
    assert seqs == list(range(12))


def test_poll_blocks_until_data(producer):
    got: list[bytes] = []
    with PerfBuffer(producer.pa, lambda d: got.append(bytes(d[:4])), page_cnt=2) as pb:
        assert pb.poll(0.01) == 0
        producer.emit(b"ping")
        assert pb.poll(5) == 1
    assert got == [b"ping"]


def test_bad_arguments(producer):
    arr = K.counter_map()
    try:
        with pytest.raises(MapError, match="not a BPF_MAP_TYPE_PERF_EVENT_ARRAY"):
            PerfBuffer(arr, lambda d: None)
    finally:
        arr.close()
    with pytest.raises(MapError, match="power of 2"):
        PerfBuffer(producer.pa, lambda d: None, page_cnt=3)
    pb = PerfBuffer(producer.pa, lambda d: None, page_cnt=1)
    pb.close()
    pb.close()
    with pytest.raises(MapError, match="closed"):
        pb.poll(0)


def test_long_backlog_frees_space_as_it_is_read(producer):
    """data_tail is published chunk by chunk: samples produced while a backlog is
    being read fit into the space already read."""
    got: list[bytes] = []

    def cb(data: memoryview) -> None:
        got.append(bytes(data))
        if data[0] == 1:  # first generation: produce a second one meanwhile
            producer.emit(b"\x02" + bytes(data[1:]))

    # 196-byte payloads make 208-byte records; 16 pages (64 KiB) are published every 4 KiB
    first = [b"\x01" + i.to_bytes(4, "little") * 48 + b"\0\0\0" for i in range(250)]
    with PerfBuffer(producer.pa, cb, page_cnt=16) as pb:
        for rec in first:
            producer.emit(rec)
        assert pb.consume() == 500
        assert pb.lost == 0
    assert producer.dropped == 0
    assert got == first + [b"\x02" + r[1:] for r in first]


def test_with_cpu_ctype_and_wrapping_records(producer):
    class Ev(ctypes.Structure):
        _fields_ = [("seq", ctypes.c_uint32), ("pad", ctypes.c_uint32)]

    seen: list[tuple[int, int]] = []
    with PerfBuffer(producer.pa, lambda cpu, e: seen.append((cpu, e.seq)), page_cnt=1,
                    ctype=Ev, with_cpu=True) as pb:
        for i in range(400):
            # 20..220-byte samples: some of them straddle the end of the one data page
            producer.emit(bytes(Ev(i, 0)) + bytes(12 + (i * 37) % 200))
            if i % 9 == 8:
                pb.consume()
        pb.consume()
        assert pb.lost == 0
    assert [s for _, s in seen] == list(range(400))
    assert {c for c, _ in seen} == os.sched_getaffinity(0)  # the fixture pinned one CPU

