"""Perf buffer reader for BPF_MAP_TYPE_PERF_EVENT_ARRAY (bpf_perf_event_output).

One PERF_COUNT_SW_BPF_OUTPUT event per online CPU, each with its own mmap'ed
ring: a header page (``struct perf_event_mmap_page``; data_head at 1024,
data_tail at 1032, data_offset 1040, data_size 1048) then a power-of-2 data
area. Records start with ``perf_event_header``; PERF_RECORD_SAMPLE carries a u32
size and the raw bytes, PERF_RECORD_LOST the number of dropped samples. A record
may straddle the end of the data area; only then is it copied into a scratch
buffer, every other record is handed out as a slice of the mapping.
"""

from __future__ import annotations

import mmap
import os
import select
import struct

from .errors import FeatureMissing, MapError, PermissionDenied
from .ringbuf import map_btf, map_fd, map_info, record_maker
from .sys import cdata
from .sys.consts import (
    BPF_ANY,
    BPF_MAP_TYPE_PERF_EVENT_ARRAY,
    BPF_MAP_UPDATE_ELEM,
    PERF_COUNT_SW_BPF_OUTPUT,
    PERF_EVENT_IOC_DISABLE,
    PERF_EVENT_IOC_ENABLE,
    PERF_FLAG_FD_CLOEXEC,
    PERF_RECORD_LOST,
    PERF_RECORD_SAMPLE,
    PERF_SAMPLE_RAW,
    PERF_TYPE_SOFTWARE,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from typing import Any, TypeAlias

    from .btf.types import BTF
    from .ringbuf import MapLike, Record, RecordType

    # callback(record) or, with with_cpu, callback(cpu, record)
    SampleCallback: TypeAlias = "Callable[..., object]"
    LostCallback: TypeAlias = "Callable[[int, int], object]"

_HEAD_IDX = 1024 // 8
_TAIL_IDX = 1032 // 8
_HDR = struct.Struct("<IHH")
_LOST = struct.Struct("<QQ")
_U32 = struct.Struct("<I")


def online_cpus() -> list[int]:
    """CPUs listed in /sys/devices/system/cpu/online (e.g. ``0-3,6``)."""
    try:
        with open("/sys/devices/system/cpu/online") as f:
            text = f.read().strip()
    except OSError:
        return list(range(os.cpu_count() or 1))
    cpus: list[int] = []
    for part in text.split(","):
        if "-" in part:
            lo, hi = part.split("-")
            cpus.extend(range(int(lo), int(hi) + 1))
        elif part:
            cpus.append(int(part))
    return cpus


class _CpuBuf:
    """One CPU's perf event, its mapping and its read position."""

    __slots__ = ("cpu", "fd", "mm", "words", "data", "data_q", "size", "mask", "chunk", "lost")

    def __init__(self, cpu: int, fd: int, page_cnt: int) -> None:
        page = mmap.PAGESIZE
        self.cpu = cpu
        self.fd = fd
        self.lost = 0
        self.mm = mmap.mmap(fd, page * (page_cnt + 1), mmap.MAP_SHARED,
                            mmap.PROT_READ | mmap.PROT_WRITE)
        self.words = memoryview(self.mm)[:page].cast("Q")
        # data_offset/data_size are 0 on kernels older than 4.1: fall back to page/rest.
        data_off = self.words[1040 // 8] or page
        data_size = self.words[1048 // 8] or page * page_cnt
        self.data = memoryview(self.mm)[data_off:data_off + data_size]
        # Header reads as one word, without struct calls (records are 8-byte aligned).
        self.data_q = self.data.cast("Q")
        self.size = data_size
        self.mask = data_size - 1
        # data_tail is published every chunk bytes of a long backlog, not per record
        self.chunk = max(data_size >> 4, page)

    def close(self) -> None:
        for v in (self.words, self.data_q, self.data):
            try:
                v.release()
            except (BufferError, ValueError):
                pass
        try:
            self.mm.close()
        except BufferError:
            pass
        try:
            os.close(self.fd)
        except OSError:
            pass


class PerfBuffer:
    """Per-CPU reader of a perf event array map.

    ``callback(data)`` gets a memoryview valid only during the call (or a record
    decoded as ``ctype``: a struct name from the map's BTF, a Codec/StructValue
    class or a ctypes type, as for RingBuffer; a sample's length is padded by the
    kernel to 8 bytes with its header, and the padding lands in the record's
    ``.tail``), the same shape as RingBuffer's so a tool can switch buffers;
    ``with_cpu=True`` makes it ``callback(cpu, data)`` like libbpf's sample_cb.
    ``lost_callback(cpu, count)`` hears about dropped samples, whose running total
    is ``.lost``. ``page_cnt`` data pages per CPU (power of 2). Wake up after
    ``wakeup_events`` samples, or after ``watermark`` bytes when given (much
    cheaper at high rates).
    """

    def __init__(self, map: MapLike, callback: SampleCallback | None = None,
                 lost_callback: LostCallback | None = None, page_cnt: int = 64, *,
                 wakeup_events: int = 1, watermark: int | None = None,
                 ctype: RecordType | None = None, cpus: list[int] | None = None,
                 with_cpu: bool = False) -> None:
        from .sys.attr import PerfEventAttr
        from .sys.syscall import perf_event_open

        if page_cnt <= 0 or page_cnt & (page_cnt - 1):
            raise MapError(f"perf buffer page_cnt must be a power of 2, got {page_cnt}")
        mfd = map_fd(map)
        mtype, _ks, _vs, max_entries = map_info(map)
        if mtype != BPF_MAP_TYPE_PERF_EVENT_ARRAY:
            raise MapError(f"map fd {mfd} is not a BPF_MAP_TYPE_PERF_EVENT_ARRAY map "
                           f"(type {mtype})")
        self.callback = callback
        self.with_cpu = with_cpu
        self.lost_callback = lost_callback
        self.ctype = ctype
        self._btf: BTF | None = map_btf(map)
        self._make = record_maker(ctype, self._btf)
        self.page_cnt = page_cnt
        self.current_cpu = -1
        self._map_fd = mfd
        self._bufs: list[_CpuBuf] = []
        self._by_fd: dict[int, _CpuBuf] = {}
        self._scratch = bytearray(256)
        self._epoll: select.epoll | None = select.epoll()

        attr = PerfEventAttr()
        attr.type = PERF_TYPE_SOFTWARE
        attr.config = PERF_COUNT_SW_BPF_OUTPUT
        attr.sample_type = PERF_SAMPLE_RAW
        attr.sample_period = 1
        if watermark is not None:
            attr.watermark = 1
            attr.wakeup_watermark = watermark
        else:
            attr.wakeup_events = max(1, wakeup_events)
        try:
            for cpu in cpus if cpus is not None else online_cpus():
                if cpu >= max_entries:
                    continue
                try:
                    fd = perf_event_open(attr, -1, cpu, -1, PERF_FLAG_FD_CLOEXEC)
                except OSError as e:
                    if e.errno in (1, 13):
                        raise PermissionDenied("perf_event_open(BPF_OUTPUT)",
                                               "CAP_PERFMON") from None
                    if e.errno == 19:  # ENODEV: CPU went offline meanwhile
                        continue
                    raise FeatureMissing("perf buffers",
                                         f"perf_event_open on cpu {cpu}: {e.strerror}") from None
                try:
                    buf = _CpuBuf(cpu, fd, page_cnt)
                except OSError as e:
                    os.close(fd)
                    raise MapError(f"mmap of perf buffer for cpu {cpu} failed: "
                                   f"{e.strerror} (page_cnt={page_cnt})") from None
                self._bufs.append(buf)
                self._by_fd[fd] = buf
                self._set_map_slot(cpu, fd)
                self._ioctl(fd, PERF_EVENT_IOC_ENABLE)
                self._epoll.register(fd, select.EPOLLIN)
        except BaseException:
            self.close()
            raise
        if not self._bufs:
            self.close()
            raise MapError("perf buffer: no usable CPU (map max_entries too small?)")

    def _set_map_slot(self, cpu: int, fd: int) -> None:
        from .sys.attr import MapElemAttr
        from .sys.syscall import bpf

        key = cdata.c_uint32(cpu)
        val = cdata.c_uint32(fd)
        attr = MapElemAttr(map_fd=self._map_fd, key=cdata.addressof(key),
                           value=cdata.addressof(val), flags=BPF_ANY)
        try:
            bpf(BPF_MAP_UPDATE_ELEM, attr)
        except OSError as e:
            raise MapError(f"storing perf event fd for cpu {cpu} in the map failed: "
                           f"{e.strerror}") from None

    @staticmethod
    def _ioctl(fd: int, request: int) -> None:
        from .sys.syscall import ioctl

        try:
            ioctl(fd, request, 0)
        except OSError as e:
            raise MapError(f"perf event ioctl failed: {e.strerror}") from None

    @property
    def lost(self) -> int:
        """Samples the kernel dropped because a CPU buffer was full, over all CPUs."""
        return sum(b.lost for b in self._bufs)

    @property
    def cpus(self) -> list[int]:
        return [b.cpu for b in self._bufs]

    @property
    def epoll_fd(self) -> int:
        if self._epoll is None:
            raise MapError("perf buffer is closed")
        return self._epoll.fileno()

    def poll(self, timeout: float | None = None) -> int:
        """Wait up to ``timeout`` seconds (None: forever), then consume ready CPUs.

        Returns the number of samples handed to the callback.
        """
        ep = self._epoll
        if ep is None:
            raise MapError("perf buffer is closed")
        try:
            # room for one event per CPU: by default epoll.poll() allocates 1023
            events = ep.poll(-1 if timeout is None else timeout, len(self._bufs))
        except InterruptedError:
            return 0
        n = 0
        for fd, _ev in events:
            n += self._consume_buf(self._by_fd[fd])
        return n

    def consume(self) -> int:
        """Consume every CPU buffer without waiting."""
        if self._epoll is None:
            raise MapError("perf buffer is closed")
        n = 0
        for b in self._bufs:
            n += self._consume_buf(b)
        return n

    def _consume_buf(self, buf: _CpuBuf) -> int:
        """Hand every sample of one CPU to the callback; the hot path, kept inline.

        As in the ring buffer reader, the loop walks small offsets into the data
        area rather than the 64-bit positions, and data_tail is published per chunk
        or on catching up. A sample that neither wraps nor is anything but a sample
        costs one header read: with PERF_SAMPLE_RAW alone its payload is everything
        after the u32 size, which already counts the kernel's padding.
        """
        cb = self.callback
        if cb is None:
            raise MapError("perf buffer has no callback; use poll_records() or read()")
        words = buf.words
        tail = words[_TAIL_IDX]
        head = words[_HEAD_IDX]
        if tail >= head:
            return 0
        make = self._make
        with_cpu = self.with_cpu
        cpu = buf.cpu
        data, data_q, size, chunk = buf.data, buf.data_q, buf.size, buf.chunk
        count = 0
        start = off = tail & buf.mask
        try:
            while True:
                avail = head - tail
                end = off + (avail if avail < chunk else chunk)
                while True:
                    lim = end if end < size else size
                    while off < lim:
                        w = data_q[off >> 3]
                        nxt = off + (w >> 48)
                        if w & 0xFFFFFFFF == PERF_RECORD_SAMPLE and off < nxt <= size:
                            rec: Any = data[off + 12:nxt]
                            off = nxt
                        else:
                            off, rec = self._odd_record(buf, off, w)
                            if rec is None:
                                if off < 0:  # corrupt header: resynchronise at the producer
                                    off = start + (head - tail)
                                continue
                        if make is not None:
                            rec = make(rec, 0, len(rec))
                        count += 1
                        if with_cpu:
                            cb(cpu, rec)
                        else:
                            cb(rec)
                    if off < size:
                        break
                    # past the end of the data area: go on from its start
                    off -= size
                    start -= size
                    end -= size
                tail += off - start
                start = off
                head = words[_HEAD_IDX]
                if tail >= head:
                    return count
                words[_TAIL_IDX] = tail  # publish this chunk, then go on
        finally:
            words[_TAIL_IDX] = tail + (off - start)

    def _odd_record(self, buf: _CpuBuf, off: int, w: int) -> tuple[int, Any]:
        """The slow path: a record that wraps, is not a sample, or has a corrupt header.

        Returns the offset after it (-1 for a corrupt header) and the sample
        payload, or None for no sample.
        """
        rsize = w >> 48
        if rsize < 8:
            return -1, None
        nxt = off + rsize
        size = buf.size
        rec = buf.data[off:nxt] if nxt <= size else self._wrapped(buf.data, off, rsize, size)
        rtype = w & 0xFFFFFFFF
        if rtype != PERF_RECORD_SAMPLE:
            self._other_record(buf, rtype, rec)
            return nxt, None
        raw = _U32.unpack_from(rec, 8)[0]
        return nxt, rec[12:12 + raw]

    def _other_record(self, buf: _CpuBuf, rtype: int, rec: memoryview) -> None:
        if rtype == PERF_RECORD_LOST:
            lost = _LOST.unpack_from(rec, 8)[1]
            buf.lost += lost
            if self.lost_callback is not None:
                self.lost_callback(buf.cpu, lost)

    def _records(self, buf: _CpuBuf) -> Iterator[memoryview]:
        """Yield raw sample payloads of one CPU, advancing data_tail per batch."""
        words = buf.words
        data = buf.data
        mask = buf.mask
        size = buf.size
        unpack_hdr = _HDR.unpack_from
        tail = words[_TAIL_IDX]
        try:
            while True:
                head = words[_HEAD_IDX]
                if tail >= head:
                    return
                while tail < head:
                    off = tail & mask
                    rtype, _misc, rsize = unpack_hdr(data, off)
                    if rsize < 8:
                        # Corrupt header: resynchronise at the producer position.
                        tail = head
                        break
                    if off + rsize <= size:
                        rec = data[off:off + rsize]
                    else:
                        rec = self._wrapped(data, off, rsize, size)
                    tail += rsize
                    if rtype == PERF_RECORD_SAMPLE:
                        raw = _U32.unpack_from(rec, 8)[0]
                        yield rec[12:12 + raw]
                    else:
                        self._other_record(buf, rtype, rec)
                words[_TAIL_IDX] = tail
        finally:
            try:
                words[_TAIL_IDX] = tail
            except ValueError:
                pass

    def _wrapped(self, data: memoryview, off: int, rsize: int, size: int) -> memoryview:
        """Copy a record that straddles the end of the data area into the scratch buffer."""
        if len(self._scratch) < rsize:
            self._scratch = bytearray(max(rsize, 2 * len(self._scratch)))
        first = size - off
        sv = memoryview(self._scratch)
        sv[:first] = data[off:size]
        sv[first:rsize] = data[:rsize - first]
        return sv[:rsize]

    def poll_records(self, timeout: float | None = None) -> Iterator[memoryview]:
        """Yield each ready sample's payload, valid until the next step.

        Waits up to ``timeout`` seconds when nothing is ready. The CPU of the sample
        being yielded is ``.current_cpu``.
        """
        if self._epoll is None:
            raise MapError("perf buffer is closed")
        if not any(b.words[_HEAD_IDX] != b.words[_TAIL_IDX] for b in self._bufs):
            try:
                self._epoll.poll(-1 if timeout is None else timeout)
            except InterruptedError:
                return
        for buf in list(self._bufs):
            self.current_cpu = buf.cpu
            yield from self._records(buf)

    def read(self, ctype: RecordType, timeout: float | None = None) -> Iterator[Record]:
        """Like poll_records(), decoding each sample (a copy) as ``ctype``.

        No sample is dropped: one shorter than the type decodes its complete
        fields and keeps the rest in ``.tail``.
        """
        make = record_maker(ctype, self._btf)
        assert make is not None
        for rec in self.poll_records(timeout):
            yield make(rec, 0, len(rec))

    def __del__(self) -> None:
        # garbage collected without close(): unmap and close epoll now, not at exit
        if getattr(self, "_epoll", None) is not None:
            _close_all(self._bufs, self._epoll)

    def close(self) -> None:
        """Disable and close every CPU event, unmap, close epoll (the map stays open)."""
        for b in self._bufs:
            try:
                self._ioctl(b.fd, PERF_EVENT_IOC_DISABLE)
            except MapError:
                pass
        _close_all(self._bufs, self._epoll)
        self._epoll = None
        self._bufs.clear()
        self._by_fd.clear()

    def __enter__(self) -> PerfBuffer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _close_all(bufs: list[_CpuBuf], ep: select.epoll | None) -> None:
    for b in bufs:
        b.close()
    if ep is not None:
        ep.close()
