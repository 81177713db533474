"""CO-RE semantics against synthetic target BTFs (tests/btf/targets/*.c)."""

from __future__ import annotations

import shutil
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_core_support import OBJECTS, ObjInfo, compile_target, read_object

from coreframe import asm
from coreframe.btf.core import (
    BPF_CORE_ENUMVAL_EXISTS,
    BPF_CORE_ENUMVAL_VALUE,
    BPF_CORE_FIELD_BYTE_OFFSET,
    BPF_CORE_FIELD_BYTE_SIZE,
    BPF_CORE_FIELD_EXISTS,
    BPF_CORE_FIELD_LSHIFT_U64,
    BPF_CORE_FIELD_RSHIFT_U64,
    BPF_CORE_FIELD_SIGNED,
    BPF_CORE_TYPE_EXISTS,
    BPF_CORE_TYPE_ID_LOCAL,
    BPF_CORE_TYPE_MATCHES,
    BPF_CORE_TYPE_SIZE,
    POISON_HELPER,
    CoreRelocator,
    essential_name,
)
from coreframe.btf.ext import CoreRelo
from coreframe.btf.types import BTF
from coreframe.errors import RelocationError

pytestmark = pytest.mark.skipif(shutil.which("clang") is None, reason="clang missing")

SEC = "tracepoint/syscalls/sys_enter_getppid"


@pytest.fixture(scope="module")
def flavors() -> ObjInfo:
    return read_object(OBJECTS / "core_flavors.bpf.o")


@pytest.fixture(scope="module")
def targets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, BTF]:
    tmp = tmp_path_factory.mktemp("targets")
    return {n: compile_target(n, tmp)[1] for n in ("cf_target", "cf_ambig", "cf_agree")}


def _find(info: ObjInfo, type_name: str, access: str, kind: int) -> tuple[int, CoreRelo]:
    for i, r in enumerate(info.ext.core_relos[SEC]):
        if info.btf.name_of(r.type_id) == type_name and r.access_str == access and r.kind == kind:
            return i, r
    raise LookupError((type_name, access, kind))


def _resolve_upto(rel: CoreRelocator, info: ObjInfo, index: int):
    """Resolve relocations in order up to ``index`` (candidate pruning is order-dependent)."""
    res = None
    for r in info.ext.core_relos[SEC][: index + 1]:
        res = rel.resolve(r)
    return res


def test_essential_name() -> None:
    assert essential_name("task_struct___mine") == "task_struct"
    assert essential_name("a___b___c") == "a___b"
    assert essential_name("task_struct") == "task_struct"
    assert essential_name("a____b") == "a____b"
    assert essential_name("___x") == "___x"
    assert essential_name("x___") == "x___"


def test_swapped_fields_and_local_flavor(flavors: ObjInfo, targets: dict[str, BTF]) -> None:
    rel = CoreRelocator(flavors.btf, targets["cf_target"])
    _, a = _find(flavors, "cf_pair", "0:0", BPF_CORE_FIELD_BYTE_OFFSET)
    _, b = _find(flavors, "cf_pair", "0:1", BPF_CORE_FIELD_BYTE_OFFSET)
    _, bonly = _find(flavors, "cf_pair___b_only", "0:0", BPF_CORE_FIELD_BYTE_OFFSET)
    ra, rb, rbo = rel.resolve(a), rel.resolve(b), rel.resolve(bonly)
    assert (ra.old_value, ra.new_value) == (0, 4)
    assert (rb.old_value, rb.new_value) == (4, 0)
    assert (rbo.old_value, rbo.new_value) == (0, 0)
    assert rbo.target_type_name == "struct cf_pair"
    assert "struct cf_pair___b_only.b" in rbo.explanation
    assert "0 -> 0" in rbo.explanation


def test_missing_field_is_poisoned(flavors: ObjInfo, targets: dict[str, BTF]) -> None:
    rel = CoreRelocator(flavors.btf, targets["cf_target"])
    _, exists = _find(flavors, "cf_node", "0:3", BPF_CORE_FIELD_EXISTS)
    _, read = _find(flavors, "cf_node", "0:3:1", BPF_CORE_FIELD_BYTE_OFFSET)
    r_exists = rel.resolve(exists)
    assert (r_exists.old_value, r_exists.new_value, r_exists.poison) == (1, 0, False)
    r_read = rel.resolve(read)
    assert r_read.poison
    assert "poisoned" in r_read.explanation and "'tail'" in r_read.explanation
    insns = bytearray(flavors.sections[SEC])
    rel.apply(insns, read.insn_off // 8, read, r_read)
    assert asm.decode(insns, read.insn_off // 8) == (asm.CALL, 0, 0, 0, POISON_HELPER)


def test_array_index_out_of_target_bounds_is_poisoned(
    flavors: ObjInfo, targets: dict[str, BTF]
) -> None:
    rel = CoreRelocator(flavors.btf, targets["cf_target"])
    _, r = _find(flavors, "cf_node", "0:1:3:1", BPF_CORE_FIELD_BYTE_OFFSET)
    res = rel.resolve(r)
    assert res.poison and "out of range" in res.explanation


def test_field_size_change_rewrites_load_size(flavors: ObjInfo, targets: dict[str, BTF]) -> None:
    rel = CoreRelocator(flavors.btf, targets["cf_target"])
    _, narrow = _find(flavors, "cf_sized", "0:0", BPF_CORE_FIELD_BYTE_OFFSET)
    res = rel.resolve(narrow)
    assert (res.old_value, res.new_value, res.orig_size, res.new_size) == (0, 8, 2, 4)
    assert not res.fail_memsz_adjust
    assert "load/store size 2 -> 4" in res.explanation
    insns = bytearray(flavors.sections[SEC])
    idx = narrow.insn_off // 8
    code, dst, src, off, imm = asm.decode(insns, idx)
    assert code == asm.BPF_LDX | asm.BPF_MEM | asm.BPF_H and off == 0
    rel.apply(insns, idx, narrow, res)
    assert asm.decode(insns, idx) == (asm.BPF_LDX | asm.BPF_MEM | asm.BPF_W, dst, src, 8, imm)


def test_signed_field_size_change_poisons_load(flavors: ObjInfo, targets: dict[str, BTF]) -> None:
    rel = CoreRelocator(flavors.btf, targets["cf_target"])
    _, sgn = _find(flavors, "cf_sized", "0:1", BPF_CORE_FIELD_BYTE_OFFSET)
    res = rel.resolve(sgn)
    assert res.fail_memsz_adjust and not res.poison
    assert "cannot be adjusted" in res.explanation
    insns = bytearray(flavors.sections[SEC])
    rel.apply(insns, sgn.insn_off // 8, sgn, res)
    assert asm.decode(insns, sgn.insn_off // 8) == (asm.CALL, 0, 0, 0, POISON_HELPER)


def test_bitfields(flavors: ObjInfo, targets: dict[str, BTF]) -> None:
    rel = CoreRelocator(flavors.btf, targets["cf_target"])
    got = {
        kind: rel.resolve(_find(flavors, "cf_bits", "0:2", kind)[1]).new_value
        for kind in (
            BPF_CORE_FIELD_BYTE_OFFSET,
            BPF_CORE_FIELD_BYTE_SIZE,
            BPF_CORE_FIELD_LSHIFT_U64,
            BPF_CORE_FIELD_RSHIFT_U64,
            BPF_CORE_FIELD_SIGNED,
        )
    }
    # target: int pad; unsigned lo:3 (bit 32); hi:7 (bit 35); int neg:4 (bit 42)
    assert got == {
        BPF_CORE_FIELD_BYTE_OFFSET: 4,
        BPF_CORE_FIELD_BYTE_SIZE: 4,
        BPF_CORE_FIELD_LSHIFT_U64: 64 - (42 + 4 - 32),
        BPF_CORE_FIELD_RSHIFT_U64: 60,
        BPF_CORE_FIELD_SIGNED: 1,
    }


def test_enum_values_differ(flavors: ObjInfo, targets: dict[str, BTF]) -> None:
    rel = CoreRelocator(flavors.btf, targets["cf_target"])
    red = rel.resolve(_find(flavors, "cf_color", "0", BPF_CORE_ENUMVAL_VALUE)[1])
    assert (red.old_value, red.new_value) == (1, 10)
    assert "CF_RED = 10" in red.explanation
    blue_exists = rel.resolve(_find(flavors, "cf_color", "2", BPF_CORE_ENUMVAL_EXISTS)[1])
    assert (blue_exists.old_value, blue_exists.new_value) == (1, 0)
    blue = rel.resolve(_find(flavors, "cf_color", "2", BPF_CORE_ENUMVAL_VALUE)[1])
    assert blue.poison and "CF_BLUE" in blue.explanation


def test_type_kinds(flavors: ObjInfo, targets: dict[str, BTF]) -> None:
    rel = CoreRelocator(flavors.btf, targets["cf_target"])
    size = rel.resolve(_find(flavors, "cf_node", "0", BPF_CORE_TYPE_SIZE)[1])
    assert (size.old_value, size.new_value) == (48, 32)
    handle = rel.resolve(_find(flavors, "cf_handle_t", "0", BPF_CORE_TYPE_EXISTS)[1])
    assert handle.new_value == 1 and handle.target_type_name == "typedef cf_handle_t"
    local_id = _find(flavors, "cf_pair", "0", BPF_CORE_TYPE_EXISTS)[1].type_id
    tid_local = rel.resolve(CoreRelo(0, local_id, "0", BPF_CORE_TYPE_ID_LOCAL))
    assert (tid_local.old_value, tid_local.new_value, tid_local.validate) == (
        local_id, local_id, False
    )


def test_type_kinds_without_target_yield_zero(flavors: ObjInfo, targets: dict[str, BTF]) -> None:
    rel = CoreRelocator(flavors.btf, targets["cf_ambig"])
    res = rel.resolve(_find(flavors, "cf_node", "0", BPF_CORE_TYPE_SIZE)[1])
    assert (res.old_value, res.new_value, res.poison) == (48, 0, False)
    assert "no target type named 'cf_node'" in res.explanation


def test_type_matches(flavors: ObjInfo, targets: dict[str, BTF]) -> None:
    rel = CoreRelocator(flavors.btf, targets["cf_target"])

    def matches(name: str) -> int:
        tid = flavors.btf.find(name)[0]
        return rel.resolve(CoreRelo(0, tid, "0", BPF_CORE_TYPE_MATCHES)).new_value

    assert matches("cf_pair") == 1  # same members, other order
    assert matches("cf_node") == 0  # local 'tail' missing in the target
    assert matches("cf_sized") == 0  # __u16 vs __u32
    assert matches("cf_color") == 0  # CF_BLUE missing in the target
    assert matches("cf_handle_t") == 1


def test_disagreeing_flavors_are_ambiguous(flavors: ObjInfo, targets: dict[str, BTF]) -> None:
    rel = CoreRelocator(flavors.btf, targets["cf_ambig"])
    index, a = _find(flavors, "cf_pair", "0:0", BPF_CORE_FIELD_BYTE_OFFSET)
    with pytest.raises(RelocationError, match=r"ambiguous.*cf_pair") as exc:
        _resolve_upto(rel, flavors, index)
    assert "byte_off" in str(exc.value) and "cf_pair" in str(exc.value)


def test_agreeing_flavors_resolve(flavors: ObjInfo, targets: dict[str, BTF]) -> None:
    rel = CoreRelocator(flavors.btf, targets["cf_agree"])
    index, b = _find(flavors, "cf_pair", "0:1", BPF_CORE_FIELD_BYTE_OFFSET)
    res = _resolve_upto(rel, flavors, index)
    assert (res.old_value, res.new_value) == (4, 4)


class _CountingBTF:
    """Wraps a target BTF and counts name lookups."""

    def __init__(self, btf: BTF) -> None:
        self._btf = btf
        self.lookups = 0

    def find(self, *a, **kw):
        self.lookups += 1
        return self._btf.find(*a, **kw)

    def find_prefix(self, *a, **kw):
        self.lookups += 1
        return self._btf.find_prefix(*a, **kw)

    def __getitem__(self, tid: int):
        return self._btf[tid]

    def __getattr__(self, name: str):
        return getattr(self._btf, name)


def test_candidates_are_looked_up_once_per_local_type(
    flavors: ObjInfo, targets: dict[str, BTF]
) -> None:
    target = _CountingBTF(targets["cf_target"])
    rel = CoreRelocator(flavors.btf, target)  # type: ignore[arg-type]
    relos = flavors.ext.core_relos[SEC]
    for r in relos:
        rel.resolve(r)
    local_types = {r.type_id for r in relos if r.kind != BPF_CORE_TYPE_ID_LOCAL}
    assert target.lookups == 2 * len(local_types)  # exact name + flavored names


def test_bad_relocations_raise_relocation_error(flavors: ObjInfo) -> None:
    rel = CoreRelocator(flavors.btf, flavors.btf)
    pair = flavors.btf.find("cf_pair")[0]
    with pytest.raises(RelocationError, match="malformed access string"):
        rel.resolve(CoreRelo(8, pair, "0::1", BPF_CORE_FIELD_BYTE_OFFSET))
    with pytest.raises(RelocationError, match="member index 7 out of range"):
        rel.resolve(CoreRelo(8, pair, "0:7", BPF_CORE_FIELD_BYTE_OFFSET))
    with pytest.raises(RelocationError, match="must have access string '0'"):
        rel.resolve(CoreRelo(8, pair, "0:1", BPF_CORE_TYPE_SIZE))
    with pytest.raises(RelocationError, match="unknown CO-RE relocation kind 13"):
        rel.resolve(CoreRelo(8, pair, "0", 13))
    with pytest.raises(RelocationError, match="non-enum"):
        rel.resolve(CoreRelo(8, pair, "0", BPF_CORE_ENUMVAL_VALUE))
    task = read_object(OBJECTS / "core_task.bpf.o").btf
    anon = next(t.id for t in task if t.kind.name == "STRUCT" and not t.name)
    with pytest.raises(RelocationError, match="anonymous"):
        CoreRelocator(task, task).resolve(CoreRelo(8, anon, "0:0", BPF_CORE_FIELD_BYTE_OFFSET))


def test_array_fields_and_elements(flavors: ObjInfo, targets: dict[str, BTF]) -> None:
    """Element loads are resized; a whole-array field changing element size is not."""
    rel = CoreRelocator(flavors.btf, targets["cf_target"])
    insns = bytearray(flavors.sections[SEC])
    _, elem = _find(flavors, "cf_sized", "0:4:1", BPF_CORE_FIELD_BYTE_OFFSET)
    res = rel.resolve(elem)
    assert (res.new_value, res.orig_size, res.new_size, res.fail_memsz_adjust) == (42, 1, 2, False)
    rel.apply(insns, elem.insn_off // 8, elem, res)
    assert asm.decode(insns, elem.insn_off // 8)[0] == asm.BPF_LDX | asm.BPF_MEM | asm.BPF_H
    _, whole = _find(flavors, "cf_sized", "0:4", BPF_CORE_FIELD_BYTE_OFFSET)
    res = rel.resolve(whole)
    assert res.fail_memsz_adjust
    rel.apply(insns, whole.insn_off // 8, whole, res)
    assert asm.decode(insns, whole.insn_off // 8) == (asm.CALL, 0, 0, 0, POISON_HELPER)


def test_negative_enum_value_is_sign_extended(flavors: ObjInfo, targets: dict[str, BTF]) -> None:
    rel = CoreRelocator(flavors.btf, targets["cf_target"])
    _, mode = _find(flavors, "cf_mode", "0", BPF_CORE_ENUMVAL_VALUE)
    res = rel.resolve(mode)
    assert res.new_value == (1 << 64) - 2
    insns = bytearray(flavors.sections[SEC])
    idx = mode.insn_off // 8
    rel.apply(insns, idx, mode, res)
    assert (asm.decode(insns, idx)[4], asm.decode(insns, idx + 1)[4]) == (-2, -1)


def test_resolve_all_pins_libbpf_order(tmp_path_factory: pytest.TempPathFactory,
                                       flavors: ObjInfo) -> None:
    """Candidate pruning makes order matter; resolve_all() fixes it to .BTF.ext order."""
    _, split = compile_target("cf_split", tmp_path_factory.mktemp("split"))
    _, a = _find(flavors, "cf_pair", "0:0", BPF_CORE_FIELD_BYTE_OFFSET)
    _, b = _find(flavors, "cf_pair", "0:1", BPF_CORE_FIELD_BYTE_OFFSET)

    backwards = CoreRelocator(flavors.btf, split)
    assert not backwards.resolve(b).poison  # b first: only cf_pair___v2 survives
    assert backwards.resolve(a).poison

    pinned = CoreRelocator(flavors.btf, split)
    outcomes = pinned.resolve_all(flavors.ext.core_relos)
    assert len(outcomes) == len(set(flavors.ext.core_relos[SEC]))
    assert pinned.resolve(b).poison  # as libbpf: a came first in the file
    assert not pinned.resolve(a).poison


def _module_btf(base: BTF) -> BTF:
    """A split BTF over ``base`` declaring ``struct cf_node { int count; }``, like a module's."""
    strings = b"\0cf_node\0count\0"
    str_base = struct.unpack_from("<I", base.to_bytes(), 20)[0]  # base's str_len
    int_id = base.find("int")[0]
    types = struct.pack("<III", str_base + 1, (4 << 24) | 1, 4)
    types += struct.pack("<III", str_base + 9, int_id, 0)
    hdr = struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, len(types), len(types), len(strings))
    return BTF.from_bytes(hdr + types + strings, base=base)


def test_module_btf_candidates(flavors: ObjInfo, targets: dict[str, BTF]) -> None:
    """Types missing from vmlinux are searched in module BTFs, ids past the base's."""
    base = targets["cf_ambig"]  # has cf_pair (twice) but no cf_node
    mod = _module_btf(base)
    rel = CoreRelocator(flavors.btf, base, modules=[mod])
    _, count = _find(flavors, "cf_node", "0:2", BPF_CORE_FIELD_BYTE_OFFSET)
    res = rel.resolve(count)
    assert (res.old_value, res.new_value, res.poison) == (40, 0, False)
    assert res.target_btf is mod and res.target_type_id == len(base)
    _, size = _find(flavors, "cf_node", "0", BPF_CORE_TYPE_SIZE)
    assert rel.resolve(size).new_value == 4
    without = CoreRelocator(flavors.btf, base)
    assert without.resolve(count).poison


@settings(
    max_examples=400, deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_arbitrary_relocations_only_raise_relocation_error(
    data: st.DataObject, flavors: ObjInfo, targets: dict[str, BTF]
) -> None:
    """Whatever a (possibly hostile) object asks for, the user sees a RelocationError."""
    local = flavors.btf
    type_id = data.draw(st.integers(min_value=0, max_value=len(local) + 2))
    access = data.draw(
        st.one_of(
            st.lists(st.integers(0, 6), min_size=1, max_size=5).map(
                lambda xs: ":".join(map(str, xs))
            ),
            st.text(alphabet="0123456789:x", max_size=6),
        )
    )
    kind = data.draw(st.integers(0, 14))
    target = targets[data.draw(st.sampled_from(sorted(targets)))]
    rel = CoreRelocator(local, target)
    try:
        res = rel.resolve(CoreRelo(8, type_id, access, kind))
    except RelocationError:
        return
    assert isinstance(res.explanation, str) and res.explanation
