"""RingBuffer against a real BPF ring buffer fed by a BPF_PROG_TYPE_SYSCALL producer."""

from __future__ import annotations

import ctypes
import os

import evkit as K
import pytest

from coreframe.errors import MapError
from coreframe.ringbuf import RingBuffer
from coreframe.sys import consts as C

pytestmark = [
    pytest.mark.kernel,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
]


class Producer:
    """A ring buffer map plus a program that emits/discards staged records into it."""

    def __init__(self, size: int = 4096) -> None:
        self.rb = K.map_create(C.BPF_MAP_TYPE_RINGBUF, 0, 0, size)
        self.params = K.params_map()
        self.drops = K.counter_map()
        self.prog = K.prog_load(C.BPF_PROG_TYPE_SYSCALL,
                                K.ringbuf_producer_insns(self.rb, self.params, self.drops))

    def emit(self, payload: bytes) -> None:
        K.stage(self.params, K.OP_EMIT, payload)
        K.run_syscall_prog(self.prog)

    def discard(self) -> None:
        K.stage(self.params, K.OP_DISCARD)
        K.run_syscall_prog(self.prog)

    @property
    def dropped(self) -> int:
        return K.lookup_u64(self.drops)

    def close(self) -> None:
        for fd in (self.prog, self.rb, self.params, self.drops):
            fd.close()


@pytest.fixture
def producer():
    p = Producer()
    yield p
    p.close()


def payload(i: int) -> bytes:
    """Variable sizes (1..337 bytes, not multiples of 8) with recognisable content."""
    n = 1 + (i * 53) % 337
    return (i.to_bytes(4, "little") * (n // 4 + 1))[:n]


def test_sequence_with_discards_and_wraparound(producer):
    got: list[bytes] = []
    sent: list[bytes] = []
    with RingBuffer(producer.rb, lambda rec: got.append(bytes(rec))) as rb:
        for i in range(400):
            if i % 5 == 2:
                producer.discard()
            else:
                sent.append(payload(i))
                producer.emit(sent[-1])
            if i % 6 == 5:
                rb.poll(0)
        assert rb.consume() >= 0
    assert producer.dropped == 0
    assert got == sent
    # 400 records of ~170 bytes went through a 4096-byte ring: it wrapped many times.
    assert sum(len(s) + 8 for s in sent) > 10 * 4096


def test_poll_records_and_read_ctype(producer):
    class Ev(ctypes.Structure):
        _fields_ = [("seq", ctypes.c_uint32), ("val", ctypes.c_uint64)]

    with RingBuffer(producer.rb) as rb:
        for i in range(40):
            producer.emit(bytes(Ev(i, i * 1000)))
        seen = [bytes(r) for r in rb.poll_records(0)]
        assert seen == [bytes(Ev(i, i * 1000)) for i in range(40)]
        for i in range(40, 200):
            producer.emit(bytes(Ev(i, i * 1000)))
            if i % 30 == 0:
                assert all(e.val == e.seq * 1000 for e in rb.read(Ev, 0))
        rest = list(rb.read(Ev, 0))
        assert rest and rest[-1].seq == 199
        assert list(rb.poll_records(0)) == []


def test_breaking_out_of_iteration_keeps_the_rest(producer):
    with RingBuffer(producer.rb) as rb:
        for i in range(10):
            producer.emit(payload(i))
        it = rb.poll_records(0)
        first = [bytes(next(it)) for _ in range(3)]
        it.close()
        rest = [bytes(r) for r in rb.poll_records(0)]
    assert first + rest == [payload(i) for i in range(10)]


def test_callback_ctype_and_stop(producer):
    class Ev(ctypes.Structure):
        _fields_ = [("seq", ctypes.c_uint32)]

    seqs: list[int] = []

    def cb(ev: Ev) -> int:
        seqs.append(ev.seq)
        return -1 if ev.seq == 4 else 0

    with RingBuffer(producer.rb, cb, ctype=Ev) as rb:
        for i in range(10):
            producer.emit(bytes(Ev(i)))
        assert rb.poll(0) == 5
        assert rb.poll(0) == 5
    assert seqs == list(range(10))


def test_full_ring_counts_drops(producer):
    got: list[int] = []
    with RingBuffer(producer.rb, lambda rec: got.append(len(rec))) as rb:
        produced = 200
        for _ in range(produced):
            producer.emit(bytes(100))
        assert rb.available() > 0
        rb.consume()
        assert rb.available() == 0
    assert producer.dropped > 0
    assert len(got) + producer.dropped == produced


def test_several_rings_one_reader():
    a, b = Producer(), Producer(8192)
    try:
        got: dict[str, list[bytes]] = {"a": [], "b": []}
        with RingBuffer() as rb:
            rb.add(a.rb, lambda r: got["a"].append(bytes(r)))
            rb.add(b.rb, lambda r: got["b"].append(bytes(r)))
            assert rb.poll(0) == 0
            for i in range(30):
                a.emit(b"a%d" % i)
                b.emit(b"b%d" % i)
            total = 0
            while total < 60:
                total += rb.poll(5)
        assert got["a"] == [b"a%d" % i for i in range(30)]
        assert got["b"] == [b"b%d" % i for i in range(30)]
    finally:
        a.close()
        b.close()


def test_poll_wakes_up_via_epoll(producer):
    got: list[bytes] = []
    with RingBuffer(producer.rb, lambda r: got.append(bytes(r))) as rb:
        assert rb.poll(0.01) == 0
        producer.emit(b"wake")
        assert rb.poll(5) == 1
        assert rb.epoll_fd >= 0
    assert got == [b"wake"]


def test_wrong_map_type_and_closed_reader(producer):
    arr = K.counter_map()
    try:
        with pytest.raises(MapError, match="not a BPF_MAP_TYPE_RINGBUF"):
            RingBuffer(arr, lambda r: None)
    finally:
        arr.close()
    rb = RingBuffer(producer.rb, lambda r: None)
    rb.close()
    rb.close()
    with pytest.raises(MapError, match="closed"):
        rb.poll(0)


def test_record_kept_past_close_does_not_break_close(producer):
    kept: list[memoryview] = []
    rb = RingBuffer(producer.rb, kept.append)
    producer.emit(b"keep me")
    rb.poll(0)
    rb.close()
    assert len(kept) == 1


def test_long_backlog_frees_space_as_it_is_read():
    """A backlog is published chunk by chunk: records produced while it is being
    read fit into the space already read, as they would with libbpf."""
    p = Producer(1 << 16)  # 64 KiB: published every 4 KiB
    try:
        got: list[bytes] = []

        def cb(rec: memoryview) -> None:
            got.append(bytes(rec))
            if rec[0] == 1:  # first generation: produce a second one meanwhile
                p.emit(b"\x02" + bytes(rec[1:]))

        first = [b"\x01" + i.to_bytes(4, "little") * 49 for i in range(250)]  # 200 B each
        for rec in first:
            p.emit(rec)
        # 250 * 208 bytes: only 65 more records fit unless reading frees space
        with RingBuffer(p.rb, cb) as rb:
            assert rb.consume() == 500
            assert rb.available() == 0
        assert p.dropped == 0
        assert got == first + [b"\x02" + r[1:] for r in first]
    finally:
        p.close()


def test_chunks_wraps_and_discards_in_one_long_read():
    p = Producer(1 << 14)
    try:
        got: list[bytes] = []
        sent: list[bytes] = []
        with RingBuffer(p.rb, lambda rec: got.append(bytes(rec))) as rb:
            i = 0
            for _ in range(6):
                backlog = 0
                while backlog < 14000:  # most of the ring, read in one consume()
                    if i % 7 == 3:
                        p.discard()
                        backlog += 24
                    else:
                        sent.append(payload(i))
                        p.emit(sent[-1])
                        backlog += (len(sent[-1]) + 15) & ~7
                    i += 1
                rb.consume()
        assert p.dropped == 0
        assert got == sent
    finally:
        p.close()


def test_callback_exception_still_consumes_the_record(producer):
    got: list[bytes] = []

    def cb(rec: memoryview) -> None:
        got.append(bytes(rec))
        if bytes(rec) == b"r2":
            raise RuntimeError("bad record")

    with RingBuffer(producer.rb, cb) as rb:
        for i in range(5):
            producer.emit(b"r%d" % i)
        with pytest.raises(RuntimeError, match="bad record"):
            rb.poll(0)
        assert rb.available() > 0
        assert rb.poll(0) == 2
        assert rb.available() == 0
    assert got == [b"r0", b"r1", b"r2", b"r3", b"r4"]
