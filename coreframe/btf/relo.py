"""CO-RE relocation results: what one resolves to, patching it in, replaying it.

:mod:`coreframe.btf.core` computes results (libbpf's relo_core.c matching); this
module holds what a loader needs once results exist: the :class:`CoreResult`
record and :func:`apply_result` (libbpf's bpf_core_patch_insn), shared by the
matcher and by :class:`~coreframe.btf.replay.CachedRelocator`, which replays the
results of an earlier load from the user cache directory (so a warm tool start
imports neither the matcher nor the kernel's BTF).
"""

from __future__ import annotations

from coreframe.errors import RelocationError
from coreframe.runtime.compat import zip_strict
from coreframe.runtime.startup import KernelEnum

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from coreframe.btf.ext import CoreRelo
    from coreframe.btf.types import BTF

class CoreReloKind(KernelEnum):
    """enum bpf_core_relo_kind (linux/bpf.h)."""

    BPF_CORE_FIELD_BYTE_OFFSET = 0
    BPF_CORE_FIELD_BYTE_SIZE = 1
    BPF_CORE_FIELD_EXISTS = 2
    BPF_CORE_FIELD_SIGNED = 3
    BPF_CORE_FIELD_LSHIFT_U64 = 4
    BPF_CORE_FIELD_RSHIFT_U64 = 5
    BPF_CORE_TYPE_ID_LOCAL = 6
    BPF_CORE_TYPE_ID_TARGET = 7
    BPF_CORE_TYPE_EXISTS = 8
    BPF_CORE_TYPE_SIZE = 9
    BPF_CORE_ENUMVAL_EXISTS = 10
    BPF_CORE_ENUMVAL_VALUE = 11
    BPF_CORE_TYPE_MATCHES = 12


BPF_CORE_FIELD_BYTE_OFFSET = CoreReloKind.BPF_CORE_FIELD_BYTE_OFFSET
BPF_CORE_FIELD_BYTE_SIZE = CoreReloKind.BPF_CORE_FIELD_BYTE_SIZE
BPF_CORE_FIELD_EXISTS = CoreReloKind.BPF_CORE_FIELD_EXISTS
BPF_CORE_FIELD_SIGNED = CoreReloKind.BPF_CORE_FIELD_SIGNED
BPF_CORE_FIELD_LSHIFT_U64 = CoreReloKind.BPF_CORE_FIELD_LSHIFT_U64
BPF_CORE_FIELD_RSHIFT_U64 = CoreReloKind.BPF_CORE_FIELD_RSHIFT_U64
BPF_CORE_TYPE_ID_LOCAL = CoreReloKind.BPF_CORE_TYPE_ID_LOCAL
BPF_CORE_TYPE_ID_TARGET = CoreReloKind.BPF_CORE_TYPE_ID_TARGET
BPF_CORE_TYPE_EXISTS = CoreReloKind.BPF_CORE_TYPE_EXISTS
BPF_CORE_TYPE_SIZE = CoreReloKind.BPF_CORE_TYPE_SIZE
BPF_CORE_ENUMVAL_EXISTS = CoreReloKind.BPF_CORE_ENUMVAL_EXISTS
BPF_CORE_ENUMVAL_VALUE = CoreReloKind.BPF_CORE_ENUMVAL_VALUE
BPF_CORE_TYPE_MATCHES = CoreReloKind.BPF_CORE_TYPE_MATCHES

# libbpf's short names, used in explanations (and in its debug log).
KIND_NAMES = {
    0: "byte_off",
    1: "byte_sz",
    2: "field_exists",
    3: "signed",
    4: "lshift_u64",
    5: "rshift_u64",
    6: "local_type_id",
    7: "target_type_id",
    8: "type_exists",
    9: "type_size",
    10: "enumval_exists",
    11: "enumval_value",
    12: "type_matches",
}

# The helper id libbpf puts in poisoned instructions ("bad relo").
POISON_HELPER = 0xBAD2310


_RESULT_FIELDS = (
    "kind", "old_value", "new_value", "poison", "explanation", "target_type_id",
    "target_type_name", "validate", "orig_size", "new_size", "fail_memsz_adjust",
    "local_spec", "target_spec", "target_btf",
)
# The text fields, which a result may compute only when first read (see ``describe``).
_TEXT_FIELDS = ("explanation", "target_type_name", "local_spec", "target_spec")
_SLOTS = tuple(f"_{n}" if n in _TEXT_FIELDS else n for n in _RESULT_FIELDS)
_TEXT_SLOTS = tuple(f"_{n}" for n in _TEXT_FIELDS)


class _Text:
    """A text field of :class:`CoreResult`, read from its slot once spelled out."""

    __slots__ = ("slot",)

    def __set_name__(self, owner: type, name: str) -> None:
        self.slot = f"_{name}"

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            return self
        obj._texts()
        return getattr(obj, self.slot)


class CoreResult:
    """Outcome of resolving one CO-RE relocation (immutable).

    ``old_value`` is what the compiler put in the instruction (computed from the
    local BTF), ``new_value`` what it becomes for the target. ``orig_size`` and
    ``new_size`` are the memory access sizes for field loads/stores, which
    ``apply`` rewrites when they differ. ``explanation`` is one human line for
    ``coreframe object inspect``. ``target_btf`` is the BTF (vmlinux or a
    module) that ``target_type_id`` belongs to; it takes no part in equality or
    repr. A plain class rather than a dataclass: this module is on every
    tool's start-up path and a dataclass costs more to create than to use.

    ``describe``, when given, returns (explanation, target_type_name,
    local_spec, target_spec) and is called on first read of any of them: a
    load patches instructions from the numbers alone, and spelling out type
    names and access paths was a fifth of the cost of resolving.
    """

    __slots__ = (*_SLOTS, "_describe")

    kind: int
    old_value: int
    new_value: int
    poison: bool
    target_type_id: int | None
    validate: bool
    orig_size: int
    new_size: int
    fail_memsz_adjust: bool
    target_btf: Any

    def __init__(
        self, kind: int, old_value: int, new_value: int, poison: bool, explanation: str = "",
        target_type_id: int | None = None, target_type_name: str | None = None,
        validate: bool = True, orig_size: int = 0, new_size: int = 0,
        fail_memsz_adjust: bool = False, local_spec: str = "",
        target_spec: str | None = None, target_btf: Any = None,
        describe: Callable[[], tuple[str, str | None, str, str | None]] | None = None,
    ) -> None:
        values = (kind, old_value, new_value, poison, explanation, target_type_id,
                  target_type_name, validate, orig_size, new_size, fail_memsz_adjust,
                  local_spec, target_spec, target_btf, describe)
        set_ = object.__setattr__
        for name, value in zip_strict(self.__slots__, values):
            set_(self, name, value)

    def _texts(self) -> None:
        describe = self._describe
        if describe is not None:
            set_ = object.__setattr__
            for name, value in zip_strict(_TEXT_SLOTS, describe()):
                set_(self, name, value)
            set_(self, "_describe", None)

    explanation: str = _Text()  # type: ignore[assignment]
    target_type_name: str | None = _Text()  # type: ignore[assignment]
    local_spec: str = _Text()  # type: ignore[assignment]
    target_spec: str | None = _Text()  # type: ignore[assignment]

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"CoreResult is immutable (cannot set {name!r})")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"CoreResult is immutable (cannot delete {name!r})")

    def values(self) -> tuple[Any, ...]:
        """The fields a result is rebuilt from (``CoreResult(*values)``), as a tuple."""
        return tuple(getattr(self, name) for name in _RESULT_FIELDS[:-1])

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self.values() == other.values()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash(self.values())

    def __repr__(self) -> str:
        fields = ", ".join(f"{n}={getattr(self, n)!r}" for n in _RESULT_FIELDS[:-1])
        return f"CoreResult({fields})"

    @property
    def kind_name(self) -> str:
        return KIND_NAMES.get(self.kind, "unknown")


def relo_name(local: BTF, relo: CoreRelo) -> str:
    """How errors and explanations name a relocation (kind, local type, access string)."""
    kind = KIND_NAMES.get(relo.kind, str(relo.kind))
    try:
        tname = type_name(local, relo.type_id)
    except Exception:
        tname = "?"
    return (
        f"CO-RE relocation <{kind}> of [{relo.type_id}] {tname} "
        f"access {relo.access_str!r} at insn off {relo.insn_off}"
    )


def type_name(btf: Any, type_id: int) -> str:
    """``struct task_struct``, ``typedef u32``...: read from the raw record (decoding a
    large struct such as task_struct only to name it decodes hundreds of members)."""
    kind = int(btf.kind_of(type_id))
    name = btf.name_of(type_id) or "<anon>"
    if kind in (4, 5, 6, 19):  # STRUCT, UNION, ENUM, ENUM64
        return f"{_COMPOSITE_WORD.get(kind, 'enum')} {name}"
    if kind == 7:  # FWD: kind_flag says union
        return f"{'union' if btf.raw(type_id)[1] >> 31 else 'struct'} {name} (fwd)"
    if kind == 8:
        return f"typedef {name}"
    from coreframe.btf.kinds import KIND_STR  # naming only: replaying needs no kind names

    return f"{KIND_STR.get(kind, '?').lower()} {name}"


_COMPOSITE_WORD = {4: "struct", 5: "union"}


def apply_result(
    insns: bytearray, insn_index: int, result: CoreResult, what: str = "CO-RE relocation"
) -> None:
    """Patch one instruction with a resolved relocation (libbpf bpf_core_patch_insn).

    Checks the instruction still holds the local value the compiler emitted,
    then rewrites the ALU immediate, the load/store offset (and memory size),
    or the ld_imm64 64-bit immediate; poisoned results become a call to helper
    0xbad2310 (both slots for ld_imm64).
    """
    from coreframe import asm  # patching needs the instruction codec, resolving does not
    from coreframe.sys.cint import S16_MAX, U64_MAX, s32

    n = len(insns) // asm.INSN_SIZE
    if not 0 <= insn_index < n:
        raise RelocationError(f"{what}: instruction #{insn_index} out of range ({n} insns)")
    code, dst, src, off, imm = asm.decode(insns, insn_index)
    cls = asm.insn_class(code)

    def poison() -> None:
        if code == asm.LD_IMM64 and insn_index + 1 < n:
            _poison_insn(insns, insn_index + 1)
        _poison_insn(insns, insn_index)

    if result.poison:
        poison()
        return
    orig, new = result.old_value & U64_MAX, result.new_value & U64_MAX
    if cls in (asm.BPF_ALU, asm.BPF_ALU64):
        if code & asm.BPF_X:
            raise RelocationError(f"{what}: insn #{insn_index} is a register-form ALU op")
        if result.validate and (imm & U64_MAX) != orig:
            raise RelocationError(
                f"{what}: insn #{insn_index} (ALU/ALU64) holds {imm}, expected {orig} "
                f"(-> {new})"
            )
        asm.patch(insns, insn_index, imm=s32(new & 0xFFFFFFFF))
    elif cls in (asm.BPF_LDX, asm.BPF_ST, asm.BPF_STX):
        if result.validate and (off & U64_MAX) != orig:
            raise RelocationError(
                f"{what}: insn #{insn_index} (LDX/ST/STX) has offset {off}, expected {orig} "
                f"(-> {new})"
            )
        if new > S16_MAX:
            raise RelocationError(
                f"{what}: insn #{insn_index} (LDX/ST/STX) offset {new} does not fit in 16 bits"
            )
        if result.fail_memsz_adjust:
            poison()
            return
        new_code = code
        if result.new_size != result.orig_size:
            cur = asm.SIZE_BYTES.get(code & 0x18)
            if cur != result.orig_size:
                raise RelocationError(
                    f"{what}: insn #{insn_index} (LDX/ST/STX) accesses {cur} bytes, "
                    f"expected {result.orig_size}"
                )
            size_bits = asm.BYTES_SIZE.get(result.new_size)
            if size_bits is None:
                raise RelocationError(
                    f"{what}: insn #{insn_index} (LDX/ST/STX) new memory size "
                    f"{result.new_size} is not 1, 2, 4 or 8"
                )
            new_code = (code & 0xE0) | size_bits | cls
        asm.patch(insns, insn_index, code=new_code, off=new)
    elif cls == asm.BPF_LD:
        if insn_index + 1 >= n:
            raise RelocationError(f"{what}: insn #{insn_index} (LDIMM64) is truncated")
        code2, dst2, src2, off2, imm2 = asm.decode(insns, insn_index + 1)
        if code != asm.LD_IMM64 or src or off or code2 or dst2 or src2 or off2:
            raise RelocationError(f"{what}: insn #{insn_index} (LDIMM64) has unexpected form")
        cur = (imm & 0xFFFFFFFF) | ((imm2 & 0xFFFFFFFF) << 32)
        if result.validate and cur != orig:
            raise RelocationError(
                f"{what}: insn #{insn_index} (LDIMM64) holds {cur}, expected {orig} (-> {new})"
            )
        asm.patch(insns, insn_index, imm=s32(new & 0xFFFFFFFF))
        asm.patch(insns, insn_index + 1, imm=s32(new >> 32))
    else:
        raise RelocationError(
            f"{what}: insn #{insn_index} (code {code:#04x}) cannot carry a CO-RE relocation"
        )


def _poison_insn(insns: bytearray, index: int) -> None:
    from coreframe import asm

    insns[index * 8 : index * 8 + 8] = asm.call(POISON_HELPER)


