"""C integer conversions the loader shares (instruction immediates, BTF fields).

Python ints are unbounded; the kernel's fields are not. ``s32`` reads a u32 as
the ``__s32`` it is (an instruction's ``imm``, a decl tag's ``component_idx``).
"""

U32_MAX = (1 << 32) - 1
U64_MAX = (1 << 64) - 1
S16_MAX = 0x7FFF  # SHRT_MAX: the largest instruction ``off``


def s32(v: int) -> int:
    """The two's-complement value of the low 32 bits of ``v`` as a signed 32-bit int."""
    return v - (1 << 32) if v & 0x80000000 else v
