"""ctypes types generated from BTF match BTF sizes and offsets exactly."""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

import pytest

from coreframe.btf import BTF, Kind, btf_from_path
from coreframe.btf.ctypegen import ctype
from coreframe.errors import ObjectError

VMLINUX = "/sys/kernel/btf/vmlinux"


@pytest.fixture(scope="module")
def vm() -> BTF:
    if not os.path.exists(VMLINUX):
        pytest.skip("no /sys/kernel/btf/vmlinux")
    return BTF.from_file(VMLINUX)


def _check_layout(btf: BTF, tid: int) -> None:
    t = btf[tid]
    ct = ctype(btf, tid)
    assert ctypes.sizeof(ct) == t.size
    for m in t.members:
        if not m.name or m.bitfield_size:
            continue
        field = getattr(ct, m.name)
        if isinstance(field, property):
            continue
        assert field.offset * 8 == m.bit_offset, (t.name, m.name)
        if btf.kind_of(btf.resolve(m.type)) not in (Kind.STRUCT, Kind.UNION):
            assert field.size == btf.size_of(m.type), (t.name, m.name)


@pytest.mark.parametrize("name", ["task_struct", "sk_buff", "file", "mm_struct", "pt_regs",
                                  "trace_event_raw_sys_enter", "bpf_attr", "sock",
                                  "perf_event_attr"])
def test_kernel_struct_layouts(vm: BTF, name: str) -> None:
    ids = vm.find(name, Kind.STRUCT) or vm.find(name, Kind.UNION)
    _check_layout(vm, ids[0])
    assert vm.ctype(("union " if vm.kind_of(ids[0]) == Kind.UNION else "struct ") + name) \
        is ctype(vm, ids[0])


def test_scalar_and_typedef_names(vm: BTF) -> None:
    assert vm.ctype("pid_t") is ctypes.c_int32
    assert vm.ctype("u64") is ctypes.c_uint64
    assert vm.ctype("_Bool") is ctypes.c_bool
    assert vm.ctype("enum bpf_map_type") in (ctypes.c_uint32, ctypes.c_int32)
    with pytest.raises(ObjectError, match="no type 'struct nope_nope'"):
        vm.ctype("struct nope_nope")
    with pytest.raises(ObjectError, match="no ctypes layout"):
        ctype(vm, vm.find("vfs_read", Kind.FUNC)[0])


def test_event_struct_roundtrip(allkinds_obj: Path) -> None:
    btf = btf_from_path(str(allkinds_obj))
    Event = btf.ctype("struct event")
    tid = btf.find("event", Kind.STRUCT)[0]
    _check_layout(btf, tid)
    raw = bytearray(ctypes.sizeof(Event))
    ev = Event.from_buffer(raw)
    ev.comm = b"bash"
    ev.pid_tgid = (42 << 32) | 43
    ev.bf.a = 5
    ev.bf.b = -3
    ev.bf.c = (1 << 40) - 1
    ev.bf.d = 7
    ev.un.hi = -2
    ev.matrix[1][2] = 9
    copy = Event.from_buffer_copy(bytes(raw))
    assert copy.comm == b"bash"
    assert copy.pid_tgid >> 32 == 42
    assert (copy.bf.a, copy.bf.b, copy.bf.c, copy.bf.d) == (5, -3, (1 << 40) - 1, 7)
    assert copy.un.hi == -2 and copy.un.lo == 0
    assert copy.un.x == -131072  # anonymous struct {lo, hi} overlays x
    assert copy.matrix[1][2] == 9
    # bits a/b share the first byte: a=5 (0b101) | b=-3 (0b11101) << 3
    bits_off = Event.bf.offset
    assert raw[bits_off] == (5 | (0b11101 << 3)) & 0xFF
    assert ctypes.sizeof(Event) == btf.size_of(tid)


def test_datasec_ctype(allkinds_obj: Path) -> None:
    btf = btf_from_path(str(allkinds_obj))
    data = btf.find(".data", Kind.DATASEC)[0]
    ct = ctype(btf, data)
    assert ct.global_ev.offset == 0
    rodata = ctype(btf, btf.find(".rodata", Kind.DATASEC)[0])
    assert rodata.ro_cfg.size == 4


def test_memoized(allkinds_obj: Path) -> None:
    btf = btf_from_path(str(allkinds_obj))
    assert btf.ctype("struct event") is btf.ctype("struct event")
    assert btf.ctype("struct bits") is ctype(btf, btf.find("bits", Kind.STRUCT)[0])
