"""Ring and perf buffer records typed by a struct name from the object's BTF, in every
read path (callback, poll, poll_records + read, consume), variable-length records
included: their fixed part decodes, the rest is the tail, none is dropped."""

from __future__ import annotations

import os

import pytest
from typedkit import trigger

from coreframe.btf.values import codec_by_name
from coreframe.errors import ObjectError
from coreframe.perf import PerfBuffer
from coreframe.ringbuf import RingBuffer

pytestmark = [
    pytest.mark.kernel,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
]

SEQ = [5, 70, 64, 63, 1]


def _data(n: int) -> bytes:
    """The n % 64 data bytes the program sends after the 24-byte header."""
    return bytes(ord("a") + i % 26 for i in range(n % 64))


def _check(records: list, *, perf: bool) -> None:
    assert [r.seq for r in records] == SEQ
    for r in records:
        assert r.len == r.seq % 64 and r.comm
        if perf and r.data is not None:
            # padded up to the struct's whole size: data decodes, the padding is the tail
            assert r.data == _data(r.seq).decode() and not any(r.tail)
        elif perf:  # samples are padded to 8 bytes with their header: padding joins the tail
            assert r.tail[:r.len] == _data(r.seq) and not any(r.tail[r.len:])
            assert (8 + 4 + 24 + len(r.tail)) % 8 == 0  # header, size word, record
        else:
            assert r.data is None and r.tail == _data(r.seq)


@pytest.mark.parametrize("how", ["callback", "read", "consume"])
def test_ring_buffer_variable_length_records(loaded, how: str) -> None:
    got: list = []
    ring = loaded.maps.ring
    if how == "read":
        with ring.reader() as rb:
            loaded.attach()
            trigger(*SEQ)
            got = list(rb.read("struct event", 1))
    else:
        with ring.reader("struct event", got.append) as rb:
            loaded.attach()
            trigger(*SEQ)
            if how == "callback":
                while len(got) < len(SEQ) and rb.poll(1):
                    pass
            else:
                rb.consume()
    _check(got, perf=False)


@pytest.mark.parametrize("how", ["callback", "read", "consume", "with_cpu"])
def test_perf_buffer_variable_length_records(loaded, how: str) -> None:
    got: list = []
    perf = loaded.maps.perf
    if how == "read":
        with perf.reader(page_cnt=8) as pb:
            loaded.attach()
            trigger(*SEQ)
            got = list(pb.read("struct event", 1))
    elif how == "with_cpu":
        with perf.reader("struct event", lambda cpu, r: got.append(r), page_cnt=8,
                         with_cpu=True) as pb:
            loaded.attach()
            trigger(*SEQ)
            while len(got) < len(SEQ) and pb.poll(1):
                pass
    else:
        with perf.reader("struct event", got.append, page_cnt=8) as pb:
            loaded.attach()
            trigger(*SEQ)
            if how == "callback":
                while len(got) < len(SEQ) and pb.poll(1):
                    pass
            else:
                pb.consume()
    _check(got, perf=True)


def test_fixed_records_and_record_types(loaded) -> None:
    cls = codec_by_name(loaded.btf, "struct small_event").cls
    with RingBuffer(loaded.maps.ring_small) as rb:
        loaded.attach()
        trigger(*SEQ)
        by_name = list(rb.read("struct small_event", 1))
        assert by_name == [{"seq": n, "neg": -n, "val": n << 33} for n in SEQ]
        assert all(r.tail == b"" for r in by_name)
        trigger(9)
        (by_class,) = list(rb.read(cls, 1))       # the generated class works as a type
        assert by_class == cls(seq=9, neg=-9, val=9 << 33)
        assert repr(by_class) == f"small_event(seq=9, neg=-9, val={9 << 33})"


def test_ctypes_short_records_are_kept_with_a_tail(loaded) -> None:
    # the 0.1 API: a ctypes type; a short record used to raise and end the loop
    Event = loaded.btf.ctype("struct event")
    with loaded.maps.ring.reader() as rb, PerfBuffer(loaded.maps.perf, page_cnt=8) as pb:
        loaded.attach()
        trigger(*SEQ)
        ring = list(rb.read(Event, 1))
        perf = list(pb.read(Event, 1))
    for recs in (ring, perf):
        assert [r.seq for r in recs] == SEQ
        # the fields come from a zero-padded copy of the whole record
        assert [bytes(r)[24:24 + r.len] for r in recs] == [_data(n) for n in SEQ]
        assert all(r.comm for r in recs)
    # bytes past the last complete field (here: data) are the tail
    assert [r.tail for r in ring] == [_data(n) for n in SEQ]


def test_unknown_record_type_is_explained(loaded) -> None:
    with pytest.raises(ObjectError, match="referenced from a global variable or a map"):
        loaded.maps.ring.reader("struct not_in_btf")
    with pytest.raises(ObjectError, match="no BTF to look it up in"):
        RingBuffer(loaded.maps.ring.fd, ctype="struct event")
