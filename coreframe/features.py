"""Kernel feature probes, each run at most once per process.

We ask the running kernel instead of trusting its version: create a tiny map, load a
two-instruction program, load a small BTF blob. A probe answers False when the kernel
rejects the thing itself (EINVAL, E2BIG, EOPNOTSUPP, ENOTSUPP, or EPERM while we hold
CAP_BPF); it raises PermissionDenied when we simply lack privileges, because "not
supported" would then be a lie.
"""

from __future__ import annotations

import errno
import os
import struct

from . import asm
from .btf import kinds as K
from .errors import Error, PermissionDenied
from .link.tracefs import has_file as has_tracefs_file
from .runtime.startup import memoize
from .sys import bpf as _bpf
from .sys import consts as C
from .sys.errors import ENOTSUPP, has_capability
from .sys.fd import FD
from .sys.host import VMLINUX_BTF, has_pmu

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

_REJECTED = {errno.EINVAL, errno.E2BIG, errno.EOPNOTSUPP, ENOTSUPP, errno.ENOENT}
_TRIVIAL = asm.mov64_imm(asm.R0, 0) + asm.exit_()


def _probe(operation: str, fn: Callable[[], Any]) -> bool:
    """Run ``fn`` (which returns an FD or None); True on success, False when refused."""
    try:
        result = fn()
    except OSError as e:
        if e.errno in (errno.EPERM, errno.EACCES):
            if has_capability("CAP_BPF"):
                return False
            raise PermissionDenied(f"feature probe ({operation})", "CAP_BPF") from e
        if e.errno in _REJECTED:
            return False
        raise Error(f"feature probe ({operation}) failed: {e.strerror}") from e
    if isinstance(result, FD):
        result.close()
    return True


# --- fallbacks taken -------------------------------------------------------------------

# What this process did another way because a probe said the kernel lacks the
# preferred way: name -> [why, times]. Bounded by the handful of fallbacks there are.
_FALLBACKS: dict[str, list[Any]] = {}


def note_fallback(name: str, why: str) -> None:
    """Remember that ``name`` (what was done instead, e.g. ``"perf-event attach by
    PERF_EVENT_IOC_SET_BPF"``) was chosen because of ``why`` (the missing feature and the
    probe that found it missing); ``coreframe`` callers and the kernel matrix read it."""
    entry = _FALLBACKS.get(name)
    if entry is None:
        _FALLBACKS[name] = [why, 1]
    else:
        entry[1] += 1


def fallbacks_taken() -> dict[str, tuple[str, int]]:
    """``name -> (why, times)`` of every fallback this process has taken so far."""
    return {name: (why, n) for name, (why, n) in _FALLBACKS.items()}


# --- BTF blobs ------------------------------------------------------------------------

def _info(kind: int, vlen: int = 0, kflag: int = 0) -> int:
    return (kflag << 31) | (kind << 24) | vlen


class _Strings:
    def __init__(self) -> None:
        self.data = bytearray(b"\0")

    def add(self, s: str) -> int:
        off = len(self.data)
        self.data += s.encode() + b"\0"
        return off


def _int_type(strs: _Strings) -> bytes:
    """[1] int: 4 bytes, signed, 32 bits."""
    return struct.pack("<IIII", strs.add("int"), _info(K.BTF_KIND_INT), 4,
                       (K.BTF_INT_SIGNED << 24) | 32)


def _kind_blob(kind: int) -> tuple[bytes, bytes]:
    """Types (after an [1] int) exercising ``kind``; returns (type section, strings)."""
    s = _Strings()
    t = _int_type(s)
    if kind == K.BTF_KIND_INT:
        pass
    elif kind in (K.BTF_KIND_PTR, K.BTF_KIND_TYPEDEF, K.BTF_KIND_VOLATILE, K.BTF_KIND_CONST):
        name = s.add("t") if kind == K.BTF_KIND_TYPEDEF else 0
        t += struct.pack("<III", name, _info(kind), 1)
    elif kind == K.BTF_KIND_RESTRICT:
        t += struct.pack("<III", 0, _info(K.BTF_KIND_PTR), 1)
        t += struct.pack("<III", 0, _info(K.BTF_KIND_RESTRICT), 2)
    elif kind == K.BTF_KIND_ARRAY:
        t += struct.pack("<III", 0, _info(K.BTF_KIND_ARRAY), 0) + struct.pack("<III", 1, 1, 2)
    elif kind in (K.BTF_KIND_STRUCT, K.BTF_KIND_UNION):
        t += struct.pack("<III", s.add("s"), _info(kind, 1), 4)
        t += struct.pack("<III", s.add("a"), 1, 0)
    elif kind == K.BTF_KIND_ENUM:
        t += struct.pack("<III", s.add("e"), _info(kind, 1), 4) + struct.pack("<Ii", s.add("v"), 1)
    elif kind == K.BTF_KIND_ENUM64:
        t += struct.pack("<III", s.add("e"), _info(kind, 1), 8)
        t += struct.pack("<III", s.add("v"), 0, 1)
    elif kind == K.BTF_KIND_FWD:
        t += struct.pack("<III", s.add("f"), _info(kind), 0)
    elif kind in (K.BTF_KIND_FUNC_PROTO, K.BTF_KIND_FUNC):
        t += struct.pack("<III", 0, _info(K.BTF_KIND_FUNC_PROTO, 0), 1)
        t += struct.pack("<III", s.add("f"), _info(K.BTF_KIND_FUNC, K.BTF_FUNC_STATIC), 2)
    elif kind in (K.BTF_KIND_VAR, K.BTF_KIND_DATASEC):
        t += struct.pack("<IIII", s.add("x"), _info(K.BTF_KIND_VAR), 1, K.BTF_VAR_STATIC)
        t += struct.pack("<III", s.add(".data"), _info(K.BTF_KIND_DATASEC, 1), 4)
        t += struct.pack("<III", 2, 0, 4)
    elif kind == K.BTF_KIND_FLOAT:
        t += struct.pack("<III", s.add("float"), _info(kind), 4)
    elif kind == K.BTF_KIND_DECL_TAG:
        t += struct.pack("<IIII", s.add("x"), _info(K.BTF_KIND_VAR), 1, K.BTF_VAR_STATIC)
        t += struct.pack("<IIIi", s.add("tag"), _info(kind), 2, -1)
    elif kind == K.BTF_KIND_TYPE_TAG:
        t += struct.pack("<III", s.add("tag"), _info(kind), 1)
        t += struct.pack("<III", 0, _info(K.BTF_KIND_PTR), 2)
    else:
        t += struct.pack("<III", 0, _info(kind), 0)
    return t, bytes(s.data)


def btf_blob(types: bytes, strings: bytes) -> bytes:
    """A complete raw BTF image (header + type section + string section)."""
    hdr = struct.pack("<HBBIIIII", K.BTF_MAGIC, K.BTF_VERSION, 0, 24, 0, len(types),
                      len(types), len(strings))
    return hdr + types + strings


def storage_btf() -> tuple[bytes, int, int]:
    """BTF for local-storage style maps: (blob, key type id 1 = int, value type id 2 = struct)."""
    s = _Strings()
    t = _int_type(s)
    t += struct.pack("<III", s.add("val"), _info(K.BTF_KIND_STRUCT, 1), 4)
    t += struct.pack("<III", s.add("cnt"), 1, 0)
    return btf_blob(t, bytes(s.data)), 1, 2


@memoize
def has_btf() -> bool:
    """Kernel accepts BPF_BTF_LOAD at all."""
    types, strings = _kind_blob(K.BTF_KIND_INT)
    return _probe("BTF load", lambda: _bpf.btf_load(btf_blob(types, strings)))


@memoize
def has_btf_kind(kind: int) -> bool:
    """Kernel's BTF loader knows ``kind`` (BTF_KIND_*)."""
    if not has_btf():
        return False
    types, strings = _kind_blob(kind)
    return _probe(f"BTF kind {kind}", lambda: _bpf.btf_load(btf_blob(types, strings)))


@memoize
def has_btf_func_global() -> bool:
    """Kernel accepts BTF FUNCs with global linkage (5.6+); else they are made static."""
    s = _Strings()
    t = _int_type(s)
    t += struct.pack("<III", 0, _info(K.BTF_KIND_FUNC_PROTO, 0), 1)
    t += struct.pack("<III", s.add("f"), _info(K.BTF_KIND_FUNC, K.BTF_FUNC_GLOBAL), 2)
    return _probe("BTF global func", lambda: _bpf.btf_load(btf_blob(t, bytes(s.data))))


# The keys of :func:`btf_kinds`: what the sanitizer may have to rewrite (btf.kinds).
BTF_KIND_NAMES = K.SANITIZED_KINDS


def btf_kinds() -> dict[str, bool]:
    """Which of :data:`BTF_KIND_NAMES` the kernel takes: one combined probe, then
    per-kind probes only if that is refused."""
    if has_all_sanitized_btf_kinds():
        return dict.fromkeys(BTF_KIND_NAMES, True)
    return {
        "func": has_btf_kind(K.BTF_KIND_FUNC),
        "func_global": has_btf_func_global(),
        "datasec": has_btf_kind(K.BTF_KIND_DATASEC),
        "float": has_btf_kind(K.BTF_KIND_FLOAT),
        "decl_tag": has_btf_kind(K.BTF_KIND_DECL_TAG),
        "type_tag": has_btf_kind(K.BTF_KIND_TYPE_TAG),
        "enum64": has_btf_kind(K.BTF_KIND_ENUM64),
    }


@memoize
def has_all_sanitized_btf_kinds() -> bool:
    """One BTF load holding every kind and linkage the sanitizer may have to rewrite.

    On a current kernel this single probe answers all of them at once; only when it
    is refused do callers bisect with :func:`has_btf_kind` per kind.
    """
    s = _Strings()
    t = _int_type(s)                                                           # [1] int
    t += struct.pack("<III", 0, _info(K.BTF_KIND_FUNC_PROTO, 0), 1)             # [2]
    t += struct.pack("<III", s.add("f"), _info(K.BTF_KIND_FUNC, K.BTF_FUNC_GLOBAL), 2)
    t += struct.pack("<IIII", s.add("x"), _info(K.BTF_KIND_VAR), 1,             # [4]
                     K.BTF_VAR_STATIC)
    t += struct.pack("<III", s.add(".data"), _info(K.BTF_KIND_DATASEC, 1), 4)   # [5]
    t += struct.pack("<III", 4, 0, 4)
    t += struct.pack("<III", s.add("float"), _info(K.BTF_KIND_FLOAT), 4)        # [6]
    t += struct.pack("<IIIi", s.add("tag"), _info(K.BTF_KIND_DECL_TAG), 4, -1)  # [7]
    t += struct.pack("<III", s.add("ttag"), _info(K.BTF_KIND_TYPE_TAG), 1)      # [8]
    t += struct.pack("<III", 0, _info(K.BTF_KIND_PTR), 8)                       # [9]
    t += struct.pack("<III", s.add("e"), _info(K.BTF_KIND_ENUM64, 1), 8)        # [10]
    t += struct.pack("<III", s.add("v"), 0, 1)
    return _probe("BTF kinds", lambda: _bpf.btf_load(btf_blob(t, bytes(s.data))))


# --- maps -------------------------------------------------------------------------------

_STORAGE_MAPS = {
    C.BPF_MAP_TYPE_SK_STORAGE, C.BPF_MAP_TYPE_INODE_STORAGE, C.BPF_MAP_TYPE_TASK_STORAGE,
    C.BPF_MAP_TYPE_CGRP_STORAGE,
}


@memoize
def has_map_type(map_type: int) -> bool:
    """Kernel can create maps of ``map_type`` (BPF_MAP_TYPE_*)."""
    key, value, entries, flags, extra = 4, 4, 1, 0, 0
    T = C
    if map_type == T.BPF_MAP_TYPE_STRUCT_OPS:
        return _vmlinux_mentions(b"bpf_struct_ops_")
    if map_type in _STORAGE_MAPS:
        if not has_btf():
            return False
        blob, kid, vid = storage_btf()

        def create_storage() -> FD:
            with _bpf.btf_load(blob) as btf:
                return _bpf.map_create(map_type, 4, 4, 0, flags=C.BPF_F_NO_PREALLOC,
                                       btf_fd=btf, btf_key_type_id=kid,
                                       btf_value_type_id=vid)

        return _probe("map create", create_storage)
    if map_type == T.BPF_MAP_TYPE_LPM_TRIE:
        key, value, flags = 8, 8, C.BPF_F_NO_PREALLOC
    elif map_type == T.BPF_MAP_TYPE_STACK_TRACE:
        value = 8
    elif map_type in (T.BPF_MAP_TYPE_QUEUE, T.BPF_MAP_TYPE_STACK, T.BPF_MAP_TYPE_BLOOM_FILTER):
        key = 0
    elif map_type in (T.BPF_MAP_TYPE_RINGBUF, T.BPF_MAP_TYPE_USER_RINGBUF):
        key, value, entries = 0, 0, os.sysconf("SC_PAGE_SIZE")
    elif map_type in (T.BPF_MAP_TYPE_CGROUP_STORAGE, T.BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE):
        key, entries = 16, 0
    elif map_type == T.BPF_MAP_TYPE_ARENA:
        key, value, flags = 0, 0, C.BPF_F_MMAPABLE
    elif map_type in (T.BPF_MAP_TYPE_ARRAY_OF_MAPS, T.BPF_MAP_TYPE_HASH_OF_MAPS):
        def create_outer() -> FD:
            with _bpf.map_create(C.BPF_MAP_TYPE_ARRAY, 4, 4, 1) as inner:
                return _bpf.map_create(map_type, 4, 4, 1, inner_map_fd=inner)

        return _probe("map create", create_outer)
    return _probe("map create", lambda: _bpf.map_create(map_type, key, value, entries,
                                                        flags=flags, map_extra=extra))


@memoize
def has_ringbuf() -> bool:
    return has_map_type(C.BPF_MAP_TYPE_RINGBUF)


@memoize
def has_mmapable_maps() -> bool:
    """Array maps can be created BPF_F_MMAPABLE (5.5+): global data via mmap."""
    return _probe("mmapable map", lambda: _bpf.map_create(C.BPF_MAP_TYPE_ARRAY, 4, 8, 1,
                                                          flags=C.BPF_F_MMAPABLE))


@memoize
def has_lookup_and_delete(map_type: int = C.BPF_MAP_TYPE_HASH) -> bool:
    """BPF_MAP_LOOKUP_AND_DELETE_ELEM on a map of ``map_type`` (hash maps: 5.14+;
    queues and stacks always). An empty map answers ENOENT where the command is
    implemented, ENOTSUPP/EINVAL where it is not."""
    def run() -> None:
        with _bpf.map_create(map_type, 4, 4, 1) as m:
            _bpf.map_lookup_and_delete_elem(m, b"\0" * 4, 4)

    return _probe("lookup and delete", run)


@memoize
def has_batch_ops() -> bool:
    """BPF_MAP_LOOKUP_BATCH on hash maps (5.6+)."""
    def run() -> None:
        with _bpf.map_create(C.BPF_MAP_TYPE_HASH, 4, 4, 4) as m:
            _bpf.map_lookup_batch(m, 4, 4, 4)

    return _probe("batch ops", run)


# --- programs ---------------------------------------------------------------------------

# Attach types some program types must name at load time.
_DEFAULT_ATTACH = {
    C.BPF_PROG_TYPE_CGROUP_SOCK_ADDR: C.BPF_CGROUP_INET4_CONNECT,
    C.BPF_PROG_TYPE_SK_LOOKUP: C.BPF_SK_LOOKUP,
    C.BPF_PROG_TYPE_NETFILTER: C.BPF_NETFILTER,
    C.BPF_PROG_TYPE_CGROUP_SOCKOPT: C.BPF_CGROUP_GETSOCKOPT,
}
# Program types that cannot load without a kernel BTF target; the verifier's complaint
# about the missing target proves the type itself exists.
_NEEDS_TARGET = {
    C.BPF_PROG_TYPE_TRACING, C.BPF_PROG_TYPE_EXT, C.BPF_PROG_TYPE_LSM,
    C.BPF_PROG_TYPE_STRUCT_OPS,
}


def _load(prog_type: int, insns: bytes, *, expected_attach_type: int | None = None,
          log: bool = False, **kw: Any) -> FD:
    if expected_attach_type is None:
        expected_attach_type = _DEFAULT_ATTACH.get(prog_type, 0)
    flags = C.BPF_F_SLEEPABLE if prog_type == C.BPF_PROG_TYPE_SYSCALL else 0
    return _bpf.prog_load(prog_type, insns, "GPL", expected_attach_type=expected_attach_type,
                          prog_flags=flags, log_level=1 if log else 0,
                          log_size=64 * 1024 if log else 0, **kw)


@memoize
def has_prog_type(prog_type: int) -> bool:
    """Kernel can load programs of ``prog_type`` (BPF_PROG_TYPE_*)."""
    if prog_type in _NEEDS_TARGET:
        try:
            _load(prog_type, _TRIVIAL, log=True).close()
            return True
        except OSError as e:
            log = getattr(e, "log", "")
            if e.errno == errno.EINVAL and ("btf_id" in log or "attach" in log):
                return True
            if e.errno == ENOTSUPP and "processed" in log:
                return True  # struct_ops: the verifier ran and wanted a struct_ops target
            if e.errno in (errno.EPERM, errno.EACCES) and not has_capability("CAP_BPF"):
                raise PermissionDenied("feature probe (program load)", "CAP_BPF") from e
            return False
    return _probe(f"prog type {prog_type}", lambda: _load(prog_type, _TRIVIAL))


@memoize
def has_helper(prog_type: int, helper_id: int) -> bool:
    """Programs of ``prog_type`` may call helper ``helper_id`` (BPF_FUNC_*)."""
    if not has_prog_type(prog_type):
        return False
    insns = asm.call(helper_id) + _TRIVIAL
    try:
        _load(prog_type, insns, log=True).close()
        return True
    except OSError as e:
        log = getattr(e, "log", "")
        if ("invalid func" in log or "unknown func" in log
                or "cannot use helper" in log or "not supported" in log):
            return False
        if e.errno in (errno.EPERM, errno.EACCES) and not has_capability("CAP_BPF"):
            raise PermissionDenied("feature probe (helper)", "CAP_BPF") from e
        if e.errno in (errno.EINVAL, errno.EACCES, errno.EPERM) and log:
            return True  # the helper exists; our dummy arguments were refused
        return False


@memoize
def has_attach_type(prog_type: int, attach_type: int) -> bool:
    """Kernel accepts ``attach_type`` as expected_attach_type for ``prog_type`` at load."""
    return _probe(f"attach type {attach_type}",
                  lambda: _load(prog_type, _TRIVIAL, expected_attach_type=attach_type))


# --- links and probes ---------------------------------------------------------------------

@memoize
def has_bpf_link() -> bool:
    """BPF_LINK_CREATE for perf events (5.15+): an invalid target fd gives EBADF."""
    if not has_prog_type(C.BPF_PROG_TYPE_TRACEPOINT):
        return False
    with _load(C.BPF_PROG_TYPE_TRACEPOINT, _TRIVIAL) as prog:
        try:
            _bpf.link_create(prog, 0xFFFFFFFF, C.BPF_PERF_EVENT).close()
        except OSError as e:
            return e.errno == errno.EBADF
    return True


@memoize
def has_raw_tp_link() -> bool:
    """BPF_RAW_TRACEPOINT_OPEN returns a link (fd with link info, 5.8+)."""
    if not has_prog_type(C.BPF_PROG_TYPE_RAW_TRACEPOINT):
        return False
    with _load(C.BPF_PROG_TYPE_RAW_TRACEPOINT, _TRIVIAL) as prog:
        try:
            with _bpf.raw_tracepoint_open("sys_enter", prog) as link:
                _bpf.link_info(link)
        except OSError:
            return False
    return True


@memoize
def has_bpf_cookie() -> bool:
    """bpf_get_attach_cookie() for tracing programs (5.15+)."""
    return has_helper(C.BPF_PROG_TYPE_TRACEPOINT, C.BPF_FUNC_get_attach_cookie)


@memoize
def has_uprobe_multi() -> bool:
    """uprobe_multi links (6.6+): a directory as the binary gives EBADF when supported."""
    if not has_attach_type(C.BPF_PROG_TYPE_KPROBE, C.BPF_TRACE_UPROBE_MULTI):
        return False
    with _load(C.BPF_PROG_TYPE_KPROBE, _TRIVIAL,
               expected_attach_type=C.BPF_TRACE_UPROBE_MULTI) as prog:
        try:
            _bpf.link_create(prog, 0, C.BPF_TRACE_UPROBE_MULTI, uprobe_path="/",
                             uprobe_offsets=[0]).close()
        except OSError as e:
            return e.errno == errno.EBADF
    return True


@memoize
def has_kprobe_multi() -> bool:
    """kprobe_multi links (5.18+, with fprobe): a symbol no kernel has gives ESRCH.

    Kernels before 5.18 load a kprobe program whatever its expected_attach_type and
    refuse the unknown link attach type with EINVAL, as a 5.18+ kernel refuses an
    empty target list: only the failed symbol lookup (ESRCH, from the kallsyms
    search that runs once the link type is known and fprobe exists) proves support.
    Without fprobe the kernel says EOPNOTSUPP before looking at the symbols.
    """
    if not has_attach_type(C.BPF_PROG_TYPE_KPROBE, C.BPF_TRACE_KPROBE_MULTI):
        return False
    with _load(C.BPF_PROG_TYPE_KPROBE, _TRIVIAL,
               expected_attach_type=C.BPF_TRACE_KPROBE_MULTI) as prog:
        try:
            _bpf.link_create(prog, 0, C.BPF_TRACE_KPROBE_MULTI,
                             kprobe_syms=["coreframe_feature_probe_no_such_function"]).close()
        except OSError as e:
            return e.errno in (errno.ESRCH, errno.ENOENT)
    return True


# COREFRAME_DISABLE_LINKS: BPF link kinds to treat as missing, so the fallback a
# kernel without them would take can be chosen (and tested) on one that has them.
DISABLE_LINKS_ENV = "COREFRAME_DISABLE_LINKS"
DISABLEABLE_LINKS = ("kprobe_multi", "uprobe_multi", "xdp", "tcx", "perf_event")


def link_disabled(kind: str) -> bool:
    """Whether ``$COREFRAME_DISABLE_LINKS`` (comma-separated kinds of
    :data:`DISABLEABLE_LINKS`, or ``all``) asks not to use BPF links of ``kind``.

    Read on every call (not memoized): tests and the CLI set it per run. The feature
    probes still report what the kernel has; only the attach code consults this.
    """
    value = os.environ.get(DISABLE_LINKS_ENV, "")
    if not value:
        return False
    names = {n.strip() for n in value.split(",") if n.strip()}
    unknown = names - set(DISABLEABLE_LINKS) - {"all"}
    if unknown:
        raise Error(f"{DISABLE_LINKS_ENV}: unknown link kind {sorted(unknown)[0]!r}; "
                    f"use a comma-separated list of {', '.join(DISABLEABLE_LINKS)} or all")
    return "all" in names or kind in names


@memoize
def has_kprobe() -> bool:
    """kprobes via the perf PMU or tracefs kprobe_events."""
    return has_pmu("kprobe") or has_tracefs_file("kprobe_events")


@memoize
def has_uprobe() -> bool:
    """uprobes via the perf PMU or tracefs uprobe_events."""
    return has_pmu("uprobe") or has_tracefs_file("uprobe_events")


@memoize
def has_tracepoints() -> bool:
    """Tracepoint events in tracefs, or a tracefs mount point the attach code mounts on use.

    The mount point exists whenever the kernel has tracefs (CONFIG_TRACING); this
    project's VMs boot without it mounted, and attaching mounts it (tracefs_root).
    """
    from .sys.host import TRACEFS_MOUNTS

    return has_tracefs_file("events") or os.path.isdir(TRACEFS_MOUNTS[0])


# The ways to run a program on a kernel function or event, best first: what a hint
# may suggest instead of one that failed, once its probe says this kernel offers it.
HOOKS = (("fentry/fexit", "has_trampoline"), ("kprobes", "has_kprobe"),
         ("tracepoints", "has_tracepoints"))


def hook_hint(instead_of: str) -> str:
    """``"use kprobes or tracepoints"``, naming only the other hooks this kernel offers.

    ``instead_of`` is one of the HOOKS names (the one that failed). A probe that
    cannot run (no privilege) counts as not offered: a hint must not promise.
    """
    offered = []
    for name, probe in HOOKS:
        if name == instead_of:
            continue
        try:
            ok = globals()[probe]()
        except Error:
            ok = False
        if ok:
            offered.append(name)
    if not offered:
        return "this kernel offers none of " + ", ".join(n for n, _ in HOOKS if n != instead_of)
    return "use " + " or ".join(offered)


def _find_vmlinux_func(name: str) -> int | None:
    """BTF type id of FUNC ``name`` in vmlinux, preferring the shared BTF module."""
    try:
        from .btf.kernel import find_function

        _, type_id = find_function(name)
        return int(type_id)
    except Exception:  # noqa: BLE001 - module absent or not found: fall back to our scan
        pass
    return _scan_func(name)


def _scan_func(name: str) -> int | None:
    try:
        with open(VMLINUX_BTF, "rb") as f:
            data = f.read()
    except OSError:
        return None
    _magic, _ver, _flags, hdr_len, type_off, type_len, str_off, _str_len = struct.unpack_from(
        "<HBBIIIII", data)
    strings = hdr_len + str_off
    want = data.find(b"\0" + name.encode() + b"\0", strings) + 1
    if want <= 0:
        return None
    want -= strings
    pos, end, tid = hdr_len + type_off, hdr_len + type_off + type_len, 1
    extra = {1: 4, 3: 12, 4: 0, 5: 0, 6: 0, 13: 0, 14: 4, 15: 0, 17: 4, 19: 0}
    per_member = {4: 12, 5: 12, 6: 8, 13: 8, 15: 12, 19: 12}
    while pos < end:
        name_off, info = struct.unpack_from("<II", data, pos)
        kind, vlen = (info >> 24) & 0x1F, info & 0xFFFF
        if kind == K.BTF_KIND_FUNC and name_off == want:
            return tid
        pos += 12 + extra.get(kind, 0) + per_member.get(kind, 0) * vlen
        tid += 1
    return None


@memoize
def has_trampoline() -> bool:
    """fentry/fexit (BPF trampolines): load a trivial fentry program on a kernel function."""
    if not has_prog_type(C.BPF_PROG_TYPE_TRACING):
        return False
    for fn in ("bpf_fentry_test1", "do_sys_openat2", "vfs_read"):
        btf_id = _find_vmlinux_func(fn)
        if btf_id is not None:
            break
    else:
        return False
    return _probe("fentry load", lambda: _load(
        C.BPF_PROG_TYPE_TRACING, _TRIVIAL, expected_attach_type=C.BPF_TRACE_FENTRY,
        attach_btf_id=btf_id))


@memoize
def _vmlinux_mentions(needle: bytes) -> bool:
    try:
        with open(VMLINUX_BTF, "rb") as f:
            return needle in f.read()
    except OSError:
        return False


def _short(name: str, prefix: str) -> str:
    return name[len(prefix):].lower() if name.startswith(prefix) else name.lower()


# Helpers worth reporting (what tools typically need).
_HELPERS = [
    "map_lookup_elem", "probe_read_kernel", "probe_read_user", "probe_read_kernel_str",
    "probe_read_user_str", "get_current_task", "get_current_task_btf", "get_stackid",
    "perf_event_output", "ringbuf_output", "ringbuf_reserve", "get_attach_cookie",
    "get_func_ip", "ktime_get_boot_ns", "loop", "send_signal", "override_return",
    "get_branch_snapshot", "find_vma", "user_ringbuf_drain",
]


# How `coreframe features` names each group and row in text, so that a program type
# that loads ("kprobe program type: yes") and a hook that cannot be attached here
# ("kprobe attach (kprobe PMU / kprobe_events): no") never read as one contradicting
# the other. The JSON keys stay the short names.
GROUP_TITLES = {
    "map_types": "Map types (BPF_MAP_CREATE accepts the type)",
    "prog_types": "Program types (BPF_PROG_LOAD accepts the type)",
    "helpers": "Helpers (callable from a tracepoint program)",
    "link_types": "Link types (the kernel hands back a BPF link of this type)",
    "btf_kinds": "BTF kinds (BPF_BTF_LOAD accepts the kind)",
    "misc": "Attach points and other features",
}
_ROW_SUFFIX = {"map_types": " map type", "prog_types": " program type",
               "btf_kinds": " BTF kind"}
_ROW_LABELS = {
    ("helpers", None): "bpf_{} helper",
    ("link_types", "raw_tracepoint"): "raw_tracepoint link (from BPF_RAW_TRACEPOINT_OPEN)",
    ("link_types", "tracing"): "tracing link (fentry/fexit trampolines)",
    ("link_types", "perf_event"): "perf_event link (kprobe/uprobe/tracepoint)",
    ("link_types", "kprobe_multi"): "kprobe_multi link",
    ("link_types", "uprobe_multi"): "uprobe_multi link",
    ("misc", "btf"): "BTF loads (BPF_BTF_LOAD)",
    ("misc", "btf_func_global"): "BTF global functions",
    ("misc", "ringbuf"): "ring buffer",
    ("misc", "mmapable_maps"): "mmap-able arrays (BPF_F_MMAPABLE)",
    ("misc", "batch_ops"): "batch map operations",
    ("misc", "bpf_link"): "BPF links (BPF_LINK_CREATE)",
    ("misc", "bpf_cookie"): "BPF cookies",
    ("misc", "kprobe"): "kprobe attach (kprobe PMU / kprobe_events)",
    ("misc", "uprobe"): "uprobe attach (uprobe PMU / uprobe_events)",
    ("misc", "tracepoint"): "tracepoint attach (tracefs events)",
    ("misc", "trampoline"): "fentry/fexit attach (BPF trampolines)",
    ("misc", "vmlinux_btf"): "kernel BTF (/sys/kernel/btf/vmlinux)",
}


def feature_label(group: str, key: str) -> str:
    """The text name of one ``all_features()`` row: says what was probed."""
    label = _ROW_LABELS.get((group, key)) or _ROW_LABELS.get((group, None))
    if label:
        return label.format(key)
    return key + _ROW_SUFFIX.get(group, "")


def all_features() -> dict[str, Any]:
    """Everything we probe, for ``coreframe features --json`` (names lowercased, no prefix).

    Groups: map_types, prog_types, helpers (availability to tracepoint programs),
    link_types, btf_kinds, misc; each maps a name to a bool.
    """
    map_types = {
        _short(name, "BPF_MAP_TYPE_"): has_map_type(value)
        for value, name in sorted(C.MAP_TYPE_NAMES.items()) if value
    }
    prog_types = {
        _short(name, "BPF_PROG_TYPE_"): has_prog_type(value)
        for value, name in sorted(C.PROG_TYPE_NAMES.items()) if value
    }
    helpers = {
        h: has_helper(C.BPF_PROG_TYPE_TRACEPOINT, getattr(C, f"BPF_FUNC_{h}"))
        for h in _HELPERS
    }
    btf_kinds = {kind.name.lower(): has_btf_kind(kind) for kind in K.Kind if kind}
    link_types = {
        "raw_tracepoint": has_raw_tp_link(),
        "tracing": has_trampoline(),
        "perf_event": has_bpf_link(),
        "kprobe_multi": has_kprobe_multi(),
        "uprobe_multi": has_uprobe_multi(),
    }
    misc = {
        "btf": has_btf(),
        "btf_func_global": has_btf_func_global(),
        "ringbuf": has_ringbuf(),
        "mmapable_maps": has_mmapable_maps(),
        "batch_ops": has_batch_ops(),
        "bpf_link": has_bpf_link(),
        "bpf_cookie": has_bpf_cookie(),
        "kprobe": has_kprobe(),
        "uprobe": has_uprobe(),
        "tracepoint": has_tracepoints(),
        "trampoline": has_trampoline(),
        "vmlinux_btf": os.path.exists(VMLINUX_BTF),
    }
    return {
        "map_types": map_types,
        "prog_types": prog_types,
        "helpers": helpers,
        "link_types": link_types,
        "btf_kinds": btf_kinds,
        "misc": misc,
    }
