"""Reading clang-built BPF ELF objects.

A relocatable BPF object is a handful of fixed-layout tables (section headers,
symbol table, ``.rel*`` sections), so they are decoded here with ``struct``.
pyelftools, which drags DWARF and construct in at import (more than a whole warm
tool start), is left to the uprobe code that reads host
binaries. Every malformed input becomes an :class:`~coreframe.errors.ObjectError`
naming the file.
"""

from __future__ import annotations

import os
import struct

from ..errors import ObjectError
from ..runtime.startup import Record
from ..sys.uapi_elf import EM_BPF, EM_X86_64, ET_REL, SHDR

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any


# Section header types and flags (elf.h names).
SHT_PROGBITS = 1
SHT_SYMTAB = 2
SHT_STRTAB = 3
SHT_NOBITS = 8
SHT_REL = 9
SHF_WRITE = 0x1
SHF_ALLOC = 0x2
SHF_EXECINSTR = 0x4

# Symbol binding / type / special section indexes.
STB_LOCAL = 0
STB_GLOBAL = 1
STB_WEAK = 2
STT_NOTYPE = 0
STT_OBJECT = 1
STT_FUNC = 2
STT_SECTION = 3
STV_DEFAULT = 0
STV_HIDDEN = 2
SHN_UNDEF = 0
SHN_ABS = 0xFFF1
SHN_COMMON = 0xFFF2

# BPF relocation types (LLVM's ELF/RelocationTypes/BPF.def).
R_BPF_NONE = 0
R_BPF_64_64 = 1
R_BPF_64_ABS64 = 2
R_BPF_64_ABS32 = 3
R_BPF_64_NODYLD32 = 4
R_BPF_64_32 = 10

_MACHINE_NAMES = {
    3: "x86 (i386)", EM_X86_64: "x86-64", 40: "ARM", 183: "AArch64", 243: "RISC-V",
    8: "MIPS", 20: "PowerPC", 21: "PowerPC64", 22: "s390", 2: "SPARC",
}

SHN_XINDEX = 0xFFFF
_SYM = struct.Struct("<IBBHQQ")
_REL = struct.Struct("<QQ")
_tuple_new = tuple.__new__  # records built in bulk skip their keyword-aware __new__


class Section(Record, fields="name index type flags size link info entsize data"):
    """One section header plus its contents (``b""`` for SHT_NOBITS)."""

    __slots__ = ()

    name: str
    index: int
    type: int
    flags: int
    size: int
    link: int
    info: int
    entsize: int
    data: bytes

    @property
    def executable(self) -> bool:
        return self.type == SHT_PROGBITS and bool(self.flags & SHF_EXECINSTR)


class Symbol(Record, fields="index name value size bind type visibility shndx"):
    """One Elf64_Sym, with its name resolved from the string table."""

    __slots__ = ()

    index: int
    name: str
    value: int
    size: int
    bind: int
    type: int
    visibility: int
    shndx: int


class Relocation(Record, fields="offset symbol type"):
    """One Elf64_Rel entry of a ``.rel<section>`` section."""

    __slots__ = ()

    offset: int
    symbol: int
    type: int


_TABLES = frozenset(("sections", "_by_name", "symbols", "relocations"))


class ElfFile:
    """A validated 64-bit little-endian EM_BPF ELF object.

    ``relocations`` maps a section index to its ``.rel`` entries, for allocated
    sections (code, data, ``.maps``) only.

    ``source`` is a path or the object's bytes; ``name`` is used in error
    messages (defaults to the path, or ``<bytes>``).
    """

    def __init__(self, source: str | os.PathLike[str] | bytes | bytearray | memoryview,
                 name: str | None = None) -> None:
        if isinstance(source, (bytes, bytearray, memoryview)):
            data = bytes(source)
            self.name = name or "<bytes>"
        else:
            self.name = name or os.fspath(source)
            try:
                with open(source, "rb") as f:
                    data = f.read()
            except OSError as e:
                raise ObjectError(f"{self.name}: cannot read: {e.strerror or e}") from e
        self.data = data
        self._check_ident()
        # Every table is bounds-checked where it is read (a clear ObjectError naming
        # the table); nothing converts stray struct.error/IndexError here, so a check
        # that is missing shows up as a fuzz failure instead of a vague message.
        self._parse()

    @classmethod
    def unparsed(cls, data: bytes, name: str) -> ElfFile:
        """An ElfFile over bytes that already parsed cleanly (a cached spec's):
        its tables are read only if something asks for them."""
        elf = cls.__new__(cls)
        elf.name = name
        elf.data = data
        return elf

    def __getattr__(self, attr: str) -> Any:
        # reached only for the tables of an unparsed() file that nobody read yet
        if attr in _TABLES and "data" in self.__dict__:
            self._parse()
            return self.__dict__[attr]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {attr!r}")

    def _check_ident(self) -> None:
        d = self.data
        if len(d) < 64 or d[:4] != b"\x7fELF":
            raise ObjectError(f"{self.name}: not an ELF file")
        if d[4] != 2:
            raise ObjectError(f"{self.name}: not a BPF object: 32-bit ELF")
        if d[5] == 2:
            raise ObjectError(f"{self.name}: big-endian BPF objects are not supported")
        if d[5] != 1:
            raise ObjectError(f"{self.name}: unknown ELF byte order {d[5]}")
        machine = struct.unpack_from("<H", d, 18)[0]
        if machine != EM_BPF:
            what = _MACHINE_NAMES.get(machine, f"e_machine {machine}")
            raise ObjectError(f"{self.name}: not a BPF object: machine is {what}")
        e_type = struct.unpack_from("<H", d, 16)[0]
        if e_type != ET_REL:
            raise ObjectError(f"{self.name}: not a relocatable BPF object (ELF type {e_type})")

    def _section_headers(self) -> tuple[list[tuple[int, ...]], bytes]:
        """Raw Elf64_Shdr tuples and the section name table, bounds-checked."""
        d = self.data
        e_shoff = struct.unpack_from("<Q", d, 40)[0]
        e_shentsize, e_shnum, e_shstrndx = struct.unpack_from("<HHH", d, 58)
        if e_shoff == 0:
            return [], b""
        if e_shentsize != SHDR.size:
            raise ObjectError(f"{self.name}: section header size is {e_shentsize}, "
                              f"expected {SHDR.size}")
        if e_shoff + SHDR.size > len(d):
            raise ObjectError(f"{self.name}: section header table lies past the end of file")
        first = SHDR.unpack_from(d, e_shoff)
        if e_shnum == 0:  # extended numbering: the count is section 0's sh_size
            e_shnum = first[5]
        if e_shstrndx == SHN_XINDEX:  # and the name table index its sh_link
            e_shstrndx = first[6]
        end = e_shoff + e_shnum * SHDR.size
        if end > len(d):
            raise ObjectError(f"{self.name}: section header table ({e_shnum} entries) "
                              "extends past end of file")
        headers = list(SHDR.iter_unpack(d[e_shoff:end]))
        if not 0 < e_shstrndx < e_shnum:
            raise ObjectError(f"{self.name}: section name table index {e_shstrndx} "
                              "is out of range")
        str_off, str_size = headers[e_shstrndx][4:6]
        if str_off + str_size > len(d):
            raise ObjectError(f"{self.name}: section name table extends past end of file")
        return headers, d[str_off:str_off + str_size]

    def _parse(self) -> None:
        headers, names = self._section_headers()
        self.sections: list[Section] = []
        self._by_name: dict[str, Section] = {}
        for idx, (sh_name, stype, flags, _addr, off, size, link, info, _align,
                  entsize) in enumerate(headers):
            name = _cstr(names, sh_name, self.name) if idx else ""
            if size >= 1 << 32:
                raise ObjectError(f"{self.name}: section {name!r} is {size} bytes (over 4 GiB)")
            if stype == SHT_NOBITS or idx == 0:
                data = b""
            else:
                if off + size > len(self.data):
                    raise ObjectError(f"{self.name}: section {name!r} extends past end of file")
                data = self.data[off:off + size]
            sec = Section(name, idx, stype, flags, size, link, info, entsize, data)
            self.sections.append(sec)
            if name and name not in self._by_name:
                self._by_name[name] = sec
        self.symbols: list[Symbol] = []
        symtabs = [s for s in self.sections if s.type == SHT_SYMTAB]
        if len(symtabs) > 1:
            raise ObjectError(f"{self.name}: more than one symbol table")
        if symtabs:
            self.symbols = self._read_symbols(symtabs[0])
        # Relocations of loaded sections only: the .rel.debug_* / .rel.BTF* ones are
        # for linkers and debuggers, and are most of the entries.
        self.relocations: dict[int, list[Relocation]] = {}
        for sec in self.sections:
            if sec.type == SHT_REL:
                if not 0 < sec.info < len(self.sections):
                    raise ObjectError(f"{self.name}: {sec.name} targets bad section {sec.info}")
                if self.sections[sec.info].flags & SHF_ALLOC:
                    self.relocations[sec.info] = self._read_rels(sec)

    def _read_symbols(self, symtab: Section) -> list[Symbol]:
        if not 0 < symtab.link < len(self.sections):
            raise ObjectError(f"{self.name}: symbol table has no string table")
        strtab = self.sections[symtab.link].data
        if len(symtab.data) % _SYM.size:
            raise ObjectError(f"{self.name}: symbol table size is not a multiple of {_SYM.size}")
        out = []
        for i, (st_name, info, other, shndx, value, size) in enumerate(
                _SYM.iter_unpack(symtab.data)):
            out.append(_tuple_new(Symbol, (i, _cstr(strtab, st_name, self.name), value, size,
                                           info >> 4, info & 0xF, other & 0x3, shndx)))
        return out

    def _read_rels(self, sec: Section) -> list[Relocation]:
        if len(sec.data) % _REL.size:
            raise ObjectError(f"{self.name}: {sec.name} size is not a multiple of {_REL.size}")
        out = []
        for offset, info in _REL.iter_unpack(sec.data):
            sym = info >> 32
            if sym >= len(self.symbols):
                raise ObjectError(f"{self.name}: {sec.name} refers to missing symbol #{sym}")
            out.append(_tuple_new(Relocation, (offset, sym, info & 0xFFFFFFFF)))
        return out

    def section(self, name: str) -> Section | None:
        """The first section called ``name``, or None."""
        return self._by_name.get(name)

    def symbols_in(self, section_index: int) -> Iterator[Symbol]:
        """Symbols defined in one section, in symbol-table order."""
        return (s for s in self.symbols if s.shndx == section_index)

    @property
    def license(self) -> str | None:
        """The ``license`` section as a string (NUL-terminated in the file)."""
        sec = self.section("license")
        if sec is None:
            return None
        return sec.data.split(b"\0", 1)[0].decode("utf-8", "replace")

    @property
    def kernel_version(self) -> int:
        """The ``version`` section (u32), 0 when absent; only old kprobe loaders needed it."""
        sec = self.section("version")
        if sec is None:
            return 0
        if len(sec.data) != 4:
            raise ObjectError(f"{self.name}: 'version' section must be 4 bytes, is {len(sec.data)}")
        return int.from_bytes(sec.data, "little")

    def __repr__(self) -> str:
        return f"ElfFile({self.name!r}, {len(self.sections)} sections)"


def _cstr(table: bytes, offset: int, fname: str) -> str:
    if offset >= len(table) and offset:
        raise ObjectError(f"{fname}: string offset {offset} outside string table")
    end = table.find(b"\0", offset)
    if end < 0:
        end = len(table)
    return table[offset:end].decode("utf-8", "replace")
