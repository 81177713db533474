"""Instruction patching of resolved CO-RE relocations (no kernel needed)."""

from __future__ import annotations

import pytest

from coreframe import asm
from coreframe.btf.core import (
    BPF_CORE_FIELD_BYTE_OFFSET,
    BPF_CORE_TYPE_ID_TARGET,
    POISON_HELPER,
    CoreResult,
    apply_result,
)
from coreframe.errors import RelocationError


def _res(old: int, new: int, **kw) -> CoreResult:
    kw.setdefault("kind", BPF_CORE_FIELD_BYTE_OFFSET)
    kw.setdefault("poison", False)
    kw.setdefault("explanation", "test")
    return CoreResult(old_value=old, new_value=new, **kw)


def _prog(*insns: bytes) -> bytearray:
    return bytearray(b"".join(insns) + asm.exit_())


ADD_K = asm.BPF_ALU64 | asm.BPF_ADD | asm.BPF_K
LDX_DW = asm.BPF_LDX | asm.BPF_MEM | asm.BPF_DW
LDX_H = asm.BPF_LDX | asm.BPF_MEM | asm.BPF_H


def test_alu_immediate_is_patched() -> None:
    prog = _prog(asm.mov64_imm(asm.R0, 0), asm.encode(ADD_K, asm.R1, 0, 0, 16))
    apply_result(prog, 1, _res(16, 1280))
    assert asm.decode(prog, 1) == (ADD_K, asm.R1, 0, 0, 1280)
    assert asm.decode(prog, 0) == (asm.BPF_ALU64 | asm.BPF_MOV, asm.R0, 0, 0, 0)


def test_alu32_mov_is_patched() -> None:
    mov32 = asm.BPF_ALU | asm.BPF_MOV | asm.BPF_K
    prog = _prog(asm.encode(mov32, asm.R2, 0, 0, 1))
    apply_result(prog, 0, _res(1, 0))
    assert asm.decode(prog, 0) == (mov32, asm.R2, 0, 0, 0)


def test_original_value_mismatch_is_refused() -> None:
    prog = _prog(asm.encode(ADD_K, asm.R1, 0, 0, 17))
    before = bytes(prog)
    with pytest.raises(RelocationError, match="holds 17, expected 16"):
        apply_result(prog, 0, _res(16, 1280), what="relo #3")
    assert bytes(prog) == before


def test_unvalidated_results_skip_the_check() -> None:
    """Type ids may be renumbered by linking, so libbpf does not check them."""
    prog = _prog(asm.ld_imm64(asm.R1, 99))
    apply_result(prog, 0, _res(6, 114, kind=BPF_CORE_TYPE_ID_TARGET, validate=False))
    assert asm.decode(prog, 0)[4] == 114 and asm.decode(prog, 1)[4] == 0


def test_register_form_alu_is_refused() -> None:
    prog = _prog(asm.encode(asm.BPF_ALU64 | asm.BPF_ADD | asm.BPF_X, asm.R1, asm.R2))
    with pytest.raises(RelocationError, match="register-form"):
        apply_result(prog, 0, _res(0, 8))


def test_ldx_offset_and_size_are_rewritten() -> None:
    prog = _prog(asm.encode(LDX_DW, asm.R2, asm.R1, 32, 0))
    apply_result(prog, 0, _res(32, 44, orig_size=8, new_size=4))
    assert asm.decode(prog, 0) == (asm.BPF_LDX | asm.BPF_MEM | asm.BPF_W, asm.R2, asm.R1, 44, 0)


def test_ldx_narrow_to_wide() -> None:
    prog = _prog(asm.encode(LDX_H, asm.R3, asm.R1, 0, 0))
    apply_result(prog, 0, _res(0, 8, orig_size=2, new_size=4))
    assert asm.decode(prog, 0) == (asm.BPF_LDX | asm.BPF_MEM | asm.BPF_W, asm.R3, asm.R1, 8, 0)


@pytest.mark.parametrize(
    "code",
    [asm.BPF_STX | asm.BPF_MEM | asm.BPF_W, asm.BPF_ST | asm.BPF_MEM | asm.BPF_W],
)
def test_store_offsets_are_patched(code: int) -> None:
    prog = _prog(asm.encode(code, asm.R1, asm.R2, 4, 7))
    apply_result(prog, 0, _res(4, 100, orig_size=4, new_size=4))
    assert asm.decode(prog, 0) == (code, asm.R1, asm.R2, 100, 7)


def test_ldx_offset_mismatch_and_size_mismatch() -> None:
    prog = _prog(asm.encode(LDX_DW, asm.R2, asm.R1, 32, 0))
    with pytest.raises(RelocationError, match="offset 32, expected 24"):
        apply_result(prog, 0, _res(24, 44, orig_size=8, new_size=8))
    with pytest.raises(RelocationError, match="accesses 8 bytes, expected 4"):
        apply_result(prog, 0, _res(32, 44, orig_size=4, new_size=2))
    with pytest.raises(RelocationError, match="not 1, 2, 4 or 8"):
        apply_result(prog, 0, _res(32, 44, orig_size=8, new_size=16))


def test_ldx_offset_too_large() -> None:
    prog = _prog(asm.encode(LDX_DW, asm.R2, asm.R1, 32, 0))
    with pytest.raises(RelocationError, match="does not fit in 16 bits"):
        apply_result(prog, 0, _res(32, 40000, orig_size=8, new_size=8))


def test_unsafe_size_change_poisons_the_load() -> None:
    """A signed field changing size cannot be fixed by a narrower load: libbpf poisons it."""
    prog = _prog(asm.encode(LDX_DW, asm.R2, asm.R1, 32, 0))
    apply_result(prog, 0, _res(32, 44, orig_size=4, new_size=8, fail_memsz_adjust=True))
    assert asm.decode(prog, 0) == (asm.CALL, 0, 0, 0, POISON_HELPER)


def test_ld_imm64_is_patched_with_64_bits() -> None:
    prog = _prog(asm.ld_imm64(asm.R1, 30))
    apply_result(prog, 0, _res(30, 0x1_0000_0005))
    assert asm.decode(prog, 0) == (asm.LD_IMM64, asm.R1, 0, 0, 5)
    assert asm.decode(prog, 1) == (0, 0, 0, 0, 1)


def test_ld_imm64_checks() -> None:
    prog = _prog(asm.ld_imm64(asm.R1, 30))
    with pytest.raises(RelocationError, match="holds 30, expected 31"):
        apply_result(prog, 0, _res(31, 3))
    odd = _prog(asm.ld_imm64(asm.R1, 30, src=asm.BPF_PSEUDO_MAP_FD))
    with pytest.raises(RelocationError, match="unexpected form"):
        apply_result(odd, 0, _res(30, 3))
    cut = bytearray(asm.ld_imm64(asm.R1, 30)[:8])
    with pytest.raises(RelocationError, match="truncated"):
        apply_result(cut, 0, _res(30, 3))


def test_poison_alu_and_ld_imm64() -> None:
    prog = _prog(asm.encode(ADD_K, asm.R1, 0, 0, 16), asm.ld_imm64(asm.R2, 7))
    apply_result(prog, 0, _res(16, 0, poison=True))
    apply_result(prog, 1, _res(7, 0, poison=True))
    for i in (0, 1, 2):
        assert asm.decode(prog, i) == (asm.CALL, 0, 0, 0, POISON_HELPER)
    assert asm.decode(prog, 3) == (asm.EXIT, 0, 0, 0, 0)


def test_bad_instruction_and_index() -> None:
    prog = _prog(asm.encode(asm.BPF_JMP | asm.BPF_JEQ | asm.BPF_K, asm.R1, 0, 1, 0))
    with pytest.raises(RelocationError, match="cannot carry a CO-RE relocation"):
        apply_result(prog, 0, _res(0, 1))
    with pytest.raises(RelocationError, match="out of range"):
        apply_result(prog, 5, _res(0, 1))
