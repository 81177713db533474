"""The parts of an object spec: programs, subprograms, maps, relocations and externs.

These are the plain classes the reader (:mod:`coreframe.object.reader`) fills
and the loader (:mod:`coreframe.object.loader`) consumes; neither the spec
(:mod:`coreframe.object.spec`) nor the reader is imported here, so each of them
can import this module without a circle.
"""

from __future__ import annotations

from ..runtime.startup import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from .sections import SectionDef
    from .variables import DataSection

LIBBPF_PIN_NONE = 0
LIBBPF_PIN_BY_NAME = 1

KCONFIG_SEC = ".kconfig"
KSYMS_SEC = ".ksyms"

def short_type_name(prefix: str, value: int) -> str:
    """``"ringbuf"`` for ("BPF_MAP_TYPE_", 27): the kernel's name, unprefixed, lower case.

    The UAPI constants are imported on first use, not at import (a spec read back
    from the cache does not need them).
    """
    from ..sys.consts import short_name

    return short_name(prefix, value)


class SpecDict(dict[str, "Any"]):
    """A dict whose entries are also attributes (``spec.maps.events``)."""

    kind = "entry"

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            import difflib  # error path only: keep it off the start-up imports

            close = difflib.get_close_matches(name, list(self), n=3)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise AttributeError(f"no {self.kind} named {name!r}{hint}") from None

    def __dir__(self) -> list[str]:
        return [k for k in self if k.isidentifier()]


class ProgramDict(SpecDict):
    """Programs by name."""

    kind = "program"


class MapDict(SpecDict):
    """Maps by name."""

    kind = "map"


class Reloc(Record, fields="insn_index kind target offset section", defaults=(0, "")):
    """One relocation of a program or subprogram instruction (an immutable record).

    ``kind`` is ``"map"`` (ld_imm64 of a map fd; ``target`` the map key),
    ``"data"`` (ld_imm64 of a global data address; ``offset`` is the byte offset
    inside ``target``'s value), ``"kconfig"`` / ``"ksym"`` (ld_imm64 of an
    extern), ``"kfunc"`` (call of an extern kernel function), ``"call"`` or
    ``"func_addr"`` (bpf-to-bpf call / callback address: ``section`` and
    ``offset`` give the callee's instruction index in that section, ``target``
    its name). A tuple, so a spec read back from the cache rebuilds its
    hundreds of relocations in one step each.
    """

    __slots__ = ()

    insn_index: int
    kind: str
    target: str
    offset: int
    section: str


class Func:
    """A function in an executable section: a program entry point or a subprogram."""

    def __init__(self, name: str, section: str, sec_insn_off: int, insns: bytearray,
                 relocations: list[Reloc], is_program: bool, hidden: bool = False) -> None:
        self.name = name
        self.section = section
        self.sec_insn_off = sec_insn_off
        self.insns = insns
        self.relocations = relocations
        self.is_program = is_program
        self.hidden = hidden

    @property
    def insn_cnt(self) -> int:
        return len(self.insns) // 8  # asm.INSN_SIZE (asm is not imported for this)

    def __repr__(self) -> str:
        return f"Func({self.name!r}, section={self.section!r}, insns={self.insn_cnt})"


class ProgramSpec(Func):
    """An entry-point program, editable before load (``autoload``, ``attach_to``, types)."""

    # the SEC() definition is stored by name and looked up again on first use: a spec
    # read back from the cache then needs neither the SEC() table nor the UAPI constants
    _codec_transient = ("_section_def",)

    def __init__(self, name: str, section: str, sec_insn_off: int, insns: bytearray,
                 relocations: list[Reloc], is_program: bool, hidden: bool = False,
                 prog_type: int = 0, expected_attach_type: int = 0, attach_to: str = "",
                 autoload: bool = True, section_def: SectionDef | None = None,
                 license: str = "", prog_flags: int = 0, kern_version: int = 0,
                 attach_btf_id: int | None = None, attach_prog_fd: int | None = None,
                 log_level: int = 0) -> None:
        super().__init__(name, section, sec_insn_off, insns, relocations, is_program, hidden)
        self.prog_type = prog_type
        self.expected_attach_type = expected_attach_type
        self.attach_to = attach_to
        self.autoload = autoload
        self.section_def = section_def
        self.license = license
        self.prog_flags = prog_flags
        self.kern_version = kern_version
        self.attach_btf_id = attach_btf_id
        self.attach_prog_fd = attach_prog_fd
        self.log_level = log_level

    @property
    def section_def(self) -> SectionDef | None:
        """What the SEC() name says, by libbpf's table; None for a name it does not know."""
        try:
            return self._section_def
        except AttributeError:  # a spec read back from the cache
            from .sections import find_section_def

            name = self._section_def_name
            sd = self._section_def = find_section_def(name) if name is not None else None
            return sd

    @section_def.setter
    def section_def(self, sd: SectionDef | None) -> None:
        self._section_def = sd
        self._section_def_name = sd.name if sd is not None else None

    def __repr__(self) -> str:
        return (f"ProgramSpec({self.name!r}, section={self.section!r}, "
                f"type={short_type_name('BPF_PROG_TYPE_', self.prog_type)}, "
                f"insns={self.insn_cnt})")


class MapSpec:
    """A map as the object defines it; every field is writable until load."""

    def __init__(self, name: str, type: int, key_size: int = 0, value_size: int = 0,
                 max_entries: int = 0, map_flags: int = 0, pinning: int = LIBBPF_PIN_NONE,
                 numa_node: int = 0, map_extra: int = 0, key_type_id: int = 0,
                 value_type_id: int = 0, inner: MapSpec | None = None, btf_var_id: int = 0,
                 section: str = ".maps", sec_offset: int = 0, data: bytearray | None = None,
                 init_slots: dict[int, str] | None = None, autocreate: bool = True) -> None:
        self.name = name
        self.type = type
        self.key_size = key_size
        self.value_size = value_size
        self.max_entries = max_entries
        self.map_flags = map_flags
        self.pinning = pinning
        self.numa_node = numa_node
        self.map_extra = map_extra
        self.key_type_id = key_type_id
        self.value_type_id = value_type_id
        self.inner = inner
        self.btf_var_id = btf_var_id
        self.section = section
        self.sec_offset = sec_offset
        self.data = data
        self.init_slots = {} if init_slots is None else init_slots
        self.autocreate = autocreate

    def shrink_to_placeholder(self) -> None:
        """Make this map the smallest array the kernel accepts (4-byte key and value, one
        entry, no BTF types): for a map a loaded program still references but this run
        never uses, e.g. a ring buffer when events go through a perf buffer."""
        from ..sys.consts import BPF_MAP_TYPE_ARRAY

        self.type = BPF_MAP_TYPE_ARRAY
        self.key_size = 4
        self.value_size = 4
        self.max_entries = 1
        self.map_flags = 0
        self.key_type_id = 0
        self.value_type_id = 0

    @property
    def is_global_data(self) -> bool:
        return self.data is not None

    @property
    def type_name(self) -> str:
        return short_type_name("BPF_MAP_TYPE_", self.type)

    def __repr__(self) -> str:
        return (f"MapSpec({self.name!r}, type={self.type_name}, key_size={self.key_size}, "
                f"value_size={self.value_size}, max_entries={self.max_entries}, "
                f"map_flags={self.map_flags:#x})")


class Extern:
    """An ``extern`` the object expects the loader to provide (.kconfig or .ksyms)."""

    __slots__ = ("name", "kind", "weak", "btf_id", "type_id", "size", "align", "offset",
                 "sym_index")

    def __init__(self, name: str, kind: str, weak: bool, btf_id: int, type_id: int = 0,
                 size: int = 0, align: int = 1, offset: int = 0, sym_index: int = 0) -> None:
        self.name = name
        self.kind = kind  # "kconfig", "ksym" (variable) or "kfunc"
        self.weak = weak
        self.btf_id = btf_id
        self.type_id = type_id
        self.size = size
        self.align = align
        self.offset = offset  # inside the .kconfig map value, for kconfig externs
        self.sym_index = sym_index

    def __repr__(self) -> str:
        return f"Extern({self.name!r}, kind={self.kind!r}, weak={self.weak})"


def internal_map_name(obj_name: str, real_name: str) -> str:
    """Kernel-visible name of a global data map, as libbpf builds it.

    ``.rodata`` of ``execsnoop.bpf.o`` becomes ``execsnoo.rodata``: the object
    name is cut so the whole fits in 15 characters; custom sections with a second
    dot (``.rodata.foo``) keep just their own name.
    """
    from ..sys.consts import BPF_OBJ_NAME_LEN

    sfx_len = min(max(7, len(real_name)), BPF_OBJ_NAME_LEN - 1)
    pfx_len = 0 if "." in real_name[1:] else min(BPF_OBJ_NAME_LEN - sfx_len - 1, len(obj_name))
    name = obj_name[:pfx_len] + real_name[:sfx_len]
    return kernel_safe_name(name)


_NAME_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.")


def kernel_safe_name(name: str) -> str:
    """``name`` with every character the kernel refuses in object names turned into '_'."""
    ok = _NAME_CHARS
    return "".join(c if c in ok else "_" for c in name)


class NamedDataSections:
    """``.rodata``, ``.data`` and ``.bss`` by name, for a class with a ``datasec(section)``
    (the spec's variables before load, the loaded object's live ones after)."""

    def datasec(self, section: str) -> DataSection:
        raise NotImplementedError

    @property
    def rodata(self) -> DataSection:
        return self.datasec(".rodata")

    @property
    def data(self) -> DataSection:
        return self.datasec(".data")

    @property
    def bss(self) -> DataSection:
        return self.datasec(".bss")
