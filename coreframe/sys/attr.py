"""ctypes layouts of the ``union bpf_attr`` variants, info structs and perf_event_attr.

Each bpf() command gets its own Structure laid out exactly like its member of
``union bpf_attr`` in linux/bpf.h (6.18). We pass that struct and its own sizeof:
the kernel zero-extends shorter attrs, so a command never carries bytes it does not
understand (older kernels reject non-zero bytes past what they know with E2BIG).
Pointers are ``__aligned_u64`` fields; use :func:`addr` to fill them.
"""

from __future__ import annotations

from ..runtime.startup import allocate_lock
from . import cdata
from .consts import BPF_OBJ_NAME_LEN, BPF_TAG_SIZE

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

u8 = cdata.c_uint8
u16 = cdata.c_uint16
u32 = cdata.c_uint32
s32 = cdata.c_int32
u64 = cdata.c_uint64


def _named(*classes: type) -> dict[str, type]:
    return {cls.__name__: cls for cls in classes}


def addr(obj: Any) -> int:
    """Address of a ctypes object or writable buffer, for an ``__aligned_u64`` pointer field.

    ``None`` gives 0 (NULL). ``bytes`` is not accepted: it is immutable and the kernel
    may write; use :func:`buffer` to get a ctypes buffer first.
    """
    if obj is None:
        return 0
    if obj.__class__ is int:
        return obj
    return cdata.addressof(obj)


def buffer(data: bytes | bytearray | memoryview | int) -> cdata.Array[cdata.c_char]:
    """A ctypes char buffer holding ``data`` (or ``data`` zero bytes when an int)."""
    if isinstance(data, int):
        return cdata.create_string_buffer(data)
    if not data:
        return cdata.create_string_buffer(1)
    return (cdata.c_char * len(data)).from_buffer_copy(data)


def name_bytes(name: str) -> bytes:
    """Kernel object name: at most BPF_OBJ_NAME_LEN-1 bytes, only [A-Za-z0-9_.]."""
    clean = "".join(c for c in name if c.isascii() and (c.isalnum() or c in "_."))
    return clean.encode()[: BPF_OBJ_NAME_LEN - 1]


def _build_MapCreateAttr() -> dict[str, type]:
    class MapCreateAttr(cdata.Structure):
        """BPF_MAP_CREATE."""

        _fields_ = [
            ("map_type", u32),
            ("key_size", u32),
            ("value_size", u32),
            ("max_entries", u32),
            ("map_flags", u32),
            ("inner_map_fd", u32),
            ("numa_node", u32),
            ("map_name", cdata.c_char * BPF_OBJ_NAME_LEN),
            ("map_ifindex", u32),
            ("btf_fd", u32),
            ("btf_key_type_id", u32),
            ("btf_value_type_id", u32),
            ("btf_vmlinux_value_type_id", u32),
            ("map_extra", u64),
        ]
    return _named(MapCreateAttr)


def _build_MapElemAttr() -> dict[str, type]:
    class MapElemAttr(cdata.Structure):
        """BPF_MAP_{LOOKUP,UPDATE,DELETE}_ELEM, BPF_MAP_GET_NEXT_KEY, BPF_MAP_FREEZE.

        ``value`` doubles as ``next_key`` (a union in the kernel).
        """

        _fields_ = [
            ("map_fd", u32),
            ("key", u64),
            ("value", u64),
            ("flags", u64),
        ]

        @property
        def next_key(self) -> int:
            return int(self.value)

        @next_key.setter
        def next_key(self, v: int) -> None:
            self.value = v
    return _named(MapElemAttr)


def _build_MapBatchAttr() -> dict[str, type]:
    class MapBatchAttr(cdata.Structure):
        """BPF_MAP_*_BATCH."""

        _fields_ = [
            ("in_batch", u64),
            ("out_batch", u64),
            ("keys", u64),
            ("values", u64),
            ("count", u32),
            ("map_fd", u32),
            ("elem_flags", u64),
            ("flags", u64),
        ]
    return _named(MapBatchAttr)


def _build_ProgLoadAttr() -> dict[str, type]:
    class ProgLoadAttr(cdata.Structure):
        """BPF_PROG_LOAD (up to log_true_size, 5.x/6.x compatible when the tail is zero)."""

        _fields_ = [
            ("prog_type", u32),
            ("insn_cnt", u32),
            ("insns", u64),
            ("license", u64),
            ("log_level", u32),
            ("log_size", u32),
            ("log_buf", u64),
            ("kern_version", u32),
            ("prog_flags", u32),
            ("prog_name", cdata.c_char * BPF_OBJ_NAME_LEN),
            ("prog_ifindex", u32),
            ("expected_attach_type", u32),
            ("prog_btf_fd", u32),
            ("func_info_rec_size", u32),
            ("func_info", u64),
            ("func_info_cnt", u32),
            ("line_info_rec_size", u32),
            ("line_info", u64),
            ("line_info_cnt", u32),
            ("attach_btf_id", u32),
            ("attach_prog_fd", u32),  # union with attach_btf_obj_fd
            ("core_relo_cnt", u32),
            ("fd_array", u64),
            ("core_relos", u64),
            ("core_relo_rec_size", u32),
            ("log_true_size", u32),
        ]

        @property
        def attach_btf_obj_fd(self) -> int:
            return int(self.attach_prog_fd)

        @attach_btf_obj_fd.setter
        def attach_btf_obj_fd(self, v: int) -> None:
            self.attach_prog_fd = v
    return _named(ProgLoadAttr)


def _build_ObjAttr() -> dict[str, type]:
    class ObjAttr(cdata.Structure):
        """BPF_OBJ_PIN / BPF_OBJ_GET."""

        _fields_ = [
            ("pathname", u64),
            ("bpf_fd", u32),
            ("file_flags", u32),
            ("path_fd", s32),
        ]
    return _named(ObjAttr)


def _build_ProgAttachAttr() -> dict[str, type]:
    class ProgAttachAttr(cdata.Structure):
        """BPF_PROG_ATTACH / BPF_PROG_DETACH (``target_fd`` doubles as target_ifindex)."""

        _fields_ = [
            ("target_fd", u32),
            ("attach_bpf_fd", u32),
            ("attach_type", u32),
            ("attach_flags", u32),
            ("replace_bpf_fd", u32),
            ("relative_fd", u32),
            ("expected_revision", u64),
        ]
    return _named(ProgAttachAttr)


def _build_TestRunAttr() -> dict[str, type]:
    class TestRunAttr(cdata.Structure):
        """BPF_PROG_RUN (a.k.a. BPF_PROG_TEST_RUN)."""

        __test__ = False  # not a pytest class

        _fields_ = [
            ("prog_fd", u32),
            ("retval", u32),
            ("data_size_in", u32),
            ("data_size_out", u32),
            ("data_in", u64),
            ("data_out", u64),
            ("repeat", u32),
            ("duration", u32),
            ("ctx_size_in", u32),
            ("ctx_size_out", u32),
            ("ctx_in", u64),
            ("ctx_out", u64),
            ("flags", u32),
            ("cpu", u32),
            ("batch_size", u32),
        ]
    return _named(TestRunAttr)


def _build_GetIdAttr() -> dict[str, type]:
    class GetIdAttr(cdata.Structure):
        """BPF_*_GET_NEXT_ID and BPF_*_GET_FD_BY_ID (``start_id`` is also prog/map/btf/link id)."""

        _fields_ = [
            ("start_id", u32),
            ("next_id", u32),
            ("open_flags", u32),
        ]
    return _named(GetIdAttr)


def _build_InfoAttr() -> dict[str, type]:
    class InfoAttr(cdata.Structure):
        """BPF_OBJ_GET_INFO_BY_FD."""

        _fields_ = [
            ("bpf_fd", u32),
            ("info_len", u32),
            ("info", u64),
        ]
    return _named(InfoAttr)


def _build_ProgQueryAttr() -> dict[str, type]:
    class ProgQueryAttr(cdata.Structure):
        """BPF_PROG_QUERY."""

        _fields_ = [
            ("target_fd", u32),
            ("attach_type", u32),
            ("query_flags", u32),
            ("attach_flags", u32),
            ("prog_ids", u64),
            ("prog_cnt", u32),
            ("prog_attach_flags", u64),
            ("link_ids", u64),
            ("link_attach_flags", u64),
            ("revision", u64),
        ]
    return _named(ProgQueryAttr)


def _build_RawTracepointAttr() -> dict[str, type]:
    class RawTracepointAttr(cdata.Structure):
        """BPF_RAW_TRACEPOINT_OPEN (``cookie`` needs 6.10+; keep 0 on older kernels)."""

        _fields_ = [
            ("name", u64),
            ("prog_fd", u32),
            ("cookie", u64),
        ]
    return _named(RawTracepointAttr)


def _build_BtfLoadAttr() -> dict[str, type]:
    class BtfLoadAttr(cdata.Structure):
        """BPF_BTF_LOAD."""

        _fields_ = [
            ("btf", u64),
            ("btf_log_buf", u64),
            ("btf_size", u32),
            ("btf_log_size", u32),
            ("btf_log_level", u32),
            ("btf_log_true_size", u32),
        ]
    return _named(BtfLoadAttr)


def _build_TaskFdQueryAttr() -> dict[str, type]:
    class TaskFdQueryAttr(cdata.Structure):
        """BPF_TASK_FD_QUERY."""

        _fields_ = [
            ("pid", u32),
            ("fd", u32),
            ("flags", u32),
            ("buf_len", u32),
            ("buf", u64),
            ("prog_id", u32),
            ("fd_type", u32),
            ("probe_offset", u64),
            ("probe_addr", u64),
        ]
    return _named(TaskFdQueryAttr)


def _build_LinkCreateAttr() -> dict[str, type]:
    class _LinkIter(cdata.Structure):
        _fields_ = [("iter_info", u64), ("iter_info_len", u32)]

    class _LinkPerfEvent(cdata.Structure):
        _fields_ = [("bpf_cookie", u64)]

    class _LinkKprobeMulti(cdata.Structure):
        _fields_ = [
            ("flags", u32),
            ("cnt", u32),
            ("syms", u64),
            ("addrs", u64),
            ("cookies", u64),
        ]

    class _LinkTracing(cdata.Structure):
        _fields_ = [("target_btf_id", u32), ("cookie", u64)]

    class _LinkNetfilter(cdata.Structure):
        _fields_ = [("pf", u32), ("hooknum", u32), ("priority", s32), ("flags", u32)]

    class _LinkRelative(cdata.Structure):
        """tcx / netkit / cgroup: ``relative_fd`` doubles as relative_id."""

        _fields_ = [("relative_fd", u32), ("expected_revision", u64)]

    class _LinkUprobeMulti(cdata.Structure):
        _fields_ = [
            ("path", u64),
            ("offsets", u64),
            ("ref_ctr_offsets", u64),
            ("cookies", u64),
            ("cnt", u32),
            ("flags", u32),
            ("pid", u32),
        ]

    class _LinkUnion(cdata.Union):
        _fields_ = [
            ("target_btf_id", u32),
            ("iter", _LinkIter),
            ("perf_event", _LinkPerfEvent),
            ("kprobe_multi", _LinkKprobeMulti),
            ("tracing", _LinkTracing),
            ("netfilter", _LinkNetfilter),
            ("tcx", _LinkRelative),
            ("uprobe_multi", _LinkUprobeMulti),
            ("netkit", _LinkRelative),
            ("cgroup", _LinkRelative),
        ]

    class LinkCreateAttr(cdata.Structure):
        """BPF_LINK_CREATE. ``target_fd`` doubles as target_ifindex, ``prog_fd`` as map_fd;
        per-link-type fields live in the anonymous union (``attr.perf_event.bpf_cookie``,
        ``attr.uprobe_multi.path``, ``attr.tracing.cookie``, ...)."""

        _anonymous_ = ("u",)
        _fields_ = [
            ("prog_fd", u32),
            ("target_fd", u32),
            ("attach_type", u32),
            ("flags", u32),
            ("u", _LinkUnion),
        ]
    return _named(_LinkIter, _LinkPerfEvent, _LinkKprobeMulti, _LinkTracing, _LinkNetfilter,
                  _LinkRelative, _LinkUprobeMulti, _LinkUnion, LinkCreateAttr)


def _build_LinkUpdateAttr() -> dict[str, type]:
    class LinkUpdateAttr(cdata.Structure):
        """BPF_LINK_UPDATE."""

        _fields_ = [
            ("link_fd", u32),
            ("new_prog_fd", u32),
            ("flags", u32),
            ("old_prog_fd", u32),
        ]
    return _named(LinkUpdateAttr)


def _build_LinkDetachAttr() -> dict[str, type]:
    class LinkDetachAttr(cdata.Structure):
        """BPF_LINK_DETACH."""

        _fields_ = [("link_fd", u32)]
    return _named(LinkDetachAttr)


def _build_EnableStatsAttr() -> dict[str, type]:
    class EnableStatsAttr(cdata.Structure):
        """BPF_ENABLE_STATS."""

        _fields_ = [("type", u32)]
    return _named(EnableStatsAttr)


def _build_IterCreateAttr() -> dict[str, type]:
    class IterCreateAttr(cdata.Structure):
        """BPF_ITER_CREATE."""

        _fields_ = [("link_fd", u32), ("flags", u32)]
    return _named(IterCreateAttr)


def _build_ProgBindMapAttr() -> dict[str, type]:
    class ProgBindMapAttr(cdata.Structure):
        """BPF_PROG_BIND_MAP."""

        _fields_ = [("prog_fd", u32), ("map_fd", u32), ("flags", u32)]
    return _named(ProgBindMapAttr)


# --- BPF_OBJ_GET_INFO_BY_FD result structs -------------------------------------------


def _build_BpfProgInfo() -> dict[str, type]:
    class BpfProgInfo(cdata.Structure):
        """struct bpf_prog_info."""

        _fields_ = [
            ("type", u32),
            ("id", u32),
            ("tag", u8 * BPF_TAG_SIZE),
            ("jited_prog_len", u32),
            ("xlated_prog_len", u32),
            ("jited_prog_insns", u64),
            ("xlated_prog_insns", u64),
            ("load_time", u64),
            ("created_by_uid", u32),
            ("nr_map_ids", u32),
            ("map_ids", u64),
            ("name", cdata.c_char * BPF_OBJ_NAME_LEN),
            ("ifindex", u32),
            ("gpl_compatible", u32, 1),
            ("netns_dev", u64),
            ("netns_ino", u64),
            ("nr_jited_ksyms", u32),
            ("nr_jited_func_lens", u32),
            ("jited_ksyms", u64),
            ("jited_func_lens", u64),
            ("btf_id", u32),
            ("func_info_rec_size", u32),
            ("func_info", u64),
            ("nr_func_info", u32),
            ("nr_line_info", u32),
            ("line_info", u64),
            ("jited_line_info", u64),
            ("nr_jited_line_info", u32),
            ("line_info_rec_size", u32),
            ("jited_line_info_rec_size", u32),
            ("nr_prog_tags", u32),
            ("prog_tags", u64),
            ("run_time_ns", u64),
            ("run_cnt", u64),
            ("recursion_misses", u64),
            ("verified_insns", u32),
            ("attach_btf_obj_id", u32),
            ("attach_btf_id", u32),
        ]
    return _named(BpfProgInfo)


def _build_BpfMapInfo() -> dict[str, type]:
    class BpfMapInfo(cdata.Structure):
        """struct bpf_map_info."""

        _fields_ = [
            ("type", u32),
            ("id", u32),
            ("key_size", u32),
            ("value_size", u32),
            ("max_entries", u32),
            ("map_flags", u32),
            ("name", cdata.c_char * BPF_OBJ_NAME_LEN),
            ("ifindex", u32),
            ("btf_vmlinux_value_type_id", u32),
            ("netns_dev", u64),
            ("netns_ino", u64),
            ("btf_id", u32),
            ("btf_key_type_id", u32),
            ("btf_value_type_id", u32),
            ("btf_vmlinux_id", u32),
            ("map_extra", u64),
        ]
    return _named(BpfMapInfo)


def _build_BpfBtfInfo() -> dict[str, type]:
    class BpfBtfInfo(cdata.Structure):
        """struct bpf_btf_info."""

        _fields_ = [
            ("btf", u64),
            ("btf_size", u32),
            ("id", u32),
            ("name", u64),
            ("name_len", u32),
            ("kernel_btf", u32),
        ]
    return _named(BpfBtfInfo)


def _build_BpfLinkInfo() -> dict[str, type]:
    class BpfLinkInfo(cdata.Structure):
        """struct bpf_link_info: the common head plus the per-type union as raw u64 words.

        Decoding the union is link-type specific; ``coreframe.link`` reads what it needs
        from ``extra`` (e.g. for raw_tracepoint: extra[0] = tp_name ptr, extra[1] low = len).
        """

        _fields_ = [
            ("type", u32),
            ("id", u32),
            ("prog_id", u32),
            ("_pad", u32),
            ("extra", u64 * 8),
        ]
    return _named(BpfLinkInfo)


# --- perf_event_open(2) --------------------------------------------------------------


_PERF_FLAG_BITS = [
    "disabled", "inherit", "pinned", "exclusive", "exclude_user", "exclude_kernel",
    "exclude_hv", "exclude_idle", "mmap", "comm", "freq", "inherit_stat", "enable_on_exec",
    "task", "watermark",
]
_PERF_FLAG_BITS_2 = [
    "mmap_data", "sample_id_all", "exclude_host", "exclude_guest",
    "exclude_callchain_kernel", "exclude_callchain_user", "mmap2", "comm_exec",
    "use_clockid", "context_switch", "write_backward", "namespaces", "ksymbol", "bpf_event",
    "aux_output", "cgroup", "text_poke", "build_id", "inherit_thread", "remove_on_exec",
    "sigtrap",
]


def _build_PerfEventAttr() -> dict[str, type]:
    class _PerfPeriod(cdata.Union):
        _fields_ = [("sample_period", u64), ("sample_freq", u64)]

    class _PerfWakeup(cdata.Union):
        _fields_ = [("wakeup_events", u32), ("wakeup_watermark", u32)]

    class _PerfConfig1(cdata.Union):
        _fields_ = [("config1", u64), ("bp_addr", u64), ("kprobe_func", u64), ("uprobe_path", u64)]

    class _PerfConfig2(cdata.Union):
        _fields_ = [("config2", u64), ("bp_len", u64), ("kprobe_addr", u64), ("probe_offset", u64)]

    class PerfEventAttr(cdata.Structure):
        """struct perf_event_attr (PERF_ATTR_SIZE_VER8, 136 bytes).

        Set ``size = cdata.sizeof(PerfEventAttr)`` (done by ``__init__``). Union members are
        reachable by their kernel names: ``sample_period``/``sample_freq``,
        ``wakeup_events``/``wakeup_watermark``, ``config1``/``kprobe_func``/``uprobe_path``,
        ``config2``/``probe_offset``.
        """

        _anonymous_ = ("_period", "_wakeup", "_config1", "_config2")
        _fields_ = (
            [
                ("type", u32),
                ("size", u32),
                ("config", u64),
                ("_period", _PerfPeriod),
                ("sample_type", u64),
                ("read_format", u64),
            ]
            + [(name, u64, 1) for name in _PERF_FLAG_BITS]
            + [("precise_ip", u64, 2)]
            + [(name, u64, 1) for name in _PERF_FLAG_BITS_2]
            + [
                ("__reserved_1", u64, 26),
                ("_wakeup", _PerfWakeup),
                ("bp_type", u32),
                ("_config1", _PerfConfig1),
                ("_config2", _PerfConfig2),
                ("branch_sample_type", u64),
                ("sample_regs_user", u64),
                ("sample_stack_user", u32),
                ("clockid", s32),
                ("sample_regs_intr", u64),
                ("aux_watermark", u32),
                ("sample_max_stack", u16),
                ("__reserved_2", u16),
                ("aux_sample_size", u32),
                ("aux_action", u32),
                ("sig_data", u64),
                ("config3", u64),
            ]
        )

        def __init__(self, **kwargs: Any) -> None:
            kwargs.setdefault("size", cdata.sizeof(PerfEventAttr))
            super().__init__(**kwargs)
    return _named(_PerfPeriod, _PerfWakeup, _PerfConfig1, _PerfConfig2, PerfEventAttr)


# Each Structure above costs tens of microseconds to create (ctypes lays it out at
# class creation) and a tool uses a third of them: each is built on first use.
_BUILDERS: dict[str, Callable[[], dict[str, type]]] = {
    "MapCreateAttr": _build_MapCreateAttr,
    "MapElemAttr": _build_MapElemAttr,
    "MapBatchAttr": _build_MapBatchAttr,
    "ProgLoadAttr": _build_ProgLoadAttr,
    "ObjAttr": _build_ObjAttr,
    "ProgAttachAttr": _build_ProgAttachAttr,
    "TestRunAttr": _build_TestRunAttr,
    "GetIdAttr": _build_GetIdAttr,
    "InfoAttr": _build_InfoAttr,
    "ProgQueryAttr": _build_ProgQueryAttr,
    "RawTracepointAttr": _build_RawTracepointAttr,
    "BtfLoadAttr": _build_BtfLoadAttr,
    "TaskFdQueryAttr": _build_TaskFdQueryAttr,
    "_LinkIter": _build_LinkCreateAttr,
    "_LinkPerfEvent": _build_LinkCreateAttr,
    "_LinkKprobeMulti": _build_LinkCreateAttr,
    "_LinkTracing": _build_LinkCreateAttr,
    "_LinkNetfilter": _build_LinkCreateAttr,
    "_LinkRelative": _build_LinkCreateAttr,
    "_LinkUprobeMulti": _build_LinkCreateAttr,
    "_LinkUnion": _build_LinkCreateAttr,
    "LinkCreateAttr": _build_LinkCreateAttr,
    "LinkUpdateAttr": _build_LinkUpdateAttr,
    "LinkDetachAttr": _build_LinkDetachAttr,
    "EnableStatsAttr": _build_EnableStatsAttr,
    "IterCreateAttr": _build_IterCreateAttr,
    "ProgBindMapAttr": _build_ProgBindMapAttr,
    "BpfProgInfo": _build_BpfProgInfo,
    "BpfMapInfo": _build_BpfMapInfo,
    "BpfBtfInfo": _build_BpfBtfInfo,
    "BpfLinkInfo": _build_BpfLinkInfo,
    "_PerfPeriod": _build_PerfEventAttr,
    "_PerfWakeup": _build_PerfEventAttr,
    "_PerfConfig1": _build_PerfEventAttr,
    "_PerfConfig2": _build_PerfEventAttr,
    "PerfEventAttr": _build_PerfEventAttr,
}
_build_lock = allocate_lock()


def __getattr__(name: str) -> type:
    builder = _BUILDERS.get(name)
    if builder is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    with _build_lock:
        if name not in globals():
            globals().update(builder())
    return globals()[name]


def __dir__() -> list[str]:
    return sorted({*globals(), *_BUILDERS})
