"""BPF objects: ``open()`` parses an ELF into an :class:`ObjectSpec`; ``.load()`` makes it live.

Opening does what libbpf's bpf_object__open does without touching the kernel:
find programs (one per global function of each executable section) and
subprograms (functions of ``.text``), record every relocation, read
BTF-defined maps from ``.maps``, turn each global data section into an array
map with its initial image, and fix up the object's BTF (DATASEC sizes and
variable offsets come from the ELF, as the compiler leaves them zero).

Loading (:meth:`ObjectSpec.load`) is the second half: see ``_Loader``.
"""

from __future__ import annotations

import builtins
import os
import struct
from itertools import chain
from operator import itemgetter

from . import asm
from .elf import (
    R_BPF_64_32,
    R_BPF_64_64,
    SHF_ALLOC,
    SHN_UNDEF,
    SHT_NOBITS,
    SHT_PROGBITS,
    STB_GLOBAL,
    STB_LOCAL,
    STB_WEAK,
    STT_FUNC,
    STT_OBJECT,
    STT_SECTION,
    STV_HIDDEN,
    ElfFile,
    Section,
    Symbol,
)
from .errors import ObjectError, RelocationError, VerifierError
from .records import memoize
from .sections import SectionDef, find_section_def
from .sys import consts as C

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence
    from typing import Any

    from .btf.ext import BTFExt
    from .btf.types import BTF
    from .variables import DataSection

BPF_OBJ_NAME_LEN = 16
LIBBPF_PIN_NONE = 0
LIBBPF_PIN_BY_NAME = 1
BPF_PSEUDO_FUNC = 4

KCONFIG_SEC = ".kconfig"
KSYMS_SEC = ".ksyms"

# Map types whose maps never carry key/value BTF (libbpf clears the ids for them).
_NO_BTF_MAP_TYPES = frozenset({
    C.BPF_MAP_TYPE_PERF_EVENT_ARRAY, C.BPF_MAP_TYPE_CGROUP_ARRAY, C.BPF_MAP_TYPE_STACK_TRACE,
    C.BPF_MAP_TYPE_ARRAY_OF_MAPS, C.BPF_MAP_TYPE_HASH_OF_MAPS, C.BPF_MAP_TYPE_DEVMAP,
    C.BPF_MAP_TYPE_DEVMAP_HASH, C.BPF_MAP_TYPE_CPUMAP, C.BPF_MAP_TYPE_XSKMAP,
    C.BPF_MAP_TYPE_SOCKMAP, C.BPF_MAP_TYPE_SOCKHASH, C.BPF_MAP_TYPE_QUEUE,
    C.BPF_MAP_TYPE_STACK, C.BPF_MAP_TYPE_RINGBUF, C.BPF_MAP_TYPE_USER_RINGBUF,
    C.BPF_MAP_TYPE_ARENA,
})
# Largest global data section we build a map image for (far above what programs use).
_MAX_DATA_SECTION = 256 << 20
_MAP_IN_MAP = frozenset({C.BPF_MAP_TYPE_ARRAY_OF_MAPS, C.BPF_MAP_TYPE_HASH_OF_MAPS})
# Map types whose key is a u32 index when the definition leaves key_size out.
_FD_ARRAYS = frozenset({
    C.BPF_MAP_TYPE_PERF_EVENT_ARRAY, C.BPF_MAP_TYPE_CGROUP_ARRAY, C.BPF_MAP_TYPE_PROG_ARRAY,
    C.BPF_MAP_TYPE_ARRAY_OF_MAPS,
})

_SHORT_NAMES: dict[str, dict[int, str]] = {}


def short_type_name(prefix: str, value: int) -> str:
    """``"ringbuf"`` for ("BPF_MAP_TYPE_", 27): the kernel's name, unprefixed, lower case.

    The tables are built on first use, not at import (they walk every constant).
    """
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


class Reloc:
    """One relocation of a program or subprogram instruction.

    ``kind`` is ``"map"`` (ld_imm64 of a map fd; ``target`` the map key),
    ``"data"`` (ld_imm64 of a global data address; ``offset`` is the byte offset
    inside ``target``'s value), ``"kconfig"`` / ``"ksym"`` (ld_imm64 of an
    extern), ``"kfunc"`` (call of an extern kernel function), ``"call"`` or
    ``"func_addr"`` (bpf-to-bpf call / callback address: ``section`` and
    ``offset`` give the callee's instruction index in that section, ``target``
    its name). These are plain classes, not dataclasses: importing that module
    (and the ``inspect`` it pulls in) costs more than a warm start's CO-RE budget.
    """

    __slots__ = ("insn_index", "kind", "target", "offset", "section")

    def __init__(self, insn_index: int, kind: str, target: str, offset: int = 0,
                 section: str = "") -> None:
        self.insn_index = insn_index
        self.kind = kind
        self.target = target
        self.offset = offset
        self.section = section

    def __iter__(self) -> Iterator[Any]:
        return iter((self.insn_index, self.kind, self.target))

    def _key(self) -> tuple[int, str, str, int, str]:
        return (self.insn_index, self.kind, self.target, self.offset, self.section)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Reloc) and self._key() == other._key()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (f"Reloc(insn_index={self.insn_index}, kind={self.kind!r}, "
                f"target={self.target!r}, offset={self.offset}, section={self.section!r})")


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
        return len(self.insns) // asm.INSN_SIZE

    def __repr__(self) -> str:
        return f"_Func({self.name!r}, section={self.section!r}, insns={self.insn_cnt})"


class ProgramSpec(_Func):
    """An entry-point program, editable before load (``autoload``, ``attach_to``, types)."""

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


class ObjectSpec:
    """A parsed BPF object; nothing is in the kernel until :meth:`load`."""

    def __init__(self, elf: ElfFile, name: str, target_btf: BTF | None = None) -> None:
        self.elf = elf
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
        _Parser(self).parse()

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

    @property
    def rodata(self) -> DataSection:
        return self.datasec(".rodata")

    @property
    def data(self) -> DataSection:
        return self.datasec(".data")

    @property
    def bss(self) -> DataSection:
        return self.datasec(".bss")

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
                                  f"{hint}")
        found[0].set_from_string(name, text)

    def load(self, target_btf: BTF | str | None = None, pin_root: str | None = None) -> Object:
        """Create maps, relocate and load every autoload program (libbpf's bpf_object__load).

        ``target_btf`` (a BTF or a path) is what CO-RE relocates against, by default
        the running kernel's; ``pin_root`` is where LIBBPF_PIN_BY_NAME maps live
        (default /sys/fs/bpf). On any failure everything created so far is closed.
        """
        loader = _Loader(self, target_btf if target_btf is not None else self.target_btf,
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


def open(source: Any, btf: BTF | None = None, *, name: str | None = None) -> ObjectSpec:  # noqa: A001
    """Parse a BPF ELF object (path or bytes) into an :class:`ObjectSpec`.

    ``btf`` is the target BTF used later for CO-RE (default: the running
    kernel's); ``name`` overrides the object name used for data map names.
    An object opened by path is parsed once: later opens of the same bytes at
    the same path rebuild the spec from the user cache (see :class:`_SpecCache`).
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        spec = ObjectSpec(ElfFile(source, name=name), name or "obj", btf)
        return spec
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
    SOURCES = ("object.py", "elf.py", "sections.py", "asm.py", "records.py", "cache.py",
               "btf/types.py", "btf/ext.py", "sys/consts.py")

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

        try:
            encoded = _spec_codec().encode(spec)
        except TypeError:  # something only a fresh parse can build: do not cache it
            return
        write_marshal(self.file, (self.stamp, self.key, self.data, encoded))
        prune(os.path.dirname(self.file), "spec-", ".obj", self.KEEP)


def _elf_state(elf: ElfFile) -> tuple[bytes, str]:
    return elf.data, elf.name


def _elf_from_state(state: tuple[bytes, str]) -> ElfFile:
    return ElfFile.unparsed(*state)


def _btf_state(btf: BTF) -> tuple[bytes, list[int]]:
    if btf.base is not None:
        raise TypeError("split BTF is not cached")
    return btf.to_bytes(), list(btf._offsets)


def _btf_from_state(state: tuple[bytes, list[int]]) -> BTF:
    from .btf.types import BTF

    return BTF(state[0], offsets=state[1])


def _ext_state(ext: BTFExt) -> tuple[bytes, BTF]:
    if ext._raw is None:
        raise TypeError("a BTFExt built from records is not cached")
    return ext._raw, ext._btf


def _ext_from_state(state: tuple[bytes, BTF]) -> BTFExt:
    from .btf.ext import BTFExt

    return BTFExt.from_bytes(*state)


@memoize
def _spec_codec() -> Any:
    from .btf.ext import BTFExt
    from .btf.types import BTF
    from .cache import Codec

    classes = (ObjectSpec, _Programs, _Maps, ProgramSpec, _Func, MapSpec, Reloc, Extern,
               ElfFile, SectionDef, BTF, BTFExt)
    return Codec(classes, {BTF: (_btf_state, _btf_from_state),
                           BTFExt: (_ext_state, _ext_from_state),
                           ElfFile: (_elf_state, _elf_from_state)})


class _Parser:
    """One pass over the ELF filling an ObjectSpec (kept apart so ObjectSpec stays small)."""

    def __init__(self, spec: ObjectSpec) -> None:
        self.spec = spec
        self.elf = spec.elf
        self.fname = spec.elf.name
        self.text_index = -1

    def err(self, msg: str) -> ObjectError:
        return ObjectError(f"{self.fname}: {msg}")

    def parse(self) -> None:
        self._load_btf()
        if self.elf.section("maps") is not None:
            raise self.err("legacy 'maps' section (struct bpf_map_def) is not supported; "
                           "define maps in SEC(\".maps\") with __uint/__type")
        text = self.elf.section(".text")
        self.text_index = text.index if text is not None else -1
        if self.spec.btf is None:
            self._collect_externs()
        self._collect_btf_maps()
        self._collect_data_maps()
        self._add_kconfig_map()
        self._collect_functions()
        self._collect_map_slots()

    # ---- BTF -----------------------------------------------------------------------------

    def _load_btf(self) -> None:
        sec = self.elf.section(".BTF")
        if sec is None:
            return
        from .btf.types import BTF

        try:
            raw = BTF.from_bytes(sec.data)
        except ObjectError as e:
            raise self.err(f".BTF: {e}") from None
        self.spec.btf = raw
        self._collect_externs()
        try:
            self.spec.btf = raw.patched(self._fixup_btf(raw))
        except struct.error as e:  # sizes/offsets that do not fit BTF's u32 fields
            raise self.err(f".BTF: cannot lay out its DATASECs: {e}") from None
        except ObjectError as e:
            raise self.err(f".BTF: {e}") from None
        ext = self.elf.section(".BTF.ext")
        if ext is not None:
            from .btf.ext import BTFExt

            try:
                self.spec.btf_ext = BTFExt.from_bytes(ext.data, self.spec.btf)
            except ObjectError as e:
                raise self.err(f"{e}") from None

    def _fixup_btf(self, btf: BTF) -> bytes:
        """Fill DATASEC sizes and variable offsets from the ELF, as libbpf's btf_fixup_datasec.

        The compiler leaves them zero; the kernel (and our variable accessors)
        need the real layout. Hidden global variables and functions are marked
        static so the verifier treats them like libbpf does.
        """
        from .btf.types import BTF_FUNC_STATIC, BTF_VAR_GLOBAL_EXTERN, BTF_VAR_STATIC, Kind

        data = bytearray(btf.to_bytes())
        var_syms: dict[str, Symbol] = {}
        func_syms: dict[str, Symbol] = {}
        for s in self.elf.symbols:
            if s.type == STT_OBJECT and s.shndx != SHN_UNDEF and s.name:
                var_syms.setdefault(s.name, s)
            elif s.type == STT_FUNC and s.bind != STB_LOCAL and s.name:
                func_syms.setdefault(s.name, s)
        for tid in btf.ids_of_kinds(Kind.FUNC, Kind.DATASEC):
            kind = btf.kind_of(tid)
            if kind == Kind.FUNC:
                fs = func_syms.get(btf.name_of(tid))
                if fs is not None and fs.visibility == STV_HIDDEN:
                    off = btf.type_offset(tid)
                    info = struct.unpack_from("<I", data, off + 4)[0]
                    struct.pack_into("<I", data, off + 4, (info & ~0xFFFF) | BTF_FUNC_STATIC)
                continue
            if kind != Kind.DATASEC:
                continue
            ds = btf[tid]
            off = btf.type_offset(tid)
            sec_name = ds.name
            if sec_name == KCONFIG_SEC:
                self._fixup_kconfig_datasec(btf, data, tid)
                continue
            if sec_name == KSYMS_SEC:
                self._fixup_ksyms_datasec(btf, data, tid)
                continue
            if ds.size == 0:
                elf_sec = self.elf.section(sec_name)
                if elf_sec is None:
                    raise self.err(f".BTF: DATASEC {sec_name!r} has no ELF section")
                struct.pack_into("<I", data, off + 8, elf_sec.size)
            entries = []
            for i, vsi in enumerate(ds.vars):
                var = btf[vsi.type]
                offset = vsi.offset
                if var.kind == Kind.VAR and var.linkage not in (BTF_VAR_STATIC,
                                                                BTF_VAR_GLOBAL_EXTERN):
                    sym = var_syms.get(var.name)
                    if sym is None:
                        raise self.err(f".BTF: no ELF symbol for variable {var.name!r} "
                                       f"of section {sec_name!r}")
                    offset = sym.value
                    sec_size = self.elf.sections[sym.shndx].size \
                        if sym.shndx < len(self.elf.sections) else 0
                    if offset + vsi.size > sec_size:
                        raise self.err(f".BTF: variable {var.name!r} (offset {offset}, size "
                                       f"{vsi.size}) lies outside its section")
                    if sym.visibility == STV_HIDDEN:
                        struct.pack_into("<I", data, btf.type_offset(vsi.type) + 12,
                                         BTF_VAR_STATIC)
                entries.append((vsi.type, offset, vsi.size, i))
            entries.sort(key=lambda e: (e[1], e[3]))
            for i, (t, o, s, _) in enumerate(entries):
                struct.pack_into("<III", data, off + 12 + 12 * i, t, o, s)
        return bytes(data)

    def _fixup_kconfig_datasec(self, btf: BTF, data: bytearray, tid: int) -> None:
        """Give .kconfig the layout of the map we build for it (libbpf does the same)."""
        from .btf.types import BTF_VAR_GLOBAL_ALLOCATED

        off = btf.type_offset(tid)
        struct.pack_into("<I", data, off + 8, getattr(self, "kconfig_size", 0))
        for i, vsi in enumerate(btf[tid].vars):
            name = btf.name_of(vsi.type)
            ext = self.spec.externs.get(name)
            if ext is None or ext.kind != "kconfig":
                raise self.err(f".kconfig variable {name!r} is not an extern")
            struct.pack_into("<III", data, off + 12 + 12 * i, vsi.type, ext.offset, vsi.size)
            struct.pack_into("<I", data, btf.type_offset(vsi.type) + 12,
                             BTF_VAR_GLOBAL_ALLOCATED)

    def _fixup_ksyms_datasec(self, btf: BTF, data: bytearray, tid: int) -> None:
        """Lay .ksyms out as 4-byte slots and make its VARs plain ints, as libbpf does.

        The kernel has no storage for these externs; it only needs a DATASEC it
        accepts. Extern FUNCs are swapped for a VAR by the BTF sanitizer.
        """
        from .btf.types import BTF_VAR_GLOBAL_ALLOCATED, Kind

        int_id = next((i for i in range(btf.start_id, len(btf))
                       if btf.kind_of(i) == Kind.INT and btf[i].size == 4
                       and btf[i].bits == 32), 0)
        off = btf.type_offset(tid)
        entries = btf[tid].vars
        for i, vsi in enumerate(entries):
            if btf.kind_of(vsi.type) == Kind.VAR:
                voff = btf.type_offset(vsi.type)
                struct.pack_into("<I", data, voff + 12, BTF_VAR_GLOBAL_ALLOCATED)
                if int_id:
                    struct.pack_into("<I", data, voff + 8, int_id)
            elif btf.kind_of(vsi.type) == Kind.FUNC:
                # Extern prototypes carry no parameter names; the kernel wants them.
                name_off, _info, proto = btf.raw(vsi.type)
                poff = btf.type_offset(proto)
                for j in range(btf.raw(proto)[1] & 0xFFFF):
                    at = poff + 12 + 8 * j
                    pname, ptype = struct.unpack_from("<II", data, at)
                    if ptype and not pname:
                        struct.pack_into("<I", data, at, name_off)
            struct.pack_into("<III", data, off + 12 + 12 * i, vsi.type, 4 * i, 4)
        struct.pack_into("<I", data, off + 8, 4 * len(entries))

    def _datasec_id(self, name: str) -> int:
        btf = self.spec.btf
        if btf is None:
            return 0
        from .btf.types import Kind

        ids = btf.find(name, Kind.DATASEC)
        return ids[0] if ids else 0

    # ---- externs ------------------------------------------------------------------------

    def _collect_externs(self) -> None:
        """Find .kconfig/.ksyms externs and lay out the .kconfig map like libbpf."""
        externs = [s for s in self.elf.symbols
                   if s.shndx == SHN_UNDEF and s.bind in (STB_GLOBAL, STB_WEAK) and s.name]
        if not externs:
            return
        btf = self.spec.btf
        if btf is None:
            raise self.err(f"extern {externs[0].name!r} needs BTF (compile with -g)")
        from .btf.types import Kind

        where: dict[int, str] = {}
        for sec in (KCONFIG_SEC, KSYMS_SEC):
            for dsid in btf.find(sec, Kind.DATASEC):
                for vsi in btf[dsid].vars:
                    where[vsi.type] = sec
        out: list[Extern] = []
        for s in externs:
            ids = [i for i in btf.find(s.name) if btf.kind_of(i) in (Kind.VAR, Kind.FUNC)]
            ids = [i for i in ids if btf[i].linkage == 2]  # BTF_VAR_GLOBAL_EXTERN/BTF_FUNC_EXTERN
            if not ids:
                raise self.err(f"extern {s.name!r} has no BTF VAR/FUNC describing it")
            tid = ids[0]
            weak = s.bind == STB_WEAK
            if btf.kind_of(tid) == Kind.FUNC:
                out.append(Extern(s.name, "kfunc", weak, tid, btf[tid].type, sym_index=s.index))
                continue
            sec = where.get(tid)
            vtype = btf[tid].type
            if sec == KCONFIG_SEC:
                size = self._kconfig_size(s.name, vtype)
                out.append(Extern(s.name, "kconfig", weak, tid, vtype, size,
                                  _btf_align(btf, vtype), sym_index=s.index))
            elif sec == KSYMS_SEC:
                out.append(Extern(s.name, "ksym", weak, tid, vtype, sym_index=s.index))
            else:
                raise self.err(f"extern {s.name!r} is neither in .kconfig nor .ksyms")
        # libbpf's order: kconfig first, larger alignment first, then by name.
        out.sort(key=lambda e: (e.kind != "kconfig", -e.align, e.name))
        off = 0
        for e in out:
            if e.kind == "kconfig":
                e.offset = (off + e.align - 1) // e.align * e.align
                off = e.offset + e.size
            self.spec.externs[e.name] = e
        self.kconfig_size = off

    def _kconfig_size(self, name: str, type_id: int) -> int:
        """Size of a .kconfig extern whose type libbpf accepts (ints, enums, bool, char[N])."""
        from .btf.types import Kind

        btf = self.spec.btf
        assert btf is not None
        t = btf[btf.resolve(type_id)]
        size = btf.size_of(type_id)
        if t.kind in (Kind.INT, Kind.ENUM, Kind.ENUM64) and size <= 8:
            return size
        if t.kind == Kind.ARRAY and btf.size_of(t.elem_type) == 1 and 0 < size <= 4096:
            return size
        raise self.err(f".kconfig extern {name!r} has unsupported type "
                       f"{btf.c_type_name(type_id)!r} (use an integer, bool, enum or char[N])")

    def _add_kconfig_map(self) -> None:
        size = getattr(self, "kconfig_size", 0)
        if not size:
            return
        ds_id = self._datasec_id(KCONFIG_SEC)
        self.spec.maps[KCONFIG_SEC] = MapSpec(
            internal_map_name(self.spec.name, KCONFIG_SEC), C.BPF_MAP_TYPE_ARRAY, key_size=4,
            value_size=size, max_entries=1, map_flags=C.BPF_F_RDONLY_PROG | C.BPF_F_MMAPABLE,
            value_type_id=ds_id, section=KCONFIG_SEC, data=bytearray(size))

    # ---- global data ---------------------------------------------------------------------

    def _collect_data_maps(self) -> None:
        from .btf.types import BTF_VAR_STATIC, Kind

        btf = self.spec.btf
        for sec in self.elf.sections:
            kind = _data_kind(sec)
            if kind is None or sec.size == 0:
                continue
            if sec.size > _MAX_DATA_SECTION:
                raise self.err(f"global data section {sec.name!r} is {sec.size} bytes; more "
                               f"than the {_MAX_DATA_SECTION >> 20} MiB an array value can be")
            flags = C.BPF_F_RDONLY_PROG if kind == "rodata" else 0
            ds_id = self._datasec_id(sec.name)
            # libbpf's map_is_mmapable: only when some variable is not static.
            if ds_id and btf is not None and any(
                    btf[v.type].kind == Kind.VAR and btf[v.type].linkage != BTF_VAR_STATIC
                    for v in btf[ds_id].vars):
                flags |= C.BPF_F_MMAPABLE
            data = bytearray(sec.size) if sec.type == SHT_NOBITS else bytearray(sec.data)
            self.spec.maps[sec.name] = MapSpec(
                internal_map_name(self.spec.name, sec.name), C.BPF_MAP_TYPE_ARRAY, key_size=4,
                value_size=sec.size, max_entries=1, map_flags=flags, value_type_id=ds_id,
                section=sec.name, sec_offset=0, data=data)

    # ---- BTF-defined maps ---------------------------------------------------------------

    def _collect_btf_maps(self) -> None:
        sec = self.elf.section(".maps")
        self.map_extents: dict[str, tuple[int, int]] = {}
        if sec is None:
            return
        btf = self.spec.btf
        if btf is None:
            raise self.err("'.maps' section needs BTF (compile with -g)")
        ds_id = self._datasec_id(".maps")
        if not ds_id:
            raise self.err("'.maps' section has no BTF DATASEC")
        from .btf.types import Kind

        for vsi in btf[ds_id].vars:
            var = btf[vsi.type]
            if var.kind != Kind.VAR:
                raise self.err(f".maps: entry [{vsi.type}] is not a variable")
            if var.linkage not in (0, 1):
                raise self.err(f"map {var.name!r}: unsupported linkage {var.linkage}")
            m = self._parse_map_def(var.name, var.type, inner_ok=True)
            m.btf_var_id = vsi.type
            m.sec_offset = vsi.offset
            m.section = ".maps"
            self.map_extents[var.name] = (vsi.offset, vsi.size)
            self.spec.maps[var.name] = m

    def _parse_map_def(self, name: str, type_id: int, inner_ok: bool) -> MapSpec:
        from .btf.types import Kind

        btf = self.spec.btf
        assert btf is not None
        st = btf[btf.resolve(type_id)]
        if st.kind != Kind.STRUCT:
            raise self.err(f"map {name!r}: definition is {btf.c_type_name(type_id)!r}, "
                           "not a struct")
        m = MapSpec(name, 0)
        values_member: Any = None
        for i, mem in enumerate(st.members):
            mname = mem.name
            if mname in ("type", "max_entries", "map_flags", "numa_node", "pinning",
                         "key_size", "value_size", "map_extra"):
                val = self._map_field_int(name, mname, mem.type)
                if mname == "type":
                    m.type = val
                elif mname in ("key_size", "value_size"):
                    cur = getattr(m, mname)
                    if cur and cur != val:
                        raise self.err(f"map {name!r}: conflicting {mname} {cur} != {val}")
                    setattr(m, mname, val)
                else:
                    setattr(m, mname, val)
            elif mname in ("key", "value"):
                ptr = btf[btf.resolve(mem.type)]
                if ptr.kind != Kind.PTR:
                    raise self.err(f"map {name!r}: {mname} must be declared with __type()")
                size = btf.size_of(ptr.type)
                attr = f"{mname}_size"
                cur = getattr(m, attr)
                if cur and cur != size:
                    raise self.err(f"map {name!r}: conflicting {attr} {cur} != {size}")
                setattr(m, attr, size)
                setattr(m, f"{mname}_type_id", ptr.type)
            elif mname == "values":
                values_member = (i, mem)
            else:
                raise self.err(f"map {name!r}: unknown field {mname!r} in map definition")
        if m.pinning not in (LIBBPF_PIN_NONE, LIBBPF_PIN_BY_NAME):
            raise self.err(f"map {name!r}: invalid pinning value {m.pinning}")
        if values_member is not None:
            self._parse_values(m, st, *values_member, inner_ok=inner_ok)
        if m.type in _FD_ARRAYS or m.type == C.BPF_MAP_TYPE_HASH_OF_MAPS:
            if not m.key_size and m.type != C.BPF_MAP_TYPE_HASH_OF_MAPS:
                m.key_size = 4
            if not m.value_size:
                m.value_size = 4
        if m.type in _NO_BTF_MAP_TYPES:
            m.key_type_id = m.value_type_id = 0
        return m

    def _parse_values(self, m: MapSpec, st: Any, i: int, mem: Any, *, inner_ok: bool) -> None:
        """``__array(values, ...)``: inner map definition or prog array value type."""
        from .btf.types import Kind

        btf = self.spec.btf
        assert btf is not None
        name = m.name
        if i != len(st.members) - 1:
            raise self.err(f"map {name!r}: 'values' member must be last")
        is_mim = m.type in _MAP_IN_MAP
        if not is_mim and m.type != C.BPF_MAP_TYPE_PROG_ARRAY:
            raise self.err(f"map {name!r}: 'values' needs a map-in-map or prog array")
        if not inner_ok:
            raise self.err(f"map {name!r}: multi-level inner maps are not supported")
        if m.value_size and m.value_size != 4:
            raise self.err(f"map {name!r}: value_size must be 4 with 'values'")
        m.value_size = 4
        arr = btf[btf.resolve(mem.type)]
        if arr.kind != Kind.ARRAY or arr.nelems:
            raise self.err(f"map {name!r}: 'values' is not a zero-sized array")
        ptr = btf[btf.resolve(arr.elem_type)]
        if ptr.kind != Kind.PTR:
            raise self.err(f"map {name!r}: 'values' must be an array of pointers")
        target = btf[btf.resolve(ptr.type)]
        if is_mim:
            if target.kind != Kind.STRUCT:
                raise self.err(f"map {name!r}: inner map definition is not a struct")
            m.inner = self._parse_map_def(f"{name}.inner", target.id, inner_ok=False)
        elif target.kind != Kind.FUNC_PROTO:
            raise self.err(f"map {name!r}: prog array values must be function pointers")

    def _map_field_int(self, map_name: str, field_name: str, type_id: int) -> int:
        """Decode ``__uint(field, N)`` (pointer to an N-element array) or an enum constant."""
        from .btf.types import Kind

        btf = self.spec.btf
        assert btf is not None
        t = btf[btf.resolve(type_id)]
        if t.kind == Kind.PTR:
            arr = btf[t.type]
            if arr.kind == Kind.ARRAY:
                return arr.nelems
        if t.kind in (Kind.ENUM, Kind.ENUM64) and t.values:
            return t.values[0][1]
        raise self.err(f"map {map_name!r}: field {field_name!r} is "
                       f"{btf.c_type_name(type_id)!r}, expected __uint({field_name}, N)")

    # ---- programs -----------------------------------------------------------------------

    def _collect_functions(self) -> None:
        elf = self.elf
        for sec in elf.sections:
            if not sec.executable or sec.size == 0:
                continue
            if sec.size % asm.INSN_SIZE:
                raise self.err(f"section {sec.name!r}: size {sec.size} is not a multiple of 8")
            syms = sorted((s for s in elf.symbols_in(sec.index) if s.type == STT_FUNC),
                          key=lambda s: s.value)
            relocs = self._section_relocs(sec)
            funcs: list[_Func] = []
            is_text = sec.index == self.text_index
            # SEC("?name"): libbpf's "do not load unless asked" marker.
            optional = sec.name.startswith("?")
            sdef = None if is_text else find_section_def(sec.name[1:] if optional else sec.name)
            for s in syms:
                if s.value % 8 or s.size % 8 or s.value + s.size > sec.size or not s.size:
                    raise self.err(f"function {s.name!r} in {sec.name!r} has bad bounds "
                                   f"(offset {s.value}, size {s.size})")
                start, n = s.value // 8, s.size // 8
                insns = bytearray(sec.data[s.value:s.value + s.size])
                frel = [Reloc(r.insn_index - start, r.kind, r.target, r.offset, r.section)
                        for r in relocs if start <= r.insn_index < start + n]
                entry = not is_text and s.bind in (STB_GLOBAL, STB_WEAK)
                hidden = s.visibility == STV_HIDDEN
                f: _Func
                if entry:
                    if s.name in self.spec.programs:
                        raise self.err(f"duplicate program name {s.name!r}")
                    p = ProgramSpec(s.name, sec.name, start, insns, frel, True, hidden,
                                    license=self.spec.license,
                                    kern_version=self.spec.kernel_version,
                                    autoload=not optional)
                    if sdef is not None:
                        p.section_def = sdef
                        p.prog_type = sdef.prog_type
                        p.expected_attach_type = sdef.expected_attach_type
                        p.attach_to = sdef.attach_target
                        p.prog_flags = sdef.prog_flags
                    self.spec.programs[s.name] = p
                    f = p
                else:
                    f = _Func(s.name, sec.name, start, insns, frel, False, hidden)
                    self.spec.subprograms[(sec.name, start)] = f
                funcs.append(f)
            self.spec.functions[sec.name] = funcs

    def _section_relocs(self, sec: Section) -> list[Reloc]:
        """Classify each relocation of an executable section, as libbpf's record_reloc."""
        out: list[Reloc] = []
        for r in self.elf.relocations.get(sec.index, []):
            if r.offset % 8 or r.offset + 8 > sec.size:
                raise RelocationError(f"{self.fname}: section {sec.name!r}: relocation at "
                                      f"byte {r.offset} is not on an instruction")
            out.append(self._classify(sec, r.offset // 8, self.elf.symbols[r.symbol], r.type))
        return out

    def _classify(self, sec: Section, idx: int, sym: Symbol, rtype: int) -> Reloc:
        code, _dst, src, _off, imm = asm.decode(sec.data, idx)

        def where() -> str:  # only errors need it, and it walks the symbol table
            return (f"{self.fname}: function {self._func_name(sec, idx)!r} "
                    f"(section {sec.name!r}) insn {idx}")

        sym_desc = sym.name or f"section #{sym.shndx}"
        if rtype not in (R_BPF_64_64, R_BPF_64_32):
            raise RelocationError(f"{where()}: unsupported relocation type {rtype} "
                                  f"against {sym_desc!r}")
        if sym.shndx == SHN_UNDEF and sym.name:
            ext = self.spec.externs.get(sym.name)
            if ext is None:
                raise RelocationError(f"{where()}: unknown extern {sym.name!r}")
            if code == asm.CALL:
                return Reloc(idx, "kfunc", sym.name)
            if code == asm.LD_IMM64:
                return Reloc(idx, "ksym" if ext.kind == "kfunc" else ext.kind, sym.name,
                             ext.offset)
            raise RelocationError(f"{where()}: extern {sym.name!r} used by opcode {code:#x}")
        if sym.shndx == 0 or sym.shndx >= len(self.elf.sections):
            raise RelocationError(f"{where()}: relocation against {sym_desc!r} in no section")
        tsec = self.elf.sections[sym.shndx]
        if code == asm.CALL:
            if src != asm.BPF_PSEUDO_CALL:
                raise RelocationError(f"{where()}: call relocation on a non bpf-to-bpf call")
            if not tsec.executable:
                raise RelocationError(f"{where()}: call into non-code section {tsec.name!r}")
            if sym.value % 8:
                raise RelocationError(f"{where()}: misaligned call target {sym_desc!r}")
            target = sym.value // 8 + imm + 1
            return Reloc(idx, "call", self._func_name(tsec, target), target, tsec.name)
        if code != asm.LD_IMM64:
            raise RelocationError(f"{where()}: relocation against {sym_desc!r} on opcode "
                                  f"{code:#x} (expected ld_imm64 or call)")
        if idx + 1 >= sec.size // 8:
            raise RelocationError(f"{where()}: ld_imm64 is truncated")
        if tsec.executable:
            if (sym.value + imm) % 8:
                raise RelocationError(f"{where()}: misaligned function address")
            target = (sym.value + imm) // 8
            return Reloc(idx, "func_addr", self._func_name(tsec, target), target, tsec.name)
        if tsec.name == ".maps":
            mname = self._map_at(sym.value)
            if mname is None:
                raise RelocationError(f"{where()}: no map at .maps offset {sym.value} "
                                      f"(symbol {sym_desc!r})")
            return Reloc(idx, "map", mname)
        m = self.spec.maps.get(tsec.name)
        if m is not None and m.data is not None:
            if sym.type not in (STT_OBJECT, STT_SECTION) and sym.name:
                raise RelocationError(f"{where()}: bad data relocation against {sym_desc!r}")
            return Reloc(idx, "data", tsec.name, sym.value + imm)
        raise RelocationError(f"{where()}: relocation against {sym_desc!r} in section "
                              f"{tsec.name!r}, which is neither a map nor global data")

    def _func_name(self, sec: Section, insn: int) -> str:
        off = insn * 8
        for s in self.elf.symbols_in(sec.index):
            if s.type == STT_FUNC and s.value <= off < s.value + max(s.size, 1):
                return s.name
        return f"{sec.name}+{insn}"

    def _map_at(self, offset: int) -> str | None:
        for name, m in self.spec.maps.items():
            if m.section == ".maps" and m.sec_offset == offset:
                return name
        return None

    def _collect_map_slots(self) -> None:
        """Read ``.rel.maps``: initial prog_array / map-in-map slots (``.values = {...}``)."""
        sec = self.elf.section(".maps")
        if sec is None:
            return
        rels = self.elf.relocations.get(sec.index, [])
        btf = self.spec.btf
        for r in rels:
            assert btf is not None
            sym = self.elf.symbols[r.symbol]
            owner = next((n for n, (o, s) in self.map_extents.items() if o <= r.offset < o + s),
                         None)
            if owner is None:
                raise RelocationError(f"{self.fname}: .maps relocation at {r.offset} is "
                                      "outside every map")
            m = self.spec.maps[owner]
            st = btf[btf.resolve(btf[m.btf_var_id].type)]
            last = st.members[-1] if st.members else None
            if last is None or last.name != "values":
                raise RelocationError(f"{self.fname}: map {owner!r} has initial values but "
                                      "no 'values' member")
            moff = r.offset - m.sec_offset - last.bit_offset // 8
            if moff < 0 or moff % 8:
                raise RelocationError(f"{self.fname}: map {owner!r}: bad 'values' slot offset")
            idx = moff // 8
            if m.type == C.BPF_MAP_TYPE_PROG_ARRAY:
                if sym.type != STT_FUNC or sym.name not in self.spec.programs:
                    raise RelocationError(f"{self.fname}: map {owner!r} slot {idx}: "
                                          f"{sym.name!r} is not a program")
            elif sym.name not in self.map_extents:
                raise RelocationError(f"{self.fname}: map {owner!r} slot {idx}: "
                                      f"{sym.name!r} is not a map")
            if idx >= m.max_entries:
                raise RelocationError(f"{self.fname}: map {owner!r}: slot {idx} is beyond "
                                      f"max_entries {m.max_entries}")
            m.init_slots[idx] = sym.name


def _data_kind(sec: Section) -> str | None:
    """'rodata', 'data' or 'bss' for a global data section libbpf would turn into a map."""
    n = sec.name
    if not sec.flags & SHF_ALLOC:
        return None
    if sec.type == SHT_PROGBITS and (n == ".rodata" or n.startswith(".rodata.")):
        return "rodata"
    if sec.type == SHT_PROGBITS and (n == ".data" or n.startswith(".data.")):
        return "data"
    if sec.type == SHT_NOBITS and (n == ".bss" or n.startswith(".bss.")):
        return "bss"
    return None


def _btf_align(btf: BTF, type_id: int) -> int:
    """Natural alignment of a BTF type (what libbpf's btf__align_of gives for externs)."""
    from .btf.types import Kind

    t = btf[btf.resolve(type_id)]
    if t.kind in (Kind.INT, Kind.ENUM, Kind.ENUM64, Kind.FLOAT):
        return min(max(t.size, 1), 8)
    if t.kind == Kind.PTR:
        return 8
    if t.kind == Kind.ARRAY:
        return _btf_align(btf, t.elem_type)
    if t.kind in (Kind.STRUCT, Kind.UNION):
        return max((_btf_align(btf, m.type) for m in t.members), default=1)
    return 1


# ---- loading -------------------------------------------------------------------------------

_KSYSCALL_WRAPPER_ARCHES = ("x86_64", "aarch64", "s390x", "riscv64", "arm64")


class Object:
    """A loaded BPF object: owns every map, program and BTF fd, and the links of attach()."""

    def __init__(self, spec: ObjectSpec) -> None:
        self.spec = spec
        self.name = spec.name
        self.btf = spec.btf
        self.btf_fd: Any = None
        self.maps: _Maps = _Maps()
        self.programs: _Programs = _Programs()
        self.links: list[Any] = []
        self.pinned: list[str] = []

    def datasec(self, section: str) -> DataSection:
        """Live typed variables of a global data map (``obj.bss.counter`` reads the kernel)."""
        from .variables import LiveDataSection

        self.spec.datasec(section)  # the spec's checks and error message for unknown names
        m = self.maps.get(section)
        if m is None:
            raise ObjectError(f"global data section {section!r} was not created")
        return LiveDataSection(self.spec, section, self.spec.maps[section], m)

    @property
    def rodata(self) -> DataSection:
        return self.datasec(".rodata")

    @property
    def data(self) -> DataSection:
        return self.datasec(".data")

    @property
    def bss(self) -> DataSection:
        return self.datasec(".bss")

    def attach(self) -> list[Any]:
        """Attach every loaded program whose SEC() says how (libbpf's auto-attach).

        Programs whose section names no target (``SEC("kprobe")``, ``xdp``, ...)
        are skipped; attach those explicitly through ``coreframe.links``.
        """
        from .links import attach_program

        new = []
        try:
            for prog in self.programs.values():
                sd = prog.section_def
                if sd is None or not sd.auto_attach:
                    continue
                new.append(attach_program(prog))
        except BaseException:
            for link in new:
                link.close()
            raise
        self.links.extend(new)
        return new

    def detach(self) -> None:
        """Close every link made by :meth:`attach`.

        Closing a perf-event link waits for an RCU grace period in the kernel (about
        75 ms each on a small VM), so links that are plain fds are closed from
        threads at once and the waits overlap; links with undo steps (netlink
        XDP/tc) are closed first, one by one, newest first.
        """
        links, self.links = self.links[::-1], []
        plain = [link for link in links if link.fds_only]
        for link in links:
            if not link.fds_only:
                link.close()
        if len(plain) < 2:
            for link in plain:
                link.close()
            return
        jobs = [_Job(link.close) for link in plain[1:]]
        plain[0].close()
        for job in jobs:
            job.wait()

    def close(self) -> None:
        """Detach, then close every program, map and BTF fd (idempotent)."""
        self.detach()
        for p in self.programs.values():
            p.close()
        for m in self.maps.values():
            m.close()
        if self.btf_fd is not None:
            self.btf_fd.close()
            self.btf_fd = None

    def __enter__(self) -> Object:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"<Object {self.name!r}: {len(self.programs)} programs, {len(self.maps)} maps, "
                f"{len(self.links)} links>")


_col0, _col1, _col2, _col3 = (itemgetter(i) for i in range(4))
_CALL_BYTE = bytes([asm.CALL])
_LD_IMM64_BYTE = bytes([asm.LD_IMM64])


def _call_candidates(insns: bytearray, base: int, count: int) -> list[int]:
    """Indexes (from ``base``) of the call and ld_imm64 instructions among ``count``.

    The opcode bytes are sliced out in one step and searched with bytes.find,
    so linking does not decode every instruction in Python. The second half of
    an ld_imm64 is not an instruction: a match right after a run of an odd
    number of ld_imm64 opcodes is such a half and is skipped.
    """
    start = base * asm.INSN_SIZE
    codes = bytes(insns[start:start + count * asm.INSN_SIZE:asm.INSN_SIZE])
    found = []
    for needle in (_CALL_BYTE, _LD_IMM64_BYTE):
        i = codes.find(needle)
        while i >= 0:
            found.append(i)
            i = codes.find(needle, i + 1)
    found.sort()
    out = []
    for i in found:
        run = 0
        while i - run > 0 and codes[i - run - 1] == asm.LD_IMM64:
            run += 1
        if not run & 1:
            out.append(i)
    return out


class _SourceLines:
    """(insn, file, line text, line, col) of a linked program, built only if asked.

    Only a verifier rejection reads these (to name the C line), so the common,
    successful load does not pay for a tuple per line_info record.
    """

    def __init__(self, order: list[tuple[Any, int]], ext: Any) -> None:
        self._order = order
        self._ext = ext
        self._rows: list[tuple[int, str, str, int, int]] | None = None

    def _build(self) -> list[tuple[int, str, str, int, int]]:
        if self._rows is None:
            rows = []
            if self._ext is not None:
                for func, base in self._order:
                    lo = func.sec_insn_off
                    for ln in self._ext.line_info.get(func.section, ()):
                        k = ln.insn_off // asm.INSN_SIZE
                        if lo <= k < lo + func.insn_cnt:
                            rows.append((base + k - lo, ln.file_name, ln.line_text, ln.line,
                                         ln.col))
            self._rows = rows
        return self._rows

    def __getitem__(self, i: Any) -> Any:
        return self._build()[i]

    def __len__(self) -> int:
        return len(self._build())

    def __iter__(self) -> Iterator[tuple[int, str, str, int, int]]:
        return iter(self._build())


class _Job:
    """A call running on its own thread; :meth:`wait` for it.

    Built on ``_thread``: the threading module would cost every tool its import.
    (Program loads are not run this way: the verifier's few milliseconds did not
    make up for the threads handing the GIL back and forth.)
    """

    __slots__ = ("_done",)

    def __init__(self, func: Callable[..., Any], *args: Any) -> None:
        import _thread

        self._done = _thread.allocate_lock()
        self._done.acquire()
        _thread.start_new_thread(self._run, (func, args))

    def _run(self, func: Callable[..., Any], args: tuple[Any, ...]) -> None:
        try:
            func(*args)
        finally:
            self._done.release()

    def wait(self) -> None:
        """Block until the call has returned or raised."""
        self._done.acquire()
        self._done.release()


class _Loader:
    """The steps of bpf_object__load for one ObjectSpec."""

    def __init__(self, spec: ObjectSpec, target_btf: Any, pin_root: str | None) -> None:
        self.spec = spec
        self._target = target_btf
        self._target_loaded: Any = None
        self.pin_root = pin_root if pin_root is not None else "/sys/fs/bpf"
        self.obj = Object(spec)
        self._kernel_btf: Any = None
        self._strings: dict[str, int] | None = None
        self._relocator: Any = None

    # ---- helpers -------------------------------------------------------------------------

    def target_btf(self) -> Any:
        if self._target_loaded is None:
            from .btf import kernel

            if self._target is None or isinstance(self._target, str):
                self._target_loaded = kernel.load_target(self._target)
            else:
                self._target_loaded = self._target
        return self._target_loaded

    def kernel_btf(self) -> Any:
        if self._kernel_btf is None:
            from .btf import kernel

            self._kernel_btf = kernel.vmlinux()
        return self._kernel_btf

    def run(self) -> Object:
        try:
            self._load_btf()
            self._resolve_kconfig()
            self._create_maps()
            for p in self.spec.programs.values():
                if p.autoload:
                    self._load_program(p)
            self._init_slots()
            save = getattr(self._relocator, "save", None)
            if save is not None:
                save()
        except BaseException:
            self.obj.close()
            for path in self.obj.pinned:
                _unlink_quiet(path)
            raise
        return self.obj

    # ---- BTF -----------------------------------------------------------------------------

    def _load_btf(self) -> None:
        """Sanitize the object's BTF for this kernel and load it (None if refused, like libbpf)."""
        btf = self.spec.btf
        if btf is None:
            return
        from .btf.sanitize import load_object_btf, sanitize

        sizes = {sec.name: sec.size for sec in self.spec.elf.sections if sec.name}
        data = sanitize(btf.to_bytes(), sizes, {})
        self.obj.btf_fd = load_object_btf(data)

    # ---- kconfig -------------------------------------------------------------------------

    def _resolve_kconfig(self) -> None:
        m = self.spec.maps.get(KCONFIG_SEC)
        kexts = [e for e in self.spec.externs.values() if e.kind == "kconfig"]
        if m is None or not kexts:
            return
        assert m.data is not None
        config = _kernel_config() if any(e.name.startswith("CONFIG_") for e in kexts) else {}
        release = os.uname().release
        btf = self.spec.btf
        assert btf is not None
        for e in kexts:
            if e.name == "LINUX_KERNEL_VERSION":
                value: Any = _linux_kernel_version()
            elif e.name == "LINUX_HAS_BPF_COOKIE":
                value = 1
            elif e.name == "LINUX_HAS_SYSCALL_WRAPPER":
                value = int(os.uname().machine in _KSYSCALL_WRAPPER_ARCHES)
            elif e.name.startswith("CONFIG_"):
                if config is None:
                    if e.weak:
                        continue
                    raise ObjectError(f"{self.spec.name}: extern {e.name!r} needs the kernel "
                                      f"config, but neither /proc/config.gz nor "
                                      f"/boot/config-{release} exists")
                value = config.get(e.name)
                if value is None:
                    if e.weak:
                        continue
                    raise ObjectError(f"{self.spec.name}: strong extern {e.name!r} is not "
                                      "set in the kernel config; declare it __weak")
            else:
                if e.weak:
                    continue
                raise ObjectError(f"{self.spec.name}: unknown .kconfig extern {e.name!r}")
            raw = _kconfig_bytes(btf, e, value)
            m.data[e.offset:e.offset + e.size] = raw

    # ---- maps ----------------------------------------------------------------------------

    def _create_maps(self) -> None:
        for key, ms in self.spec.maps.items():
            if not ms.autocreate:
                continue
            self.obj.maps[key] = self._create_map(ms)

    def _map_params(self, ms: MapSpec) -> dict[str, Any]:
        from .maps import possible_cpus

        max_entries = ms.max_entries
        if ms.type == C.BPF_MAP_TYPE_PERF_EVENT_ARRAY and not max_entries:
            max_entries = possible_cpus()
        if ms.type in (C.BPF_MAP_TYPE_RINGBUF, C.BPF_MAP_TYPE_USER_RINGBUF):
            max_entries = _ringbuf_size(max_entries)
        return dict(type=ms.type, key_size=ms.key_size, value_size=ms.value_size,
                    max_entries=max_entries, flags=ms.map_flags, numa_node=ms.numa_node,
                    map_extra=ms.map_extra)

    def _create_map(self, ms: MapSpec) -> Any:
        from .maps import Map, check_compatible

        params = self._map_params(ms)
        kname = ms.name[:BPF_OBJ_NAME_LEN - 1]
        pin_path = None
        if ms.pinning == LIBBPF_PIN_BY_NAME:
            pin_path = self._pin_path(ms.name)
            existing = self._open_pinned(pin_path)
            if existing is not None:
                m = Map.from_fd(existing, name=ms.name)
                try:
                    check_compatible(m.info(), ms.name, map_type=params["type"],
                                     key_size=params["key_size"],
                                     value_size=params["value_size"],
                                     max_entries=params["max_entries"],
                                     map_flags=params["flags"])
                except BaseException:
                    m.close()
                    raise
                return m
        inner = None
        try:
            if ms.inner is not None:
                inner = Map.create(**self._map_params(ms.inner),
                                   name=ms.inner.name[:BPF_OBJ_NAME_LEN - 1])
            btf_ids = {}
            if (self.obj.btf_fd is not None and ms.type not in _NO_BTF_MAP_TYPES
                    and (ms.key_type_id or ms.value_type_id)):
                btf_ids = dict(btf_fd=self.obj.btf_fd, btf_key_type_id=ms.key_type_id,
                               btf_value_type_id=ms.value_type_id)
            try:
                m = Map.create(**params, name=kname, inner_map=inner, **btf_ids)
            except Exception:
                if not btf_ids:
                    raise
                # Like libbpf: a kernel that rejects the BTF still gets the map.
                m = Map.create(**params, name=kname, inner_map=inner)
        finally:
            if inner is not None:
                inner.close()
        m.name = ms.name
        try:
            if ms.data is not None:
                m.update(0, bytes(ms.data))
                if ms.map_flags & C.BPF_F_RDONLY_PROG:
                    m.freeze()
            if pin_path is not None:
                m.pin(pin_path)
                self.obj.pinned.append(pin_path)
        except BaseException:
            m.close()
            raise
        return m

    def _pin_path(self, name: str) -> str:
        root = os.path.realpath(self.pin_root)
        if "/" in name or name in (".", ".."):
            raise ObjectError(f"map {name!r}: name cannot be used as a pin path")
        path = os.path.join(root, name)
        if os.path.dirname(os.path.realpath(path)) != root:
            raise ObjectError(f"map {name!r}: pin path {path} escapes pin root {root}")
        return path

    def _open_pinned(self, path: str) -> Any:
        from .sys import bpf as sysbpf

        try:
            return sysbpf.obj_get(path)
        except FileNotFoundError:
            return None
        except OSError as e:
            from .sys.errors import raise_for

            raise_for(e, f"opening pinned map {path}")

    def _init_slots(self) -> None:
        for key, ms in self.spec.maps.items():
            if not ms.init_slots or key not in self.obj.maps:
                continue
            m = self.obj.maps[key]
            for idx, target in ms.init_slots.items():
                if ms.type == C.BPF_MAP_TYPE_PROG_ARRAY:
                    p = self.obj.programs.get(target)
                    if p is None:
                        continue
                    fd = p.fd
                else:
                    tm = self.obj.maps.get(target)
                    if tm is None:
                        raise ObjectError(f"map {key!r}: slot {idx} needs map {target!r}, "
                                          "which was not created")
                    fd = tm.fd
                m.update(idx, int(fd).to_bytes(4, "little"))

    # ---- programs ------------------------------------------------------------------------

    def _func_at(self, section: str, insn: int, where: str) -> _Func:
        for f in self.spec.functions.get(section, []):
            if f.sec_insn_off <= insn < f.sec_insn_off + f.insn_cnt:
                return f
        raise RelocationError(f"{where}: no function at instruction {insn} of {section!r}")

    def link(self, prog: ProgramSpec) -> tuple[bytearray, list[tuple[_Func, int]]]:
        """Append called subprograms (depth first, like libbpf) and fix call offsets."""
        out = bytearray(prog.insns)
        placed: dict[int, int] = {id(prog): 0}
        order: list[tuple[_Func, int]] = [(prog, 0)]

        def visit(func: _Func, base: int, depth: int) -> None:
            if depth > 64:
                raise RelocationError(f"program {prog.name!r}: call chain too deep")
            relmap = {r.insn_index: r for r in func.relocations}
            for i in _call_candidates(out, base, func.insn_cnt):
                code, _d, src, _o, imm = asm.decode(out, base + i)
                r = relmap.get(i)
                if r is not None and r.kind == "func_addr" and src != BPF_PSEUDO_FUNC:
                    # clang leaves src_reg 0; libbpf marks it so the verifier sees a callback.
                    asm.patch(out, base + i, src=BPF_PSEUDO_FUNC)
                    src = BPF_PSEUDO_FUNC
                is_call = code == asm.CALL and src == asm.BPF_PSEUDO_CALL
                is_addr = code == asm.LD_IMM64 and src == BPF_PSEUDO_FUNC
                if r is not None and r.kind in ("kfunc", "ksym"):
                    is_call = is_addr = False  # kernel functions, patched later
                if is_call or is_addr:
                    where = f"program {prog.name!r} ({func.name} insn {i})"
                    if r is not None and r.kind in ("call", "func_addr"):
                        sec, target = r.section, r.offset
                    elif r is None and is_call:
                        sec, target = func.section, func.sec_insn_off + i + imm + 1
                    else:
                        raise RelocationError(f"{where}: callback address without relocation")
                    callee = self._func_at(sec, target, where)
                    if id(callee) not in placed:
                        cbase = len(out) // asm.INSN_SIZE
                        out.extend(callee.insns)
                        placed[id(callee)] = cbase
                        order.append((callee, cbase))
                        visit(callee, cbase, depth + 1)
                    dest = placed[id(callee)] + target - callee.sec_insn_off
                    asm.patch(out, base + i, imm=dest - (base + i) - 1)

        visit(prog, 0, 0)
        return out, order

    def _load_program(self, prog: ProgramSpec) -> None:
        if not prog.prog_type:
            raise ObjectError(f"program {prog.name!r}: section {prog.section!r} is not a known "
                              "SEC() name; set prog_type before load")
        for func in [prog, *self.spec.subprograms.values()]:
            for r in func.relocations:
                if r.insn_index + 2 > func.insn_cnt and r.kind not in ("call", "kfunc"):
                    raise RelocationError(f"program {prog.name!r}: {func.name} has "
                                          f"{func.insn_cnt} instructions but a relocation "
                                          f"at insn {r.insn_index} (were its insns edited?)")
        insns, order = self.link(prog)
        for func, base in order:
            for r in func.relocations:
                self._apply_reloc(prog, insns, base + r.insn_index, r)
        poisoned = self._apply_core(prog, insns, order)
        func_info, line_info, lines = self._ext_info(order)
        attach = self._attach_target(prog)
        try:
            self.obj.programs[prog.name] = self._prog_load(prog, insns, func_info, line_info,
                                                           lines, attach)
        except VerifierError as e:
            raise _explain_poison(e, poisoned) from None

    def _apply_reloc(self, prog: ProgramSpec, insns: bytearray, idx: int, r: Reloc) -> None:
        where = f"program {prog.name!r} insn {idx}"
        if r.kind in ("call", "func_addr"):
            return
        if r.kind in ("map", "data", "kconfig"):
            key = KCONFIG_SEC if r.kind == "kconfig" else r.target
            m = self.obj.maps.get(key)
            if m is None:
                raise RelocationError(f"{where}: map {key!r} was not created (autocreate off?)")
            if r.kind == "map":
                asm.patch(insns, idx, src=asm.BPF_PSEUDO_MAP_FD, imm=m.fd)
                asm.patch(insns, idx + 1, imm=0)
            else:
                asm.patch(insns, idx, src=asm.BPF_PSEUDO_MAP_VALUE, imm=m.fd)
                asm.patch(insns, idx + 1, imm=r.offset)
            return
        ext = self.spec.externs[r.target]
        from .btf.types import Kind

        kbtf = self.kernel_btf()
        if r.kind == "ksym" and ext.kind == "ksym" and self._typeless(ext):
            addr = _kallsyms().get(ext.name)
            if not addr and not ext.weak:
                raise RelocationError(f"{where}: kernel symbol {ext.name!r} not found in "
                                      "/proc/kallsyms (or its address is hidden)")
            addr = addr or 0
            asm.patch(insns, idx, src=0, imm=_s32(addr & 0xFFFFFFFF))
            asm.patch(insns, idx + 1, imm=_s32(addr >> 32))
            return
        if r.kind == "ksym":
            ids = kbtf.find(ext.name, Kind.FUNC if ext.kind == "kfunc" else Kind.VAR)
            if not ids:
                if ext.weak:
                    asm.patch(insns, idx, src=0, imm=0)
                    asm.patch(insns, idx + 1, imm=0)
                    return
                raise RelocationError(f"{where}: kernel symbol {ext.name!r} not found in "
                                      "vmlinux BTF")
            asm.patch(insns, idx, src=asm.BPF_PSEUDO_BTF_ID, imm=ids[0])
            asm.patch(insns, idx + 1, imm=0)
            return
        if r.kind == "kfunc":
            ids = kbtf.find(ext.name, Kind.FUNC)
            if not ids:
                if ext.weak:
                    asm.patch(insns, idx, src=asm.BPF_PSEUDO_KFUNC_CALL, imm=0, off=0)
                    return
                raise RelocationError(f"{where}: kernel function {ext.name!r} not found in "
                                      "vmlinux BTF")
            asm.patch(insns, idx, src=asm.BPF_PSEUDO_KFUNC_CALL, imm=ids[0], off=0)
            return
        raise RelocationError(f"{where}: unknown relocation kind {r.kind!r}")

    def _typeless(self, ext: Extern) -> bool:
        """``extern const void sym __ksym``: an address from kallsyms, no BTF type."""
        assert self.spec.btf is not None
        return self.spec.btf.resolve(ext.type_id) == 0

    def core_relos(self, order: list[tuple[_Func, int]]) -> list[tuple[int, Any]]:
        """(final insn index, CoreRelo) for every CO-RE relocation of the linked program."""
        ext = self.spec.btf_ext
        out: list[tuple[int, Any]] = []
        if ext is None:
            return out
        for func, base in order:
            for relo in ext.core_relos.get(func.section, ()):
                sec_idx = relo.insn_off // asm.INSN_SIZE
                if func.sec_insn_off <= sec_idx < func.sec_insn_off + func.insn_cnt:
                    out.append((base + sec_idx - func.sec_insn_off, relo))
        return out

    def _apply_core(self, prog: ProgramSpec, insns: bytearray,
                    order: list[tuple[_Func, int]]) -> dict[int, str]:
        """Apply CO-RE relocations; return the poisoned instructions with the reason."""
        relos = self.core_relos(order)
        poisoned: dict[int, str] = {}
        if not relos:
            return poisoned
        if self._relocator is None:
            assert self.spec.btf is not None
            self._relocator = self._core_relocator(self.spec.btf)
        for idx, relo in relos:
            try:
                res = self._relocator.resolve(relo)
                self._relocator.apply(insns, idx, relo, res)
            except RelocationError as e:
                raise RelocationError(f"program {prog.name!r} insn {idx}: {e}") from None
            if res.poison:
                poisoned[idx] = res.explanation
        return poisoned

    def _core_relocator(self, local: Any) -> Any:
        """The running kernel's results come through the on-disk result cache."""
        target = self._target
        if target is None or (isinstance(target, str)
                              and os.path.realpath(target) == "/sys/kernel/btf/vmlinux"):
            from .btf.relo import CachedRelocator

            return CachedRelocator(local, self.target_btf)
        from .btf.core import CoreRelocator

        return CoreRelocator(local, self.target_btf())

    def _string_offsets(self) -> dict[str, int]:
        """text -> offset in the object's .BTF strings (for a BTFExt built by hand)."""
        if self._strings is None:
            assert self.spec.btf is not None
            raw = self.spec.btf.to_bytes()
            hdr_len, _to, _tl, str_off, str_len = struct.unpack_from("<IIIII", raw, 4)
            table = raw[hdr_len + str_off:hdr_len + str_off + str_len]
            offsets: dict[str, int] = {}
            pos = 0
            for s in table.split(b"\0"):
                offsets.setdefault(s.decode("utf-8", "replace"), pos)
                pos += len(s) + 1
            self._strings = offsets
        return self._strings

    def _rows_from_records(self, records: Sequence[Any]) -> list[tuple[int, int, int, int]]:
        """Raw line_info rows for records of a BTFExt built by hand (no raw words)."""
        strings = self._string_offsets()
        return [(ln.insn_off, strings.get(ln.file_name, 0), strings.get(ln.line_text, 0),
                 (ln.line << 10) | (ln.col & 0x3FF)) for ln in records]

    def _ext_info(self, order: list[tuple[_Func, int]]) -> tuple[bytes, bytes, _SourceLines]:
        """func_info / line_info records for the linked program (insn offsets in insns).

        Records are flattened into one list of u32 and packed once; the strings keep
        the offsets they have in the object's .BTF, which is what the kernel loads.
        """
        ext = self.spec.btf_ext
        if ext is None or self.obj.btf_fd is None:
            return b"", b"", _SourceLines(order, None)
        rows_by_sec = ext.line_rows
        fi: list[int] = []
        li: list[int] = []
        for func, base in order:
            lo = func.sec_insn_off * asm.INSN_SIZE
            hi = lo + func.insn_cnt * asm.INSN_SIZE
            shift = base - func.sec_insn_off
            for rec in ext.func_info.get(func.section, ()):
                if lo <= rec.insn_off < hi:
                    fi += (rec.insn_off >> 3) + shift, rec.type_id
            rows = (rows_by_sec.get(func.section, ()) if rows_by_sec is not None
                    else self._rows_from_records(ext.line_info.get(func.section, ())))
            if rows and not (lo <= min(map(_col0, rows)) and max(map(_col0, rows)) < hi):
                rows = [r for r in rows if lo <= r[0] < hi]
            # new insn indexes computed in one pass; the other columns pass through
            offs = [(off >> 3) + shift for off in map(_col0, rows)]
            li.extend(chain.from_iterable(zip(offs, map(_col1, rows), map(_col2, rows),
                                              map(_col3, rows), strict=True)))
        return (struct.pack(f"={len(fi)}I", *fi), struct.pack(f"={len(li)}I", *li),
                _SourceLines(order, ext))

    def _attach_target(self, prog: ProgramSpec) -> dict[str, Any]:
        """attach_btf_id (and module BTF fd) for BTF-targeted programs."""
        sd = prog.section_def
        if prog.attach_btf_id is not None:
            return {"attach_btf_id": prog.attach_btf_id}
        if sd is None or not sd.attach_btf:
            return {}
        name = prog.attach_to
        if sd.attach_kind == "freplace":
            if prog.attach_prog_fd is None:
                raise ObjectError(f"program {prog.name!r}: freplace needs attach_prog_fd "
                                  "and attach_btf_id of the target program")
            return {}
        if not name:
            raise ObjectError(f"program {prog.name!r}: SEC({prog.section!r}) names no "
                              "attach target")
        from .btf.types import Kind

        prefix = sd.btf_target_prefix or ""
        kbtf = self.kernel_btf()
        if sd.attach_kind == "tp_btf":
            ids = kbtf.find(prefix + name, Kind.TYPEDEF)
        else:
            ids = kbtf.find(prefix + name, Kind.FUNC)
        if not ids and sd.attach_kind in ("fentry", "fexit", "fmod_ret"):
            from .btf.kernel import find_function

            mbtf, tid = find_function(name)
            if mbtf is not kbtf:
                raise ObjectError(f"program {prog.name!r}: attach target {name!r} is in a "
                                  "kernel module; module targets are not supported yet")
            ids = [tid]
        if not ids:
            from .errors import AttachError

            raise AttachError(f"program {prog.name!r}: {prefix}{name} not found in kernel BTF")
        return {"attach_btf_id": ids[0]}

    def _prog_load(self, prog: ProgramSpec, insns: bytearray, func_info: bytes,
                   line_info: bytes, lines: Sequence[tuple[int, str, str, int, int]],
                   attach: dict[str, Any]) -> Any:
        from .programs import load_program

        with_btf = bool(func_info) and self.obj.btf_fd is not None
        p = load_program(
            _prog_kernel_name(prog.name), prog.prog_type, bytes(insns), prog.license,
            expected_attach_type=prog.expected_attach_type,
            attach_prog_fd=prog.attach_prog_fd or 0, kern_version=prog.kern_version,
            prog_flags=prog.prog_flags, log_level=prog.log_level,
            prog_btf_fd=self.obj.btf_fd if with_btf else None,
            func_info=func_info if with_btf else b"", func_info_rec_size=8 if with_btf else 0,
            line_info=line_info if with_btf else b"",
            line_info_rec_size=16 if with_btf and line_info else 0,
            line_info_records=lines, **attach)
        p.name = prog.name
        p.section = prog.section
        self._bind_rodata(p)
        sd = prog.section_def
        if sd is not None and sd.attach_target != prog.attach_to:
            # attach() follows the (possibly edited) ProgramSpec.attach_to
            sd = sd._replace(attach_target=prog.attach_to)
        p.section_def = sd
        p.spec = prog
        return p


    def _bind_rodata(self, prog: Any) -> None:
        """Tie .rodata to every program (BPF_PROG_BIND_MAP), as libbpf does.

        The kernel then lists the map as used by the program even when its code
        never reads it, which keeps the metadata alive and visible to bpftool.
        Like libbpf, failure is not an error: the program works without it.
        """
        from .sys import bpf as sysbpf

        rodata = self.obj.maps.get(".rodata")
        if rodata is None:
            return
        try:
            sysbpf.prog_bind_map(prog.fd, rodata.fd)
        except OSError:
            pass


def _explain_poison(err: VerifierError, poisoned: dict[int, str]) -> VerifierError:
    """Name the CO-RE relocation when the verifier reached a poisoned instruction.

    The kernel only says "invalid func unknown#195896080" (the poison helper id);
    the user needs to know which field or type this kernel lacks.
    """
    from .btf.relo import POISON_HELPER

    if not poisoned or str(POISON_HELPER) not in err.log:
        return err
    why = poisoned.get(err.insn) if err.insn is not None else None
    if why is None:
        why = next(iter(poisoned.values())) if len(poisoned) == 1 else "; ".join(
            f"insn {i}: {w}" for i, w in sorted(poisoned.items()))
    return VerifierError(err.program, f"reached a CO-RE relocation this kernel cannot "
                         f"satisfy ({why})", err.log, err.insn, err.source_line)


_NAME_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.")


def _kernel_safe(name: str) -> str:
    """``name`` with every character the kernel refuses in object names turned into '_'."""
    ok = _NAME_CHARS
    return "".join(c if c in ok else "_" for c in name)


def _prog_kernel_name(name: str) -> str:
    return _kernel_safe(name)[:BPF_OBJ_NAME_LEN - 1]


def _s32(v: int) -> int:
    return v - (1 << 32) if v & 0x80000000 else v


_kallsyms_cache: dict[str, int] | None = None


def _kallsyms() -> dict[str, int]:
    """Kernel symbol addresses (first definition of each name), read once per process."""
    global _kallsyms_cache
    if _kallsyms_cache is None:
        table: dict[str, int] = {}
        try:
            with builtins.open("/proc/kallsyms") as f:
                for line in f:
                    parts = line.split()
                    if len(parts) >= 3:
                        table.setdefault(parts[2], int(parts[0], 16))
        except OSError as e:
            raise RelocationError(f"cannot read /proc/kallsyms: {e.strerror}") from None
        _kallsyms_cache = table
    return _kallsyms_cache


def _unlink_quiet(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _ringbuf_size(size: int) -> int:
    """libbpf's adjust_ringbuf_sz: a power-of-two multiple of the page size."""
    page = os.sysconf("SC_PAGE_SIZE")
    if not size:
        return page
    if size % page == 0 and (size // page) & (size // page - 1) == 0:
        return size
    mul = 1
    while page * mul < size:
        mul <<= 1
    return page * mul


def _linux_kernel_version() -> int:
    rel = os.uname().release
    runs = "".join(c if c.isascii() and c.isdigit() else " " for c in rel.split("-", 1)[0])
    nums = [int(x) for x in runs.split()[:3]]
    while len(nums) < 3:
        nums.append(0)
    return (nums[0] << 16) | (nums[1] << 8) | min(nums[2], 255)


def _kernel_config() -> dict[str, str] | None:
    """CONFIG_* values of the running kernel from /proc/config.gz or /boot/config-<release>."""
    import gzip

    text = None
    try:
        with gzip.open("/proc/config.gz", "rt") as f:
            text = f.read()
    except OSError:
        try:
            with builtins.open(f"/boot/config-{os.uname().release}") as f:
                text = f.read()
        except OSError:
            return None
    out: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("CONFIG_") and "=" in line:
            k, v = line.split("=", 1)
            out[k] = v.strip()
    return out


def _kconfig_bytes(btf: Any, e: Extern, value: Any) -> bytes:
    """Encode one kconfig value the way libbpf's set_kcfg_value_* functions do."""
    from .btf.types import Kind

    t = btf[btf.resolve(e.type_id)]
    where = f".kconfig extern {e.name!r}"
    if isinstance(value, int):
        return value.to_bytes(e.size, "little", signed=value < 0)
    v = str(value)
    if t.kind == Kind.INT and t.is_bool:
        if v not in ("y", "n"):
            raise ObjectError(f"{where} is bool but the kernel config says {v!r}")
        return (1 if v == "y" else 0).to_bytes(e.size, "little")
    if t.kind == Kind.ENUM and t.name == "libbpf_tristate":
        tri = {"y": 1, "n": 0, "m": 2}.get(v)
        if tri is None:
            raise ObjectError(f"{where} is a tristate but the kernel config says {v!r}")
        return tri.to_bytes(e.size, "little")
    if t.kind == Kind.INT and t.size == 1 and t.is_char and v in ("y", "n", "m"):
        return v.encode()
    if t.kind == Kind.ARRAY:
        if not (v.startswith('"') and v.endswith('"')):
            raise ObjectError(f"{where} is a char array but the value {v!r} is not a string")
        raw = v[1:-1].encode()[:e.size - 1]
        return raw + bytes(e.size - len(raw))
    if t.kind in (Kind.INT, Kind.ENUM, Kind.ENUM64):
        try:
            num = int(v, 0)
        except ValueError:
            raise ObjectError(f"{where}: kernel config value {v!r} is not a number") from None
        signed = bool(getattr(t, "signed", False))
        try:
            return num.to_bytes(e.size, "little", signed=signed)
        except OverflowError:
            raise ObjectError(f"{where}: value {num} does not fit in {e.size} bytes") from None
    raise ObjectError(f"{where}: unsupported extern type {btf.c_type_name(e.type_id)!r}")
