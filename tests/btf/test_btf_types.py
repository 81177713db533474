"""BTF parsing: vmlinux, a compiled all-kinds object, synthetic kinds, split BTF."""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import Any

import pytest

from coreframe.btf import BTF, Kind, btf_from_path, kernel
from coreframe.btf.kinds import BTF_FUNC_GLOBAL, BTF_FUNC_STATIC, BTF_VAR_GLOBAL_EXTERN
from coreframe.btf.types import Member
from coreframe.build import compile_bpf
from coreframe.errors import FeatureMissing, ObjectError

VMLINUX = "/sys/kernel/btf/vmlinux"

needs_vmlinux = pytest.mark.skipif(not os.path.exists(VMLINUX), reason="no kernel BTF")


@pytest.fixture(scope="module")
def vm() -> BTF:
    if not os.path.exists(VMLINUX):
        pytest.skip("no /sys/kernel/btf/vmlinux")
    return BTF.from_file(VMLINUX)


@pytest.fixture(scope="module")
def obj(allkinds_obj: Path) -> BTF:
    return btf_from_path(str(allkinds_obj))


def test_kind_names_match_kernel() -> None:
    assert Kind.INT == 1 and Kind.DATASEC == 15 and Kind.ENUM64 == 19
    assert [k.name for k in Kind][1:5] == ["INT", "PTR", "ARRAY", "STRUCT"]


def test_vmlinux_task_struct(vm: BTF) -> None:
    ids = vm.find("task_struct", Kind.STRUCT)
    assert len(ids) == 1
    ts = vm[ids[0]]
    assert ts.kind == Kind.STRUCT and ts.name == "task_struct" and ts.size > 1000
    pid = next(m for m in ts.members if m.name == "pid")
    assert isinstance(pid, Member)
    assert vm.name_of(pid.type) == "pid_t"
    assert vm[pid.type].kind == Kind.TYPEDEF
    assert vm.c_type_name(pid.type) == "pid_t"
    real = vm[vm.resolve(pid.type)]
    assert real.kind == Kind.INT and real.size == 4 and real.signed
    comm = next(m for m in ts.members if m.name == "comm")
    assert vm.c_type_name(comm.type) == "char[16]"
    assert vm.size_of(comm.type) == 16
    assert vm.size_of(ids[0]) == ts.size


def test_vmlinux_len_and_lookup(vm: BTF) -> None:
    assert len(vm) > 1000
    assert vm[0].kind == Kind.UNKN and vm.name_of(0) == ""
    assert vm.find("no_such_type_xyzzy") == []
    assert vm.find("") == []
    func = vm.find("vfs_read", Kind.FUNC)
    assert func
    f = vm[func[0]]
    proto = vm[f.type]
    assert proto.kind == Kind.FUNC_PROTO and len(proto.params) == 4
    assert vm.c_type_name(proto.params[0].type) == "struct file *"
    assert "task_struct" in [vm.name_of(i) for i in vm.find_prefix("task_struc")]


def test_vmlinux_name_index_sorted_and_complete(vm: BTF) -> None:
    offs, ids = vm._index()
    names = [vm.string_bytes(o) for o in offs]
    assert names == sorted(names)
    named = sum(1 for t in range(1, len(vm)) if vm.raw(t)[0])
    assert len(ids) == named


def test_type_id_errors(vm: BTF) -> None:
    with pytest.raises(ObjectError, match="out of range"):
        vm[len(vm)]
    with pytest.raises(ObjectError):
        vm[-1]
    with pytest.raises(ObjectError, match="has no size"):
        vm.size_of(vm.find("vfs_read", Kind.FUNC)[0])


def test_every_kind_from_clang(obj: BTF) -> None:
    kinds = {obj.kind_of(t) for t in range(1, len(obj))}
    for k in (Kind.INT, Kind.PTR, Kind.ARRAY, Kind.STRUCT, Kind.UNION, Kind.ENUM, Kind.FWD,
              Kind.TYPEDEF, Kind.VOLATILE, Kind.CONST, Kind.RESTRICT, Kind.FUNC,
              Kind.FUNC_PROTO, Kind.VAR, Kind.DATASEC, Kind.FLOAT, Kind.DECL_TAG,
              Kind.TYPE_TAG):
        assert k in kinds, k
    ev = obj[obj.find("event", Kind.STRUCT)[0]]
    by_name = {m.name: m for m in ev.members}
    assert obj.c_type_name(by_name["comm"].type) == "char[16]"
    assert obj.c_type_name(by_name["matrix"].type) == "int[2][3]"
    assert obj.c_type_name(by_name["cp"].type) == "const char *restrict"
    assert obj.c_type_name(by_name["v"].type) == "volatile int"
    assert obj.c_type_name(by_name["cb"].type) == "void (*)(int, char *)"
    assert obj.c_type_name(by_name["fu"].type) == "union fwd_union *"
    tagged = obj[by_name["tp"].type]
    assert tagged.kind == Kind.PTR and obj[tagged.type].kind == Kind.TYPE_TAG
    assert obj[tagged.type].name == "user"
    assert obj.resolve(tagged.type) == obj.find("int", Kind.INT)[0]
    assert obj.size_of(by_name["matrix"].type) == 24
    assert obj.size_of(by_name["cp"].type) == 8

    bits = obj[obj.find("bits", Kind.STRUCT)[0]]
    assert [(m.name, m.bit_offset, m.bitfield_size) for m in bits.members] == [
        ("a", 0, 3), ("b", 3, 5), ("c", 8, 40), ("d", 48, 0)]
    un = obj[obj.find("u", Kind.UNION)[0]]
    assert un.kind == Kind.UNION and un.members[2].name == ""
    assert obj[un.members[2].type].kind == Kind.STRUCT
    small = obj[obj.find("small", Kind.ENUM)[0]]
    assert small.values == [("A", 0xFFFFFFFF), ("B", 2)] and not small.signed
    fwd = obj[obj.find("fwd_union")[0]]
    assert fwd.kind == Kind.FWD and fwd.is_union

    helper = obj[obj.find("helper", Kind.FUNC)[0]]
    assert helper.linkage == BTF_FUNC_STATIC
    assert obj[obj.find("global_fn", Kind.FUNC)[0]].linkage == BTF_FUNC_GLOBAL
    assert obj.c_type_name(helper.id) == "int helper(int)"
    tags = [obj[t] for t in obj.find("param", Kind.DECL_TAG) + obj.find("fn", Kind.DECL_TAG)]
    assert [(t.type, t.component_idx) for t in tags] == [(helper.id, 0), (helper.id, -1)]
    ext = obj[obj.find("ext_var", Kind.VAR)[0]]
    assert ext.linkage == BTF_VAR_GLOBAL_EXTERN
    data = obj[obj.find(".data", Kind.DATASEC)[0]]
    assert [obj.name_of(v.type) for v in data.vars] == ["global_ev", "vararg_ptr"]
    assert data.vars[0].size == ev.size
    dbl = obj[obj.find("double", Kind.FLOAT)[0]]
    assert dbl.size == 8
    assert obj.find("int", Kind.INT) and obj[obj.find("_Bool")[0]].is_bool


def test_synthetic_kinds(synthetic_blob: bytes) -> None:
    b = BTF.from_bytes(synthetic_blob)
    sign = b[b.find("sign")[0]]
    assert sign.signed and sign.values == [("NEG", -5), ("ZERO", 0), ("POS", 7)]
    wide = b[b.find("wide")[0]]
    assert wide.kind == Kind.ENUM64 and wide.values == [("W1", 2**64 - 1), ("W2", 2**32)]
    swide = b[b.find("swide")[0]]
    assert swide.signed and swide.values == [("S1", -2), ("S2", 5)]
    kf = b[b.find("kf")[0]]
    assert kf.members[1] == Member("hi", 2, 4, 20)
    weird = b[b.find("weird")[0]]
    assert (weird.encoding, weird.offset, weird.bits) == (3, 2, 9)
    assert b.to_bytes() == synthetic_blob


def test_hdr_len_larger_than_24_is_honoured(synthetic_blob: bytes) -> None:
    blob = synthetic_blob
    magic, ver, flags, hdr_len, to, tl, so, sl = struct.unpack_from("<HBBIIIII", blob)
    grown = struct.pack("<HBBIIIII", magic, ver, flags, 32, to, tl, so, sl) + b"\0" * 8
    b = BTF.from_bytes(grown + blob[24:])
    assert b.find("wide") == BTF.from_bytes(blob).find("wide")
    assert b[b.find("sign")[0]].values[0] == ("NEG", -5)


def test_split_btf_synthetic(raw_btf: Any) -> None:
    base_b = raw_btf()
    i32 = base_b.int_("int", 4, signed=True)
    base_b.add(4, "base_s", 4, vlen=1, extra=struct.pack("<III", base_b.s("x"), i32, 0))
    base = BTF.from_bytes(base_b.blob())
    assert len(base) == 3
    split_b = raw_btf(str_base=len(base_b.strings), first_id=len(base))
    # "int" reuses the base's string offset; new names land after the base strings.
    p = split_b.add(2, "", i32)
    split_b.types[-1] = struct.pack("<III", 0, 2 << 24, i32)
    sid = split_b.add(4, "mod_s", 16, vlen=2, extra=struct.pack(
        "<IIIIII", base_b.offsets["x"], p, 0, split_b.s("y"), i32, 64))
    split_b.add(8, "int_t", i32)
    split = BTF.from_bytes(split_b.blob(), base=base)
    assert split.start_id == 3 and len(split) == 6 and sid == 4
    assert split[1].name == "int" and split[p].type == i32
    s = split[sid]
    assert [m.name for m in s.members] == ["x", "y"]
    assert split.find("int") == [1] and split.find("mod_s") == [4]
    assert split.find("int_t", Kind.TYPEDEF) == [5]
    assert split.resolve(5) == 1 and split.c_type_name(p) == "int *"
    assert [t.id for t in split] == [3, 4, 5]
    with pytest.raises(ObjectError, match="string offset"):
        split.string(10_000)


def test_module_split_btf(btf_cache_dir: Path) -> None:
    mods = kernel.module_names()
    if not mods:
        pytest.skip("no kernel modules with BTF under /sys/kernel/btf on this machine")
    mod = kernel.module_btf(mods[0])
    assert mod.base is kernel.vmlinux()
    assert mod.start_id == len(kernel.vmlinux())
    for t in mod:
        assert t.id >= mod.start_id


def test_module_btf_missing(btf_cache_dir: Path) -> None:
    if not os.path.exists(VMLINUX):
        pytest.skip("no kernel BTF")
    with pytest.raises(FeatureMissing, match="no_such_module"):
        kernel.module_btf("no_such_module")
    with pytest.raises(ObjectError):
        kernel.module_btf("../vmlinux")


@needs_vmlinux
def test_find_function(btf_cache_dir: Path) -> None:
    btf, tid = kernel.find_function("vfs_read")
    assert btf is kernel.vmlinux() and btf[tid].kind == Kind.FUNC
    from coreframe.errors import AttachError

    with pytest.raises(AttachError, match="not_a_kernel_function"):
        kernel.find_function("not_a_kernel_function")


@needs_vmlinux
def test_load_target(
    btf_cache_dir: Path, allkinds_obj: Path, tmp_path: Path, synthetic_blob: bytes
) -> None:
    assert kernel.load_target(None) is kernel.vmlinux()
    assert kernel.load_target(VMLINUX) is kernel.vmlinux()
    elf = kernel.load_target(str(allkinds_obj))
    assert elf.find("event", Kind.STRUCT)
    raw = tmp_path / "t.btf"
    raw.write_bytes(synthetic_blob)
    assert kernel.load_target(str(raw)).find("wide")
    with pytest.raises(ObjectError):
        kernel.load_target(str(tmp_path / "missing.btf"))


def test_elf_without_btf(tmp_path: Path) -> None:
    src = tmp_path / "nobtf.c"
    src.write_text("int x;\n")
    obj = tmp_path / "nobtf.o"
    compile_bpf(src, obj, extra=["-g0"])  # no -g: no .BTF
    with pytest.raises(ObjectError, match=r"no \.BTF"):
        btf_from_path(str(obj))
    bad = tmp_path / "bad.o"
    bad.write_bytes(b"\x7fELF" + b"\xff" * 60)
    with pytest.raises(ObjectError):
        btf_from_path(str(bad))


def test_ids_of_kinds_matches_decoding(obj: BTF) -> None:
    for kinds in [(Kind.FUNC,), (Kind.FUNC, Kind.DATASEC), (Kind.STRUCT, Kind.INT, Kind.PTR)]:
        assert obj.ids_of_kinds(*kinds) == [t.id for t in obj if t.kind in kinds]
    assert obj.ids_of_kinds() == []


def test_patched_reuses_the_layout(obj: BTF) -> None:
    """A same-size copy with a value changed in place reads back the new value."""
    (sid,) = [t.id for t in obj if t.kind == Kind.STRUCT][:1]
    data = bytearray(obj.to_bytes())
    off = obj.type_offset(sid)
    struct.pack_into("<I", data, off + 8, obj[sid].size + 8)
    new = obj.patched(bytes(data))
    assert new[sid].size == obj[sid].size + 8 and len(new) == len(obj)
    assert [t.name for t in new] == [t.name for t in obj]
    with pytest.raises(ObjectError):
        obj.patched(bytes(data) + b"\0\0\0\0")
    data[0] ^= 0xFF
    with pytest.raises(ObjectError):
        obj.patched(bytes(data))
