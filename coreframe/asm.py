"""BPF instruction encoding.

An instruction is 8 bytes: opcode, dst/src registers in one byte (dst in the
low nibble), a signed 16-bit offset and a signed 32-bit immediate. ld_imm64
takes two slots. Kept tiny: the loader patches instructions in place inside a
bytearray rather than building Python objects per instruction.
"""

from __future__ import annotations

import struct

from .sys.cint import s32

INSN_SIZE = 8
_INSN = struct.Struct("<BBhi")

# Instruction classes (low 3 bits of the opcode), as in linux/bpf_common.h / bpf.h.
BPF_LD = 0x00
BPF_LDX = 0x01
BPF_ST = 0x02
BPF_STX = 0x03
BPF_ALU = 0x04
BPF_JMP = 0x05
BPF_JMP32 = 0x06
BPF_ALU64 = 0x07

# Sizes (bits 3-4) for loads and stores.
BPF_W = 0x00
BPF_H = 0x08
BPF_B = 0x10
BPF_DW = 0x18
SIZE_BYTES = {BPF_B: 1, BPF_H: 2, BPF_W: 4, BPF_DW: 8}
BYTES_SIZE = {v: k for k, v in SIZE_BYTES.items()}

# Modes (bits 5-7) for loads and stores.
BPF_IMM = 0x00
BPF_ABS = 0x20
BPF_IND = 0x40
BPF_MEM = 0x60
BPF_MEMSX = 0x80
BPF_ATOMIC = 0xC0

# ALU / JMP operations (bits 4-7) and source bit.
BPF_K = 0x00
BPF_X = 0x08
BPF_ADD = 0x00
BPF_SUB = 0x10
BPF_MUL = 0x20
BPF_OR = 0x40
BPF_AND = 0x50
BPF_LSH = 0x60
BPF_RSH = 0x70
BPF_MOV = 0xB0
BPF_ARSH = 0xC0
BPF_JA = 0x00
BPF_JEQ = 0x10
BPF_JGT = 0x20
BPF_JNE = 0x50
BPF_CALL = 0x80
BPF_EXIT = 0x90

# src_reg values of special instructions.
BPF_PSEUDO_MAP_FD = 1
BPF_PSEUDO_MAP_VALUE = 2
BPF_PSEUDO_BTF_ID = 3
BPF_PSEUDO_FUNC = 4
BPF_PSEUDO_MAP_IDX = 5
BPF_PSEUDO_MAP_IDX_VALUE = 6
BPF_PSEUDO_CALL = 1
BPF_PSEUDO_KFUNC_CALL = 2

LD_IMM64 = BPF_LD | BPF_DW | BPF_IMM  # 0x18
CALL = BPF_JMP | BPF_CALL  # 0x85
EXIT = BPF_JMP | BPF_EXIT  # 0x95

R0, R1, R2, R3, R4, R5, R6, R7, R8, R9, R10 = range(11)


def insn_class(code: int) -> int:
    return code & 0x07


def encode(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    """Encode one 8-byte instruction."""
    return _INSN.pack(code, (src << 4) | dst, off, imm)


def decode(buf: bytes | bytearray | memoryview, index: int) -> tuple[int, int, int, int, int]:
    """Return (code, dst, src, off, imm) of instruction ``index``."""
    code, regs, off, imm = _INSN.unpack_from(buf, index * INSN_SIZE)
    return code, regs & 0x0F, regs >> 4, off, imm


def patch(buf: bytearray, index: int, *, code: int | None = None, src: int | None = None,
          off: int | None = None, imm: int | None = None) -> None:
    """Rewrite fields of instruction ``index`` in place, keeping the others."""
    c, d, s, o, i = decode(buf, index)
    _INSN.pack_into(
        buf, index * INSN_SIZE,
        c if code is None else code,
        ((s if src is None else src) << 4) | d,
        o if off is None else off,
        i if imm is None else imm,
    )


def ld_imm64(dst: int, value: int, src: int = 0) -> bytes:
    """Two-slot 64-bit immediate load (src selects a pseudo kind such as BPF_PSEUDO_MAP_FD)."""
    lo = value & 0xFFFFFFFF
    hi = (value >> 32) & 0xFFFFFFFF
    return encode(LD_IMM64, dst, src, 0, s32(lo)) + encode(0, 0, 0, 0, s32(hi))


def mov64_imm(dst: int, imm: int) -> bytes:
    return encode(BPF_ALU64 | BPF_MOV | BPF_K, dst, 0, 0, imm)


def mov64_reg(dst: int, src: int) -> bytes:
    return encode(BPF_ALU64 | BPF_MOV | BPF_X, dst, src)


def call(helper: int) -> bytes:
    return encode(CALL, 0, 0, 0, helper)


def exit_() -> bytes:
    return encode(EXIT)


