"""BPF objects: ``open()`` parses an ELF into an :class:`ObjectSpec`; ``.load()`` makes it live.

An :class:`ObjectSpec` is what libbpf's bpf_object__open produces, without
touching the kernel: programs, maps, global data, relocations and BTF, all
editable until load. Reading it from the ELF is :mod:`coreframe.elf_reader`
(skipped when the parsed spec is in the user cache); loading it is
:mod:`coreframe.loader`, whose :class:`~coreframe.loader.Object` owns what
the kernel holds.
"""

from __future__ import annotations

import builtins
import os

from .errors import ObjectError
from .records import Record, gc_paused, memoize

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from .btf.ext import BTFExt
    from .btf.types import BTF
    from .elf import ElfFile
    from .loader import Object
    from .sections import SectionDef
    from .variables import DataSection

BPF_OBJ_NAME_LEN = 16
LIBBPF_PIN_NONE = 0
LIBBPF_PIN_BY_NAME = 1
BPF_PSEUDO_FUNC = 4

KCONFIG_SEC = ".kconfig"
KSYMS_SEC = ".ksyms"

_SHORT_NAMES: dict[str, dict[int, str]] = {}


def short_type_name(prefix: str, value: int) -> str:
    """``"ringbuf"`` for ("BPF_MAP_TYPE_", 27): the kernel's name, unprefixed, lower case.

    The tables are built on first use, not at import (they walk every constant).
    """
    from .sys import consts as C

    table = _SHORT_NAMES.get(prefix)
    if table is None:
        table = {v: k[len(prefix):].lower() for k, v in vars(C).items()
                 if k.startswith(prefix) and not k.endswith("_DEPRECATED") and isinstance(v, int)}
        _SHORT_NAMES[prefix] = table
    return table.get(value, str(value))


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


class _Programs(SpecDict):
    kind = "program"


class _Maps(SpecDict):
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


class _Func:
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
        return f"_Func({self.name!r}, section={self.section!r}, insns={self.insn_cnt})"


class ProgramSpec(_Func):
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


class ObjectSpec(NamedDataSections):
    """A parsed BPF object; nothing is in the kernel until :meth:`load`."""

    # rebuilt on first use rather than stored by the spec cache (see the elf property)
    _codec_transient = ("_elf",)

    def __init__(self, elf: ElfFile, name: str, target_btf: BTF | None = None) -> None:
        self._elf: ElfFile | None = elf
        self.elf_data = elf.data
        self.elf_name = elf.name
        self.name = name
        self.target_btf = target_btf
        self.license = elf.license or ""
        self.kernel_version = elf.kernel_version
        self.programs: _Programs = _Programs()
        self.maps: _Maps = _Maps()
        self.subprograms: dict[tuple[str, int], _Func] = {}
        self.functions: dict[str, list[_Func]] = {}
        self.externs: dict[str, Extern] = {}
        self.btf: BTF | None = None
        self.btf_ext: BTFExt | None = None
        self._datasecs: dict[str, DataSection] = {}
        # what loading needs of the ELF (the BTF's DATASEC sizes), so a spec from the
        # cache never has to read the ELF's tables again
        self.section_sizes = {sec.name: sec.size for sec in elf.sections if sec.name}
        from .elf_reader import ElfReader

        ElfReader(self).parse()

    @property
    def elf(self) -> ElfFile:
        """The ELF file; a spec read back from the cache makes it (unparsed) on first use,
        so a warm open does not import the ELF reader at all."""
        elf = self.__dict__.get("_elf")
        if elf is None:
            from .elf import ElfFile

            elf = self._elf = ElfFile.unparsed(self.elf_data, self.elf_name)
        return elf

    # ---- global variables -------------------------------------------------------------

    def datasec(self, section: str) -> DataSection:
        """Typed variables of one global data section (``.rodata``, ``.data.foo``, ...)."""
        ds = self._datasecs.get(section)
        if ds is not None:
            return ds
        m = self.maps.get(section)
        if m is None or m.data is None or section in (KCONFIG_SEC,):
            have = [k for k, v in self.maps.items() if v.data is not None and k != KCONFIG_SEC]
            raise ObjectError(f"object {self.name!r} has no global data section {section!r}"
                              f" (it has: {', '.join(have) or 'none'})")
        from .variables import DataSection

        ds = DataSection(self, section, m)
        self._datasecs[section] = ds
        return ds

    def data_sections(self) -> list[DataSection]:
        """Every global data section with variables (.rodata, .data, .bss, custom ones)."""
        return [self.datasec(k) for k, m in self.maps.items()
                if m.data is not None and k != KCONFIG_SEC]

    def set_variable(self, name: str, text: str) -> None:
        """CLI ``--set NAME=VALUE``: find NAME in the data sections, parse VALUE by its type.

        ``SECTION:NAME`` (e.g. ``.data:counter``) picks a section when a name is
        defined in more than one.
        """
        from .variables import UnknownVariable

        if ":" in name:
            section, _, var = name.partition(":")
            self.datasec(section).set_from_string(var, text)
            return
        found = [ds for ds in self.data_sections() if name in ds]
        if len(found) > 1:
            where = ", ".join(ds.section for ds in found)
            raise ObjectError(f"variable {name!r} is defined in {where}; "
                              f"use SECTION:{name}=VALUE")
        if not found:
            every = [v for ds in self.data_sections() for v in ds.names()]
            import difflib  # error path only: keep it off the start-up imports

            close = difflib.get_close_matches(name, every, n=3, cutoff=0.5)
            hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            raise UnknownVariable(f"object {self.name!r} has no global variable {name!r}"
                                  f"{hint} (variables: {', '.join(every) or 'none'})")
        found[0].set_from_string(name, text)

    @gc_paused
    def load(self, target_btf: BTF | str | None = None, pin_root: str | None = None) -> Object:
        """Create maps, relocate and load every autoload program (libbpf's bpf_object__load).

        ``target_btf`` (a BTF or a path) is what CO-RE relocates against, by default
        the running kernel's; ``pin_root`` is where LIBBPF_PIN_BY_NAME maps live
        (default /sys/fs/bpf). On any failure everything created so far is closed.
        """
        from .loader import Loader

        loader = Loader(self, target_btf if target_btf is not None else self.target_btf,
                        pin_root)
        return loader.run()

    def __repr__(self) -> str:
        return (f"<ObjectSpec {self.name!r}: {len(self.programs)} programs, "
                f"{len(self.maps)} maps>")


def _obj_name(path: str) -> str:
    """libbpf's object name: the file's base name up to its first dot."""
    base = os.path.basename(path)
    return base.split(".", 1)[0] or base


def internal_map_name(obj_name: str, real_name: str) -> str:
    """Kernel-visible name of a global data map, as libbpf builds it.

    ``.rodata`` of ``execsnoop.bpf.o`` becomes ``execsnoo.rodata``: the object
    name is cut so the whole fits in 15 characters; custom sections with a second
    dot (``.rodata.foo``) keep just their own name.
    """
    sfx_len = min(max(7, len(real_name)), BPF_OBJ_NAME_LEN - 1)
    pfx_len = 0 if "." in real_name[1:] else min(BPF_OBJ_NAME_LEN - sfx_len - 1, len(obj_name))
    name = obj_name[:pfx_len] + real_name[:sfx_len]
    return _kernel_safe(name)


@gc_paused
def open(source: Any, btf: BTF | None = None, *, name: str | None = None) -> ObjectSpec:  # noqa: A001
    """Parse a BPF ELF object (path or bytes) into an :class:`ObjectSpec`.

    ``btf`` is the target BTF used later for CO-RE (default: the running
    kernel's); ``name`` overrides the object name used for data map names.
    An object opened by path is parsed once: later opens of the same bytes at
    the same path rebuild the spec from the user cache (see :class:`_SpecCache`).
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        from .elf import ElfFile

        return ObjectSpec(ElfFile(source, name=name), name or "obj", btf)
    path = os.fspath(source)
    try:
        with builtins.open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise ObjectError(f"{path}: cannot read: {e.strerror or e}") from e
    obj_name = name or _obj_name(path)
    cache = _SpecCache(path, obj_name, data)
    spec = cache.read()
    if spec is None:
        from .elf import ElfFile  # a cache hit never needs the ELF reader

        spec = ObjectSpec(ElfFile(data, name=path), obj_name)
        cache.write(spec)
    spec.target_btf = btf
    return spec


class _SpecCache:
    """Parsed objects kept in the user cache directory, one file per object path.

    Parsing an object costs a few milliseconds of every tool's start-up, for a
    result that changes only with the file or with coreframe's parsing code. The
    stored spec is plain data rebuilt by :class:`~coreframe.cache.Codec` (no code
    runs on reading it) and is used only when the whole file, its path, the object
    name and the parser's source stamps all match; each open gets its own copy.
    """

    VERSION = 1
    KEEP = 64  # files kept; tests and builds open many short-lived objects
    # every module whose code shapes a parsed spec: a change to any of them misses
    SOURCES = ("object.py", "elf_reader.py", "elf.py", "sections.py", "asm.py", "records.py",
               "maptypes.py", "cache.py", "btf/types.py", "btf/ext.py", "sys/consts.py")

    def __init__(self, path: str, obj_name: str, data: bytes) -> None:
        self.key = (os.path.abspath(path), path, obj_name)
        self.data = data
        self.file: str | None = None
        self.stamp: tuple[int, ...] | None = None
        from .cache import cache_dir, source_stamp

        directory = cache_dir()
        if directory is None:
            return
        self.stamp = source_stamp(self.VERSION, __file__, *self.SOURCES)
        if self.stamp is None:
            return
        import zlib

        tag = zlib.crc32("\0".join(self.key).encode("utf-8", "surrogateescape"))
        self.file = os.path.join(directory, f"spec-{tag:08x}.obj")

    def read(self) -> ObjectSpec | None:
        if self.file is None:
            return None
        from .cache import read_marshal

        blob = read_marshal(self.file)
        try:
            stamp, key, data, encoded = blob
        except (TypeError, ValueError):
            return None
        if stamp != self.stamp or key != self.key or data != self.data:
            return None
        try:
            spec = _spec_codec().decode(encoded)
        except (ValueError, ObjectError):
            return None
        return spec if type(spec) is ObjectSpec else None

    def write(self, spec: ObjectSpec) -> None:
        if self.file is None:
            return
        from .cache import prune, write_marshal
        from .sections import find_section_def

        for prog in spec.programs.values():
            sd = prog.section_def
            if sd is not None and find_section_def(sd.name) != sd:
                return  # not what the table gives for its name: could not be rebuilt

        try:
            encoded = _spec_codec().encode(spec)
        except TypeError:  # something only a fresh parse can build: do not cache it
            return
        write_marshal(self.file, (self.stamp, self.key, self.data, encoded))
        prune(os.path.dirname(self.file), "spec-", ".obj", self.KEEP)


def _btf_state(btf: BTF) -> tuple[bytes, list[int]]:
    if btf.base is not None:
        raise TypeError("split BTF is not cached")
    return btf.to_bytes(), list(btf._offsets)


def _btf_from_state(state: tuple[bytes, list[int]]) -> BTF:
    from .btf.types import BTF

    return BTF(state[0], offsets=state[1])


def _ext_state(ext: BTFExt) -> tuple[Any, ...]:
    """The section, its func_info and CO-RE records, and its line_info rows already
    checked (a load needs them), marshalled as one blob so the codec does not walk
    thousands of rows: a warm open parses nothing."""
    import marshal

    if ext._raw is None or ext._btf is None:
        raise TypeError("a BTFExt built from records is not cached")
    return (ext._raw, ext._btf, ext.func_info, ext.core_relos, ext.version, ext.flags,
            marshal.dumps(ext.line_rows))


def _ext_from_state(state: tuple[Any, ...]) -> BTFExt:
    import marshal

    from .btf.ext import BTFExt

    raw, btf, func_info, core_relos, version, flags, rows = state
    return BTFExt.restored(raw, btf, func_info, core_relos, version, flags,
                           lambda: marshal.loads(rows))


@memoize
def _spec_codec() -> Any:
    from .btf.ext import BTFExt, CoreRelo, FuncInfo
    from .btf.types import BTF
    from .cache import Codec

    classes = (ObjectSpec, _Programs, _Maps, ProgramSpec, _Func, MapSpec, Reloc, Extern, BTF,
               BTFExt, FuncInfo, CoreRelo)
    return Codec(classes, {BTF: (_btf_state, _btf_from_state),
                           BTFExt: (_ext_state, _ext_from_state)})

_NAME_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.")


def _kernel_safe(name: str) -> str:
    """``name`` with every character the kernel refuses in object names turned into '_'."""
    ok = _NAME_CHARS
    return "".join(c if c in ok else "_" for c in name)
