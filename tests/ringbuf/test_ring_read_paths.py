"""Every way of reading a ring buffer hands out each committed record exactly once.

The reader has three record loops (callback with memoryviews, callback with a ctypes
type, and the poll_records()/read() iterator), each with its own handling of records
the producer discarded (BPF_RINGBUF_DISCARD_BIT: the space stays in the ring, the
reader must skip it) and its own consumer-position bookkeeping. A long stream through
one small ring, with discards mixed in, checks all of them record by record: a
sequence number per record, 10,000+ records through a 4 KiB ring (it wraps about 60
times), and nothing the producer discarded may come out.
"""

from __future__ import annotations

import ctypes
import os

import pytest
from test_ev_ringbuf import Producer

from coreframe.ringbuf import RingBuffer

pytestmark = [
    pytest.mark.kernel,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
]

RECORDS = 10_500
BATCH = 100  # records between reads: 100 * 24 bytes stays below the 4 KiB ring


class Rec(ctypes.Structure):
    # 16 bytes, the same size as the discarded reservations the producer makes, so a
    # discarded record handed out by mistake decodes like a real one (a stale or zero
    # sequence number), and only the exact sequence shows it
    _fields_ = [("seq", ctypes.c_uint32), ("check", ctypes.c_uint32), ("pad", ctypes.c_uint64)]


def _rec(seq: int) -> bytes:
    return bytes(Rec(seq, seq ^ 0xA5A5A5A5, 0))


def _seq_of(raw: bytes | Rec) -> int:
    r = raw if isinstance(raw, Rec) else Rec.from_buffer_copy(raw)
    assert r.check == r.seq ^ 0xA5A5A5A5, f"corrupt record {bytes(r).hex()}"
    return r.seq


def _reader(path: str, producer: Producer, got: list[int]) -> tuple[RingBuffer, object]:
    """A reader for ``path`` and a function that reads what is in the ring now."""
    if path in ("poll", "consume"):
        rb = RingBuffer(producer.rb, lambda rec: got.append(_seq_of(bytes(rec))))
    elif path in ("poll-ctype", "consume-ctype"):
        rb = RingBuffer(producer.rb, lambda rec: got.append(_seq_of(rec)), ctype=Rec)
    else:
        rb = RingBuffer(producer.rb)
    if path in ("poll", "poll-ctype"):
        def drain() -> None:
            while rb.poll(0):
                pass
    elif path in ("consume", "consume-ctype"):
        def drain() -> None:
            rb.consume()
    elif path == "poll_records":
        def drain() -> None:
            got.extend(_seq_of(bytes(r)) for r in rb.poll_records(0))
    else:  # read
        def drain() -> None:
            got.extend(_seq_of(e) for e in rb.read(Rec, 0))
    return rb, drain


PATHS = ["poll", "consume", "poll-ctype", "consume-ctype", "poll_records", "read"]


@pytest.mark.parametrize("path", PATHS)
def test_every_record_once_with_discards(path: str) -> None:
    """10,500 records and 1,500 discards through one 4 KiB ring, read every 100 steps."""
    p = Producer(4096)
    got: list[int] = []
    sent: list[int] = []
    try:
        rb, drain = _reader(path, p, got)
        with rb:
            seq = step = 0
            while seq < RECORDS:
                if step % 8 == 3:
                    p.discard()
                else:
                    p.emit(_rec(seq))
                    sent.append(seq)
                    seq += 1
                step += 1
                if step % BATCH == 0:
                    drain()  # type: ignore[operator]
            drain()  # type: ignore[operator]
            assert rb.available() == 0
        assert p.dropped == 0, "the ring overflowed: the test itself is wrong"
    finally:
        p.close()
    missing = sorted(set(sent) - set(got))
    assert not missing, f"{len(missing)} records never arrived, first {missing[:5]}"
    assert len(got) == len(sent), f"{len(got) - len(sent)} extra records (discards handed out?)"
    assert got == sent


@pytest.mark.parametrize("path", PATHS)
def test_only_discards_yield_nothing(path: str) -> None:
    """A ring holding nothing but discarded reservations has no records to read."""
    p = Producer(4096)
    got: list[int] = []
    try:
        rb, drain = _reader(path, p, got)
        with rb:
            for _ in range(50):
                p.discard()
            assert rb.available() > 0
            drain()  # type: ignore[operator]
            assert rb.available() == 0, "discarded space was not consumed"
            p.emit(_rec(7))
            drain()  # type: ignore[operator]
    finally:
        p.close()
    assert got == [7]
