"""Thin wrappers, one per bpf() command.

They take Python values, fill the matching ``bpf_attr`` struct, and return an ``FD``
or plain values. Errors stay ``OSError`` (with ``.log`` for loads) so that the layer
above, which knows the map or program involved, can phrase the message; "absent"
results (ENOENT from lookups, end of iteration) are returned as ``None``/``False``.
"""

from __future__ import annotations

import errno
import os

from ..runtime.startup import Record
from . import attr as A
from . import cdata
from .consts import (
    BPF_ANY,
    BPF_BTF_GET_FD_BY_ID,
    BPF_BTF_GET_NEXT_ID,
    BPF_BTF_LOAD,
    BPF_ENABLE_STATS,
    BPF_ITER_CREATE,
    BPF_LINK_CREATE,
    BPF_LINK_DETACH,
    BPF_LINK_GET_FD_BY_ID,
    BPF_LINK_GET_NEXT_ID,
    BPF_LINK_UPDATE,
    BPF_MAP_CREATE,
    BPF_MAP_DELETE_BATCH,
    BPF_MAP_DELETE_ELEM,
    BPF_MAP_FREEZE,
    BPF_MAP_GET_FD_BY_ID,
    BPF_MAP_GET_NEXT_ID,
    BPF_MAP_GET_NEXT_KEY,
    BPF_MAP_LOOKUP_AND_DELETE_BATCH,
    BPF_MAP_LOOKUP_AND_DELETE_ELEM,
    BPF_MAP_LOOKUP_BATCH,
    BPF_MAP_LOOKUP_ELEM,
    BPF_MAP_UPDATE_BATCH,
    BPF_MAP_UPDATE_ELEM,
    BPF_OBJ_GET,
    BPF_OBJ_GET_INFO_BY_FD,
    BPF_OBJ_PIN,
    BPF_PROG_ATTACH,
    BPF_PROG_BIND_MAP,
    BPF_PROG_DETACH,
    BPF_PROG_GET_FD_BY_ID,
    BPF_PROG_GET_NEXT_ID,
    BPF_PROG_LOAD,
    BPF_PROG_QUERY,
    BPF_PROG_RUN,
    BPF_RAW_TRACEPOINT_OPEN,
    BPF_STATS_RUN_TIME,
    BPF_TASK_FD_QUERY,
)
from .fd import FD
from .syscall import bpf

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any, TypeVar

    _Info = TypeVar("_Info", bound=cdata.Structure)

    Buf = bytes | bytearray | memoryview


def _fdnum(fd: FD | int) -> int:
    return fd if fd.__class__ is int else (fd.fd if isinstance(fd, FD) else int(fd))


def _found(cmd: int, attr: Any) -> bool:
    """Run a lookup-style command; False when the kernel answers ENOENT (no such key,
    no next key or id), the other errors raised."""
    try:
        bpf(cmd, attr)
    except OSError as e:
        if e.errno == errno.ENOENT:
            return False
        raise
    return True


def _u64_array(values: Sequence[int] | None) -> cdata.Array[cdata.c_uint64] | None:
    if not values:
        return None
    return (cdata.c_uint64 * len(values))(*values)


# --- maps ---------------------------------------------------------------------------


def map_create(
    map_type: int,
    key_size: int,
    value_size: int,
    max_entries: int,
    *,
    name: str = "",
    flags: int = 0,
    inner_map_fd: FD | int = 0,
    numa_node: int = 0,
    btf_fd: FD | int = 0,
    btf_key_type_id: int = 0,
    btf_value_type_id: int = 0,
    btf_vmlinux_value_type_id: int = 0,
    map_extra: int = 0,
    map_ifindex: int = 0,
) -> FD:
    """BPF_MAP_CREATE -> FD of the new map."""
    at = A.MapCreateAttr(
        map_type=map_type, key_size=key_size, value_size=value_size,
        max_entries=max_entries, map_flags=flags, inner_map_fd=_fdnum(inner_map_fd),
        numa_node=numa_node, map_name=A.name_bytes(name), map_ifindex=map_ifindex,
        btf_fd=_fdnum(btf_fd), btf_key_type_id=btf_key_type_id,
        btf_value_type_id=btf_value_type_id,
        btf_vmlinux_value_type_id=btf_vmlinux_value_type_id, map_extra=map_extra,
    )
    return FD(bpf(BPF_MAP_CREATE, at))


def map_lookup_into(map_fd: FD | int, key: Any, value: Any, flags: int = 0) -> bool:
    """Lookup with caller-owned ctypes buffers (no copies); False when the key is absent.

    ``key`` may be None for keyless maps (queue/stack peek).
    """
    at = A.MapElemAttr(_fdnum(map_fd), A.addr(key), A.addr(value), flags)
    return _found(BPF_MAP_LOOKUP_ELEM, at)


def map_lookup_elem(map_fd: FD | int, key: Buf | None, value_size: int, flags: int = 0
                    ) -> bytes | None:
    """BPF_MAP_LOOKUP_ELEM -> value bytes, or None when the key is absent."""
    kbuf = None if key is None else A.buffer(key)
    vbuf = cdata.create_string_buffer(value_size)
    if not map_lookup_into(map_fd, kbuf, vbuf, flags):
        return None
    return vbuf.raw


def map_update_elem(map_fd: FD | int, key: Buf | None, value: Buf, flags: int = BPF_ANY) -> None:
    """BPF_MAP_UPDATE_ELEM (``key`` None for queue/stack push)."""
    kbuf = None if key is None else A.buffer(key)
    vbuf = A.buffer(value)
    bpf(BPF_MAP_UPDATE_ELEM, A.MapElemAttr(_fdnum(map_fd), A.addr(kbuf), A.addr(vbuf), flags))


def map_delete_elem(map_fd: FD | int, key: Buf) -> bool:
    """BPF_MAP_DELETE_ELEM; False when the key was absent."""
    kbuf = A.buffer(key)
    at = A.MapElemAttr(map_fd=_fdnum(map_fd), key=A.addr(kbuf))
    return _found(BPF_MAP_DELETE_ELEM, at)


def map_lookup_and_delete_elem(map_fd: FD | int, key: Buf | None, value_size: int,
                               flags: int = 0) -> bytes | None:
    """BPF_MAP_LOOKUP_AND_DELETE_ELEM (queue/stack pop, hash take); None when empty."""
    kbuf = None if key is None else A.buffer(key)
    vbuf = cdata.create_string_buffer(value_size)
    at = A.MapElemAttr(map_fd=_fdnum(map_fd), key=A.addr(kbuf), value=A.addr(vbuf), flags=flags)
    return vbuf.raw if _found(BPF_MAP_LOOKUP_AND_DELETE_ELEM, at) else None


def map_get_next_key(map_fd: FD | int, key: Buf | None, key_size: int) -> bytes | None:
    """BPF_MAP_GET_NEXT_KEY: the key after ``key`` (first key when None); None at the end."""
    kbuf = None if key is None else A.buffer(key)
    nbuf = cdata.create_string_buffer(key_size)
    at = A.MapElemAttr(map_fd=_fdnum(map_fd), key=A.addr(kbuf), value=A.addr(nbuf))
    return nbuf.raw if _found(BPF_MAP_GET_NEXT_KEY, at) else None


class BatchResult(Record, fields="keys values count next_batch"):
    """One batch: ``count`` keys/values packed back to back; ``next_batch`` None at the end."""

    __slots__ = ()

    keys: bytes
    values: bytes
    count: int
    next_batch: bytes | None


def map_lookup_batch(
    map_fd: FD | int,
    key_size: int,
    value_size: int,
    count: int,
    in_batch: bytes | None = None,
    *,
    elem_flags: int = 0,
    delete: bool = False,
) -> BatchResult:
    """BPF_MAP_LOOKUP_BATCH (or ..._AND_DELETE_BATCH): up to ``count`` entries.

    ``value_size`` is the full per-entry value size (already multiplied out for
    per-CPU maps). The opaque batch token is sized for both hash (u32 bucket) and
    array (key) maps.
    """
    token = max(key_size, 8)
    in_buf = None if in_batch is None else A.buffer(in_batch)
    out_buf = cdata.create_string_buffer(token)
    keys = cdata.create_string_buffer(key_size * count)
    values = cdata.create_string_buffer(value_size * count)
    at = A.MapBatchAttr(
        in_batch=A.addr(in_buf), out_batch=A.addr(out_buf), keys=A.addr(keys),
        values=A.addr(values), count=count, map_fd=_fdnum(map_fd), elem_flags=elem_flags,
    )
    done = False
    try:
        bpf(BPF_MAP_LOOKUP_AND_DELETE_BATCH if delete else BPF_MAP_LOOKUP_BATCH, at)
    except OSError as e:
        if e.errno != errno.ENOENT:
            raise
        done = True
    n = at.count
    return BatchResult(
        keys=keys.raw[: n * key_size], values=values.raw[: n * value_size], count=n,
        next_batch=None if done else out_buf.raw,
    )


def map_lookup_and_delete_batch(map_fd: FD | int, key_size: int, value_size: int, count: int,
                                in_batch: bytes | None = None, *, elem_flags: int = 0
                                ) -> BatchResult:
    """BPF_MAP_LOOKUP_AND_DELETE_BATCH."""
    return map_lookup_batch(map_fd, key_size, value_size, count, in_batch,
                            elem_flags=elem_flags, delete=True)


def map_update_batch(map_fd: FD | int, keys: Buf, values: Buf, count: int, *,
                     elem_flags: int = 0) -> int:
    """BPF_MAP_UPDATE_BATCH -> number of entries written."""
    kbuf, vbuf = A.buffer(keys), A.buffer(values)
    at = A.MapBatchAttr(keys=A.addr(kbuf), values=A.addr(vbuf), count=count,
                        map_fd=_fdnum(map_fd), elem_flags=elem_flags)
    bpf(BPF_MAP_UPDATE_BATCH, at)
    return int(at.count)


def map_delete_batch(map_fd: FD | int, keys: Buf, count: int, *, elem_flags: int = 0) -> int:
    """BPF_MAP_DELETE_BATCH -> number of entries deleted (ENOENT stops early)."""
    kbuf = A.buffer(keys)
    at = A.MapBatchAttr(keys=A.addr(kbuf), count=count, map_fd=_fdnum(map_fd),
                        elem_flags=elem_flags)
    try:
        bpf(BPF_MAP_DELETE_BATCH, at)
    except OSError as e:
        if e.errno != errno.ENOENT:
            raise
    return int(at.count)


def map_freeze(map_fd: FD | int) -> None:
    """BPF_MAP_FREEZE: no more writes from user space."""
    bpf(BPF_MAP_FREEZE, A.MapElemAttr(map_fd=_fdnum(map_fd)))


# --- programs -----------------------------------------------------------------------


def prog_load(
    prog_type: int,
    insns: Buf,
    license: str = "GPL",
    *,
    name: str = "",
    kern_version: int = 0,
    log_level: int = 0,
    log_size: int = 0,
    expected_attach_type: int = 0,
    attach_btf_id: int = 0,
    attach_btf_obj_fd: FD | int = 0,
    attach_prog_fd: FD | int = 0,
    prog_btf_fd: FD | int = 0,
    func_info: Buf = b"",
    func_info_rec_size: int = 0,
    line_info: Buf = b"",
    line_info_rec_size: int = 0,
    prog_flags: int = 0,
    prog_ifindex: int = 0,
    fd_array: Sequence[int] | None = None,
    log_buf: cdata.Array[cdata.c_char] | None = None,
) -> FD:
    """BPF_PROG_LOAD -> FD. On failure the OSError carries ``.log`` (verifier text, '' if none).

    Pass ``log_buf`` (a ctypes char buffer, used with ``log_level``) to read the log of a
    successful load too; otherwise a ``log_size`` buffer is allocated when ``log_level`` > 0.
    """
    ibuf = A.buffer(insns)
    lic = cdata.create_string_buffer(license.encode())
    if log_buf is not None:
        log_size = cdata.sizeof(log_buf)
    logbuf = log_buf if log_buf is not None else (
        cdata.create_string_buffer(log_size) if log_level and log_size else None)
    fi = A.buffer(func_info) if func_info else None
    li = A.buffer(line_info) if line_info else None
    fds = (cdata.c_int32 * len(fd_array))(*fd_array) if fd_array else None
    at = A.ProgLoadAttr(
        prog_type=prog_type, insn_cnt=len(insns) // 8, insns=A.addr(ibuf), license=A.addr(lic),
        log_level=log_level if logbuf is not None else 0,
        log_size=log_size if logbuf is not None else 0, log_buf=A.addr(logbuf),
        kern_version=kern_version, prog_flags=prog_flags, prog_name=A.name_bytes(name),
        prog_ifindex=prog_ifindex, expected_attach_type=expected_attach_type,
        prog_btf_fd=_fdnum(prog_btf_fd), attach_btf_id=attach_btf_id,
        attach_prog_fd=_fdnum(attach_btf_obj_fd) or _fdnum(attach_prog_fd),
        fd_array=A.addr(fds),
    )
    if fi is not None:
        at.func_info, at.func_info_rec_size = A.addr(fi), func_info_rec_size
        at.func_info_cnt = len(func_info) // func_info_rec_size
    if li is not None:
        at.line_info, at.line_info_rec_size = A.addr(li), line_info_rec_size
        at.line_info_cnt = len(line_info) // line_info_rec_size
    try:
        for _ in range(4):  # the verifier answers EAGAIN when a signal interrupts it
            try:
                return FD(bpf(BPF_PROG_LOAD, at))
            except OSError as e:
                if e.errno != errno.EAGAIN:
                    raise
        return FD(bpf(BPF_PROG_LOAD, at))
    except OSError as e:
        e.log = logbuf.value.decode(errors="replace") if logbuf is not None else ""  # type: ignore[attr-defined]
        e.log_true_size = int(at.log_true_size)  # type: ignore[attr-defined]
        raise


class TestRunResult(Record, fields="retval duration_ns data_out ctx_out"):
    """Outcome of BPF_PROG_RUN."""

    __slots__ = ()
    __test__ = False

    retval: int
    duration_ns: int
    data_out: bytes
    ctx_out: bytes


def prog_test_run(
    prog_fd: FD | int,
    *,
    data_in: Buf = b"",
    data_size_out: int = 0,
    ctx_in: Buf | None = None,
    ctx_size_out: int = 0,
    repeat: int = 1,
    flags: int = 0,
    cpu: int = 0,
    batch_size: int = 0,
) -> TestRunResult:
    """BPF_PROG_RUN: run a program on ``data_in``/``ctx_in`` in the kernel."""
    din = A.buffer(data_in) if data_in else None
    dout = cdata.create_string_buffer(data_size_out) if data_size_out else None
    cin = A.buffer(ctx_in) if ctx_in else None
    cout = cdata.create_string_buffer(ctx_size_out) if ctx_size_out else None
    at = A.TestRunAttr(
        prog_fd=_fdnum(prog_fd), data_size_in=len(data_in) if din is not None else 0,
        data_size_out=data_size_out, data_in=A.addr(din), data_out=A.addr(dout),
        repeat=repeat, ctx_size_in=len(ctx_in) if cin is not None and ctx_in else 0,
        ctx_size_out=ctx_size_out, ctx_in=A.addr(cin), ctx_out=A.addr(cout), flags=flags,
        cpu=cpu, batch_size=batch_size,
    )
    bpf(BPF_PROG_RUN, at)
    return TestRunResult(
        retval=int(at.retval), duration_ns=int(at.duration),
        data_out=dout.raw[: at.data_size_out] if dout is not None else b"",
        ctx_out=cout.raw[: at.ctx_size_out] if cout is not None else b"",
    )


def prog_attach(target_fd: FD | int, prog_fd: FD | int, attach_type: int, flags: int = 0,
                replace_prog_fd: FD | int = 0) -> None:
    """BPF_PROG_ATTACH (legacy cgroup/sockmap/flow-dissector attach)."""
    at = A.ProgAttachAttr(target_fd=_fdnum(target_fd), attach_bpf_fd=_fdnum(prog_fd),
                          attach_type=attach_type, attach_flags=flags,
                          replace_bpf_fd=_fdnum(replace_prog_fd))
    bpf(BPF_PROG_ATTACH, at)


def prog_detach(target_fd: FD | int, prog_fd: FD | int, attach_type: int) -> None:
    """BPF_PROG_DETACH."""
    at = A.ProgAttachAttr(target_fd=_fdnum(target_fd), attach_bpf_fd=_fdnum(prog_fd),
                          attach_type=attach_type)
    bpf(BPF_PROG_DETACH, at)


def prog_query(target_fd: FD | int, attach_type: int, *, query_flags: int = 0,
               max_progs: int = 64) -> list[int]:
    """BPF_PROG_QUERY -> ids of programs attached at ``target_fd``/``attach_type``."""
    ids = (cdata.c_uint32 * max_progs)()
    at = A.ProgQueryAttr(target_fd=_fdnum(target_fd), attach_type=attach_type,
                         query_flags=query_flags, prog_ids=A.addr(ids), prog_cnt=max_progs)
    bpf(BPF_PROG_QUERY, at)
    return list(ids[: at.prog_cnt])


def prog_bind_map(prog_fd: FD | int, map_fd: FD | int) -> None:
    """BPF_PROG_BIND_MAP: keep a map alive as long as the program (e.g. .rodata)."""
    bpf(BPF_PROG_BIND_MAP, A.ProgBindMapAttr(prog_fd=_fdnum(prog_fd), map_fd=_fdnum(map_fd)))


# --- BTF ------------------------------------------------------------------------------


def btf_load(data: Buf, *, log_level: int = 0, log_size: int = 0) -> FD:
    """BPF_BTF_LOAD -> FD. On failure the OSError carries ``.log``."""
    dbuf = A.buffer(data)
    logbuf = cdata.create_string_buffer(log_size) if log_level and log_size else None
    at = A.BtfLoadAttr(
        btf=A.addr(dbuf), btf_size=len(data), btf_log_buf=A.addr(logbuf),
        btf_log_size=log_size if logbuf is not None else 0,
        btf_log_level=log_level if logbuf is not None else 0,
    )
    try:
        return FD(bpf(BPF_BTF_LOAD, at))
    except OSError as e:
        e.log = logbuf.value.decode(errors="replace") if logbuf is not None else ""  # type: ignore[attr-defined]
        raise


# --- objects, ids, info ---------------------------------------------------------------


def obj_pin(fd: FD | int, path: str | os.PathLike[str]) -> None:
    """BPF_OBJ_PIN: pin ``fd`` at ``path`` on a bpffs."""
    p = cdata.create_string_buffer(os.fsencode(path))
    bpf(BPF_OBJ_PIN, A.ObjAttr(pathname=A.addr(p), bpf_fd=_fdnum(fd)))


def obj_get(path: str | os.PathLike[str], file_flags: int = 0) -> FD:
    """BPF_OBJ_GET: open a pinned object."""
    p = cdata.create_string_buffer(os.fsencode(path))
    return FD(bpf(BPF_OBJ_GET, A.ObjAttr(pathname=A.addr(p), file_flags=file_flags)))


def obj_get_info_by_fd(fd: FD | int, info: _Info) -> _Info:
    """BPF_OBJ_GET_INFO_BY_FD into ``info`` (a zeroed or pointer-primed info struct)."""
    at = A.InfoAttr(bpf_fd=_fdnum(fd), info_len=cdata.sizeof(info), info=A.addr(info))
    bpf(BPF_OBJ_GET_INFO_BY_FD, at)
    return info


def prog_info(fd: FD | int) -> A.BpfProgInfo:
    return obj_get_info_by_fd(fd, A.BpfProgInfo())


def map_info(fd: FD | int) -> A.BpfMapInfo:
    return obj_get_info_by_fd(fd, A.BpfMapInfo())


def btf_info(fd: FD | int) -> A.BpfBtfInfo:
    return obj_get_info_by_fd(fd, A.BpfBtfInfo())


def link_info(fd: FD | int) -> A.BpfLinkInfo:
    return obj_get_info_by_fd(fd, A.BpfLinkInfo())


def _next_id(cmd: int, start_id: int) -> int | None:
    at = A.GetIdAttr(start_id=start_id)
    return int(at.next_id) if _found(cmd, at) else None


def prog_get_next_id(start_id: int = 0) -> int | None:
    """Next loaded program id after ``start_id``; None at the end."""
    return _next_id(BPF_PROG_GET_NEXT_ID, start_id)


def map_get_next_id(start_id: int = 0) -> int | None:
    return _next_id(BPF_MAP_GET_NEXT_ID, start_id)


def btf_get_next_id(start_id: int = 0) -> int | None:
    return _next_id(BPF_BTF_GET_NEXT_ID, start_id)


def link_get_next_id(start_id: int = 0) -> int | None:
    return _next_id(BPF_LINK_GET_NEXT_ID, start_id)


def _fd_by_id(cmd: int, obj_id: int, open_flags: int = 0) -> FD:
    return FD(bpf(cmd, A.GetIdAttr(start_id=obj_id, open_flags=open_flags)))


def prog_get_fd_by_id(prog_id: int) -> FD:
    return _fd_by_id(BPF_PROG_GET_FD_BY_ID, prog_id)


def map_get_fd_by_id(map_id: int, open_flags: int = 0) -> FD:
    return _fd_by_id(BPF_MAP_GET_FD_BY_ID, map_id, open_flags)


def btf_get_fd_by_id(btf_id: int) -> FD:
    return _fd_by_id(BPF_BTF_GET_FD_BY_ID, btf_id)


def link_get_fd_by_id(link_id: int) -> FD:
    return _fd_by_id(BPF_LINK_GET_FD_BY_ID, link_id)


# --- links, tracepoints, stats ----------------------------------------------------------


def link_create(
    prog_fd: FD | int,
    target: FD | int,
    attach_type: int,
    *,
    flags: int = 0,
    target_btf_id: int = 0,
    bpf_cookie: int = 0,
    tracing_cookie: int = 0,
    iter_info: Buf | None = None,
    relative_fd: int = 0,
    expected_revision: int = 0,
    uprobe_path: str | None = None,
    uprobe_offsets: Sequence[int] | None = None,
    uprobe_ref_ctr_offsets: Sequence[int] | None = None,
    uprobe_cookies: Sequence[int] | None = None,
    uprobe_pid: int = 0,
    uprobe_flags: int = 0,
    kprobe_syms: Sequence[str] | None = None,
    kprobe_addrs: Sequence[int] | None = None,
    kprobe_cookies: Sequence[int] | None = None,
    kprobe_flags: int = 0,
) -> FD:
    """BPF_LINK_CREATE -> link FD.

    ``target`` is a target fd (cgroup, perf event, map, ...) or an ifindex (XDP, tcx),
    0 for tracing/uprobe_multi. Per-type fields: ``bpf_cookie`` (perf_event link),
    ``target_btf_id``/``tracing_cookie`` (fentry/fexit/lsm), ``iter_info``,
    ``relative_fd``/``expected_revision`` (tcx/netkit), ``uprobe_*`` (uprobe_multi),
    ``kprobe_*`` (kprobe_multi).
    """
    at = A.LinkCreateAttr(prog_fd=_fdnum(prog_fd), target_fd=_fdnum(target),
                          attach_type=attach_type, flags=flags)
    keep: list[Any] = []
    if uprobe_path is not None:
        path = cdata.create_string_buffer(os.fsencode(uprobe_path))
        offs = _u64_array(uprobe_offsets)
        refs = _u64_array(uprobe_ref_ctr_offsets)
        cks = _u64_array(uprobe_cookies)
        keep += [path, offs, refs, cks]
        um = at.uprobe_multi
        um.path, um.offsets, um.ref_ctr_offsets = A.addr(path), A.addr(offs), A.addr(refs)
        um.cookies, um.cnt = A.addr(cks), len(uprobe_offsets or ())
        um.flags, um.pid = uprobe_flags, uprobe_pid
    elif kprobe_syms is not None or kprobe_addrs is not None:
        km = at.kprobe_multi
        if kprobe_syms is not None:
            names = [cdata.create_string_buffer(s.encode()) for s in kprobe_syms]
            ptrs = (cdata.c_uint64 * len(names))(*(cdata.addressof(n) for n in names))
            keep += [names, ptrs]
            km.syms, km.cnt = A.addr(ptrs), len(names)
        else:
            addrs = _u64_array(kprobe_addrs)
            keep.append(addrs)
            km.addrs, km.cnt = A.addr(addrs), len(kprobe_addrs or ())
        cks = _u64_array(kprobe_cookies)
        keep.append(cks)
        km.cookies, km.flags = A.addr(cks), kprobe_flags
    elif iter_info is not None:
        ibuf = A.buffer(iter_info)
        keep.append(ibuf)
        at.iter.iter_info, at.iter.iter_info_len = A.addr(ibuf), len(iter_info)
    elif bpf_cookie:
        at.perf_event.bpf_cookie = bpf_cookie
    elif target_btf_id or tracing_cookie:
        at.tracing.target_btf_id, at.tracing.cookie = target_btf_id, tracing_cookie
    elif relative_fd or expected_revision:
        at.tcx.relative_fd, at.tcx.expected_revision = relative_fd, expected_revision
    return FD(bpf(BPF_LINK_CREATE, at))


def link_update(link_fd: FD | int, new_prog_fd: FD | int, *, flags: int = 0,
                old_prog_fd: FD | int = 0) -> None:
    """BPF_LINK_UPDATE: swap the program behind a link."""
    bpf(BPF_LINK_UPDATE, A.LinkUpdateAttr(link_fd=_fdnum(link_fd), new_prog_fd=_fdnum(new_prog_fd),
                                          flags=flags, old_prog_fd=_fdnum(old_prog_fd)))


def link_detach(link_fd: FD | int) -> None:
    """BPF_LINK_DETACH: detach while keeping the link fd open."""
    bpf(BPF_LINK_DETACH, A.LinkDetachAttr(link_fd=_fdnum(link_fd)))


def iter_create(link_fd: FD | int) -> FD:
    """BPF_ITER_CREATE: a readable fd producing the iterator's output."""
    return FD(bpf(BPF_ITER_CREATE, A.IterCreateAttr(link_fd=_fdnum(link_fd))))


def raw_tracepoint_open(name: str | None, prog_fd: FD | int, cookie: int = 0) -> FD:
    """BPF_RAW_TRACEPOINT_OPEN (``name`` None for tp_btf/fentry, which carry their target)."""
    nbuf = None if name is None else cdata.create_string_buffer(name.encode())
    at = A.RawTracepointAttr(name=A.addr(nbuf), prog_fd=_fdnum(prog_fd), cookie=cookie)
    return FD(bpf(BPF_RAW_TRACEPOINT_OPEN, at))


def enable_stats(stats_type: int = BPF_STATS_RUN_TIME) -> FD:
    """BPF_ENABLE_STATS: run-time stats are collected while the returned FD is open."""
    return FD(bpf(BPF_ENABLE_STATS, A.EnableStatsAttr(type=stats_type)))


class TaskFdInfo(Record, fields="prog_id fd_type name probe_offset probe_addr"):
    """BPF_TASK_FD_QUERY result: what a perf-event/raw-tp fd of a task is attached to."""

    __slots__ = ()

    prog_id: int
    fd_type: int
    name: str
    probe_offset: int
    probe_addr: int


def task_fd_query(pid: int, fd: int, buf_len: int = 256) -> TaskFdInfo:
    """BPF_TASK_FD_QUERY."""
    buf = cdata.create_string_buffer(buf_len)
    at = A.TaskFdQueryAttr(pid=pid, fd=fd, buf_len=buf_len, buf=A.addr(buf))
    bpf(BPF_TASK_FD_QUERY, at)
    return TaskFdInfo(int(at.prog_id), int(at.fd_type), buf.value.decode(errors="replace"),
                      int(at.probe_offset), int(at.probe_addr))
