"""BPF ring buffer reader (BPF_MAP_TYPE_RINGBUF), one epoll over several rings.

Layout (kernel/bpf/ringbuf.c): page 0 holds the consumer position and is the
only page user space may write; page 1 holds the producer position; the data
area follows and is mapped twice in a row, so a record that wraps past the end
is contiguous in the second copy and a plain slice of the mapping reads it.
Each record has an 8-byte header (u32 length with BUSY/DISCARD bits, u32 page
offset) and is padded to 8 bytes.

Reads of the positions are aligned 8-byte loads through a memoryview; on x86
and arm64 that gives the acquire/release ordering we need against the kernel.
"""

from __future__ import annotations

import mmap
import select

from .errors import FeatureMissing, MapError, PermissionDenied
from .sys import cdata
from .sys.consts import (
    BPF_MAP_TYPE_RINGBUF,
    BPF_OBJ_GET_INFO_BY_FD,
    BPF_RINGBUF_BUSY_BIT,
    BPF_RINGBUF_DISCARD_BIT,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from ctypes import _CData
    from typing import TypeAlias

    from .btf.types import BTF
    from .btf.values import Codec, StructValue, Value
    from .maps import Map
    from .sys.fd import FD

    # How records are typed: a C type name in the map's BTF ("struct event"), a
    # Codec or StructValue class from coreframe.btf.values, or a ctypes type.
    RecordType: TypeAlias = "str | Codec | type[StructValue] | type"
    # A record as handed out: a memoryview without a type, else the decoded value
    # (a StructValue, another value typed from BTF, or a ctypes instance).
    Record: TypeAlias = "memoryview | Value | _CData"
    Callback: TypeAlias = "Callable[[Record], object]"
    # Record maker: (buffer, offset, length) -> record
    Maker: TypeAlias = "Callable[[memoryview, int, int], Value | _CData]"
    MapLike: TypeAlias = "Map | FD | int"

_FLAG_BITS = BPF_RINGBUF_BUSY_BIT | BPF_RINGBUF_DISCARD_BIT
_LEN_MASK = ~_FLAG_BITS & 0xFFFFFFFF


def record_maker(rtype: RecordType | None, btf: BTF | None) -> Maker | None:
    """The decoder of records of type ``rtype`` (None: records stay memoryviews)."""
    if rtype is None:
        return None
    from .btf.values import record_maker as make

    return make(rtype, btf)


def map_btf(map: MapLike) -> BTF | None:
    """The BTF a Map's records are typed from (None for a bare fd)."""
    return getattr(map, "btf", None)


def map_fd(map: MapLike) -> int:
    """The fd number of a Map, FD or int (buffer readers accept all three)."""
    fd = getattr(map, "fd", map)
    fd = getattr(fd, "fd", fd)
    if not isinstance(fd, int):
        raise MapError(f"expected a map, FD or fd number, got {type(map).__name__}")
    return fd


def map_info(map: MapLike) -> tuple[int, int, int, int]:
    """(type, key_size, value_size, max_entries) of a map, asked from the kernel by fd."""
    from .sys.attr import BpfMapInfo, InfoAttr
    from .sys.syscall import bpf

    info = BpfMapInfo()
    attr = InfoAttr(bpf_fd=map_fd(map), info_len=cdata.sizeof(info),
                    info=cdata.addressof(info))
    try:
        bpf(BPF_OBJ_GET_INFO_BY_FD, attr)
    except OSError as e:
        raise MapError(f"cannot query map fd {map_fd(map)}: {e.strerror}") from None
    return info.type, info.key_size, info.value_size, info.max_entries


class _Ring:
    """One mapped ring; kept separate so a reader can serve several maps."""

    __slots__ = ("fd", "size", "mask", "callback", "ctype", "_cons_mm", "_prod_mm",
                 "cons", "prod", "data", "hdr", "body", "state", "__weakref__")

    def __init__(self, fd: int, size: int, callback: Callback | None, make: Maker | None) -> None:
        page = mmap.PAGESIZE
        self.fd = fd
        self.size = size
        self.mask = size - 1
        self.callback = callback
        self.ctype = make
        try:
            self._cons_mm = mmap.mmap(fd, page, mmap.MAP_SHARED,
                                      mmap.PROT_READ | mmap.PROT_WRITE, offset=0)
        except OSError as e:
            raise MapError(f"mmap of ring buffer consumer page failed: {e.strerror}") from None
        try:
            self._prod_mm = mmap.mmap(fd, page + 2 * size, mmap.MAP_SHARED, mmap.PROT_READ,
                                      offset=page)
        except OSError as e:
            self._cons_mm.close()
            raise MapError(f"mmap of ring buffer data area failed: {e.strerror}") from None
        self.cons = memoryview(self._cons_mm).cast("Q")
        pv = memoryview(self._prod_mm)
        self.prod = pv[:8].cast("Q")
        self.data = pv[page:]
        self.hdr = self.data.cast("I")
        # body[off:off + n] is the n-byte record whose header sits at data offset off
        self.body = self.data[8:]
        # everything _consume_ring needs, unpacked in one step per call
        self.state = (self.cons, self.prod, self.hdr, self.body, self.mask,
                      max(size >> 4, mmap.PAGESIZE), callback, make)
        pv.release()

    def close(self) -> None:
        for v in (self.cons, self.prod, self.hdr, self.body, self.data):
            try:
                v.release()
            except (BufferError, ValueError):
                pass
        for mm in (self._cons_mm, self._prod_mm):
            try:
                mm.close()
            except BufferError:
                # A callback kept a slice alive; the mapping goes away with that slice.
                pass


class RingBuffer:
    """Reader for one or more BPF ring buffer maps.

    ``callback(record)`` gets a memoryview into the ring that is valid only during
    the call (copy it to keep it), or a decoded record when the ring was added with
    ``ctype``: a struct name from the map's BTF (``"struct event"``, decoded to a
    StructValue), a Codec/StructValue class, or a ctypes type. Records shorter or
    longer than the type are decoded too, the rest kept as ``.tail``
    (docs/typed-data.md). A callback returning a negative int stops the current poll.
    """

    def __init__(self, map: MapLike | None = None, callback: Callback | None = None, *,
                 ctype: RecordType | None = None) -> None:
        self._rings: list[_Ring] = []
        self._by_fd: dict[int, _Ring] = {}
        self._epoll: select.epoll | None = select.epoll()
        # epoll.poll() allocates room for maxevents events per call (1023 by default)
        self._maxevents = 1
        self._btf: BTF | None = None  # of the first ring added from a Map with BTF
        if map is not None:
            self.add(map, callback, ctype=ctype)

    def add(self, map: MapLike, callback: Callback | None = None, *,
            ctype: RecordType | None = None) -> None:
        """Serve another ring buffer map from this reader (like ring_buffer__add)."""
        if self._epoll is None:
            raise MapError("ring buffer reader is closed")
        fd = map_fd(map)
        btf = map_btf(map)
        make = record_maker(ctype, btf)
        if self._btf is None:
            self._btf = btf
        mtype, _ks, _vs, size = map_info(map)
        if mtype != BPF_MAP_TYPE_RINGBUF:
            raise MapError(f"map fd {fd} is not a BPF_MAP_TYPE_RINGBUF map (type {mtype})")
        if size <= 0 or size & (size - 1) or size % mmap.PAGESIZE:
            raise MapError(f"ring buffer size {size} is not a power-of-2 multiple of the page size")
        ring = _Ring(fd, size, callback, make)
        try:
            self._epoll.register(fd, select.EPOLLIN)
        except OSError as e:
            ring.close()
            if e.errno in (1, 13):
                raise PermissionDenied("epoll on ring buffer", "CAP_BPF") from None
            raise FeatureMissing("ring buffer epoll", e.strerror or str(e)) from None
        self._rings.append(ring)
        self._by_fd[fd] = ring
        self._maxevents = len(self._rings)

    @property
    def epoll_fd(self) -> int:
        """The epoll fd, to plug this reader into another event loop."""
        if self._epoll is None:
            raise MapError("ring buffer reader is closed")
        return self._epoll.fileno()

    def poll(self, timeout: float | None = None) -> int:
        """Wait up to ``timeout`` seconds (None: forever) and consume ready rings.

        Returns the number of records handed to callbacks.
        """
        ep = self._epoll
        if ep is None:
            raise MapError("ring buffer reader is closed")
        try:
            events = ep.poll(-1 if timeout is None else timeout, self._maxevents)
        except InterruptedError:
            return 0
        if not events:
            return 0
        by_fd = self._by_fd
        total = 0
        for fd, _ev in events:
            n = _consume_ring(by_fd[fd])
            if n < 0:
                return total + ~n
            total += n
        return total

    def consume(self) -> int:
        """Consume every ring without waiting; returns the number of records."""
        total = 0
        for ring in self._rings:
            n = _consume_ring(ring)
            if n < 0:
                return total + ~n
            total += n
        return total

    def poll_records(self, timeout: float | None = None) -> Iterator[memoryview]:
        """Yield each ready record as a memoryview valid until the next iteration.

        Waits up to ``timeout`` seconds for the first record, then drains what is
        there. Records stop being returned once consumed, even if iteration stops early.
        """
        if self._epoll is None:
            raise MapError("ring buffer reader is closed")
        if not self._has_data():
            try:
                self._epoll.poll(-1 if timeout is None else timeout)
            except InterruptedError:
                return
        for ring in list(self._rings):
            yield from self._iter_ring(ring)

    def read(self, ctype: RecordType, timeout: float | None = None) -> Iterator[Record]:
        """Like poll_records(), decoding each record (a copy) as ``ctype``.

        ``ctype`` as for the constructor; a name is looked up in the BTF of the
        first ring added from a loaded object's map. No record is dropped: one
        shorter than the type decodes its complete fields and keeps the rest in
        ``.tail``.
        """
        make = record_maker(ctype, self._btf)
        assert make is not None
        for rec in self.poll_records(timeout):
            yield make(rec, 0, len(rec))

    def _iter_ring(self, ring: _Ring) -> Iterator[memoryview]:
        cons_v, prod_v, hdr, data, mask = ring.cons, ring.prod, ring.hdr, ring.data, ring.mask
        cons = cons_v[0]
        try:
            while True:
                prod = prod_v[0]
                if cons >= prod:
                    return
                while cons < prod:
                    off = cons & mask
                    length = hdr[off >> 2]
                    if length & BPF_RINGBUF_BUSY_BIT:
                        return
                    cons += ((length & _LEN_MASK) + 15) & ~7
                    if length & BPF_RINGBUF_DISCARD_BIT:
                        continue
                    rec = data[off + 8:off + 8 + length]
                    try:
                        yield rec
                    finally:
                        rec.release()
                cons_v[0] = cons
        finally:
            try:
                cons_v[0] = cons
            except ValueError:  # reader closed while the generator was suspended
                pass

    def _has_data(self) -> bool:
        return any(r.prod[0] > r.cons[0] for r in self._rings)

    def available(self) -> int:
        """Bytes produced but not yet consumed, summed over rings (a backlog gauge)."""
        return sum(r.prod[0] - r.cons[0] for r in self._rings)

    def __del__(self) -> None:
        # garbage collected without close(): unmap and close epoll now, not at exit
        if getattr(self, "_epoll", None) is not None:
            _close_all(self._rings, self._epoll)

    def close(self) -> None:
        """Unmap every ring and close the epoll fd; the maps themselves stay open."""
        _close_all(self._rings, self._epoll)
        self._epoll = None
        self._rings.clear()
        self._by_fd.clear()

    def __enter__(self) -> RingBuffer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _consume_ring(ring: _Ring) -> int:
    """Hand every committed record of one ring to its callback.

    Returns the number of records, or ``~count`` when a callback asked to stop.
    The hot loop of every tool: everything it touches is a local unpacked from one
    tuple and records are memoryview slices of the one mapping. The loop walks
    offsets into the double mapping, below twice the ring size, rather than the
    64-bit positions: CPython's fast path covers small ints only, and positions
    outgrow it after 1 GiB of records. The consumer position is published once
    per chunk (a 16th of the ring, or on catching up with the producer), not per
    record: cheap, yet a long backlog frees space for the producer as it goes.
    """
    cons_v, prod_v, hdr, body, mask, chunk, cb, make = ring.state
    rec: Record
    if cb is None:
        raise MapError("ring buffer has no callback; use poll_records() or read()")
    cons = cons_v[0]
    prod = prod_v[0]
    if cons >= prod:
        return 0
    count = 0
    start = off = cons & mask
    end = start + (prod - cons if prod - cons < chunk else chunk)
    try:
        while True:
            # One loop per record kind, so that neither tests the kind per record.
            # A length above _LEN_MASK has a flag bit set: one compare for both.
            if make is None:
                while off < end:
                    length = hdr[off >> 2]
                    if length > _LEN_MASK:
                        if length & BPF_RINGBUF_BUSY_BIT:
                            return count  # not committed yet: it and what follows wait
                        off += ((length & _LEN_MASK) + 15) & -8  # discarded
                        continue
                    rec = body[off:off + length]
                    off += (length + 15) & -8  # consumed even if the callback raises
                    count += 1
                    rc = cb(rec)
                    if rc is not None and isinstance(rc, int) and rc < 0:
                        return ~count
            else:
                while off < end:
                    length = hdr[off >> 2]
                    if length > _LEN_MASK:
                        if length & BPF_RINGBUF_BUSY_BIT:
                            return count
                        off += ((length & _LEN_MASK) + 15) & -8
                        continue
                    rec = make(body, off, length)
                    off += (length + 15) & -8
                    count += 1
                    rc = cb(rec)
                    if rc is not None and isinstance(rc, int) and rc < 0:
                        return ~count
            new = cons + (off - start)
            prod = prod_v[0]
            if new >= prod:
                return count  # caught up; the finally clause publishes
            cons_v[0] = cons = new  # publish this chunk, then go on
            start = off = new & mask
            end = start + (prod - new if prod - new < chunk else chunk)
    finally:
        cons_v[0] = cons + (off - start)


def _close_all(rings: list[_Ring], ep: select.epoll | None) -> None:
    for r in rings:
        r.close()
    if ep is not None:
        ep.close()

