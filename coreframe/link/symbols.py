"""Resolving uprobe targets: library names to paths, symbols to file offsets.

The uprobe PMU wants a path and an offset *in the file*, while ELF symbols hold
virtual addresses; the PT_LOAD segment that contains the address converts one
into the other. pyelftools is imported lazily because it is slow to import.
"""

from __future__ import annotations

import os
import platform
import re
import struct

from ..errors import AttachError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import TypeVar

    from elftools.elf.elffile import ELFFile
    from elftools.elf.sections import SymbolTableSection

    T = TypeVar("T")

_LD_CACHE = "/etc/ld.so.cache"
_LD_CACHE_MAGIC = b"glibc-ld.so.cache1.1"
_LIB_DIRS = (
    "/lib64", "/usr/lib64", "/lib", "/usr/lib",
    "/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu",
    "/lib/aarch64-linux-gnu", "/usr/lib/aarch64-linux-gnu",
    "/usr/local/lib",
)
# ld.so.cache entry flags (glibc's FLAG_* in ldconfig.h): low byte the library kind,
# high byte the architecture.
_FLAG_ELF_LIBC6 = 0x0003
_ARCH_FLAGS = {"x86_64": 0x0300, "aarch64": 0x0A00}


def _ld_cache_entries(path: str = _LD_CACHE) -> list[tuple[str, str]]:
    """(soname, path) pairs of the new-format ld.so.cache usable by this architecture."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return []
    start = data.find(_LD_CACHE_MAGIC)
    if start < 0 or len(data) < start + 48:
        return []
    nlibs, _strlen = struct.unpack_from("<II", data, start + 20)
    want = _ARCH_FLAGS.get(platform.machine())
    out: list[tuple[str, str]] = []
    entry = struct.Struct("<iIIIQ")
    base = start + 48
    for i in range(nlibs):
        off = base + i * entry.size
        if off + entry.size > len(data):
            break
        flags, key, value, _osv, _hwcap = entry.unpack_from(data, off)
        if flags & 0xFF != _FLAG_ELF_LIBC6:
            continue
        if want is not None and flags & 0xFF00 != want:
            continue
        out.append((_cstr(data, start + key), _cstr(data, start + value)))
    return out


def _cstr(data: bytes, off: int) -> str:
    end = data.find(b"\0", off)
    return data[off:end if end >= 0 else len(data)].decode(errors="replace")


def _from_proc_maps(name: str, pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/maps") as f:
            for line in f:
                parts = line.split(None, 5)
                if len(parts) < 6:
                    continue
                p = parts[5].strip()
                base = os.path.basename(p)
                if base == name or base.startswith(name + ".") or base.startswith(name + "-"):
                    return p
    except OSError:
        return None
    return None


def resolve_path(name: str, pid: int = -1) -> str:
    """Find the file a uprobe target names.

    A name with a slash is a path. Shared libraries (``libc.so.6``, ``libc``) are
    looked up in the target process's mappings, then ld.so.cache, then standard
    library directories; other bare names are searched in PATH like a shell would.
    """
    if "/" in name:
        if not os.path.exists(name):
            raise AttachError(f"uprobe target '{name}' does not exist")
        return os.path.realpath(name)
    if pid > 0:
        found = _from_proc_maps(name, pid)
        if found:
            return found
    if ".so" in name or name.startswith("lib"):
        for soname, path in _ld_cache_entries():
            if soname == name or soname.startswith(name + ".so"):
                return path
        for d in _LIB_DIRS:
            cand = os.path.join(d, name)
            if os.path.exists(cand):
                return cand
    else:
        for d in os.environ.get("PATH", "/usr/bin:/bin").split(":"):
            cand = os.path.join(d, name)
            if d and os.path.isfile(cand) and os.access(cand, os.X_OK):
                return os.path.realpath(cand)
    raise AttachError(f"cannot find '{name}' (not in ld.so.cache, library dirs or PATH)")


def _search_symbol_tables(path: str,
                          search: Callable[[ELFFile, list[SymbolTableSection]], T]) -> T:
    """``search(elf, tables)`` over the uprobe target ``path``: its ``.symtab`` and
    ``.dynsym`` (those present, in that order), with a file that cannot be opened or
    parsed said as one AttachError."""
    from elftools.common.exceptions import ELFError
    from elftools.elf.elffile import ELFFile
    from elftools.elf.sections import SymbolTableSection

    try:
        f = open(path, "rb")  # noqa: SIM115 - closed below, ELFFile reads lazily
    except OSError as e:
        raise AttachError(f"cannot open uprobe target {path}: {e.strerror}") from None
    with f:
        try:
            elf = ELFFile(f)
            tables = [sec for sec in map(elf.get_section_by_name, (".symtab", ".dynsym"))
                      if isinstance(sec, SymbolTableSection)]
            return search(elf, tables)
        except ELFError as e:
            raise AttachError(f"{path} is not a valid ELF file: {e}") from None


def symbol_offset(path: str, symbol: str) -> int:
    """File offset of ``symbol`` in ELF ``path`` (.symtab first, then .dynsym)."""

    def search(elf: ELFFile, tables: list[SymbolTableSection]) -> int:
        for sec in tables:
            vaddr = _find_symbol(sec, symbol)
            if vaddr is not None:
                return _vaddr_to_offset(elf, vaddr, path, symbol)
        raise AttachError(f"symbol '{symbol}' not found in {path}")

    return _search_symbol_tables(path, search)


def _find_symbol(sec: object, symbol: str) -> int | None:
    """Defined function/object address of ``symbol``; globals win over locals."""
    best: tuple[int, int] | None = None
    for sym in sec.iter_symbols():  # type: ignore[attr-defined]
        name = sym.name
        if name != symbol and name.split("@", 1)[0] != symbol:
            continue
        if sym["st_shndx"] == "SHN_UNDEF" or sym["st_value"] == 0:
            continue
        if sym["st_info"]["type"] not in ("STT_FUNC", "STT_GNU_IFUNC", "STT_OBJECT", "STT_NOTYPE"):
            continue
        rank = 0 if sym["st_info"]["bind"] in ("STB_GLOBAL", "STB_WEAK") else 1
        if best is None or rank < best[0]:
            best = (rank, sym["st_value"])
    return None if best is None else best[1]


def _vaddr_to_offset(elf: object, vaddr: int, path: str, symbol: str) -> int:
    for seg in elf.iter_segments():  # type: ignore[attr-defined]
        if seg["p_type"] != "PT_LOAD":
            continue
        lo = seg["p_vaddr"]
        if lo <= vaddr < lo + seg["p_memsz"]:
            return vaddr - lo + seg["p_offset"]
    raise AttachError(f"symbol '{symbol}' in {path} lies outside every PT_LOAD segment")


_SEC_RE = re.compile(r"^(?P<path>[^:]+):(?P<sym>[^+]+?)(?:\+(?P<off>0x[0-9a-fA-F]+|\d+))?$")


def parse_target(target: str) -> tuple[str, str | None, int]:
    """Split a SEC() uprobe target ``PATH:SYMBOL+OFF`` into (path, symbol, offset).

    A numeric SYMBOL (``PATH:0x1234``) is a raw file offset, like libbpf accepts.
    """
    m = _SEC_RE.match(target)
    if not m:
        raise AttachError(f"bad uprobe target '{target}': expected PATH:SYMBOL[+OFFSET]")
    sym = m.group("sym")
    off = int(m.group("off"), 0) if m.group("off") else 0
    if re.fullmatch(r"0x[0-9a-fA-F]+|\d+", sym):
        return m.group("path"), None, int(sym, 0) + off
    return m.group("path"), sym, off


def resolve(path: str, symbol: str | None, offset: int = 0, pid: int = -1) -> tuple[str, int]:
    """(absolute path, file offset) for a uprobe on ``path``'s ``symbol`` + ``offset``."""
    real = resolve_path(path, pid)
    if symbol is None:
        return real, offset
    return real, symbol_offset(real, symbol) + offset


def function_offsets(path: str, pattern: str) -> list[tuple[str, int]]:
    """(name, file offset) of every function symbol of ELF ``path`` whose name matches
    the glob ``pattern`` (``*``, ``?``), for uprobe.multi.

    As libbpf does: defined STT_FUNC symbols of ``.symtab``, or of ``.dynsym`` when
    ``.symtab`` has none that match (so a symbol in both is found once). Aliases at
    one address give one target, under the first name: two uprobes on one
    instruction would run the program twice per call.
    """
    from .base import glob_matcher

    match = glob_matcher(pattern)

    def search(elf: ELFFile, tables: list[SymbolTableSection]) -> list[tuple[str, int]]:
        found: dict[int, str] = {}
        for sec in tables:
            for name, vaddr in _function_symbols(elf, sec):
                if match(name):
                    found.setdefault(vaddr, name)
            if found:
                break
        return [(name, _vaddr_to_offset(elf, vaddr, path, name)) for vaddr, name in found.items()]

    return _search_symbol_tables(path, search)


_STT_FUNC = 2
_SHN_UNDEF = 0


def _function_symbols(elf: object, sec: object) -> list[tuple[str, int]]:
    """(name, address) of the defined STT_FUNC symbols of a symbol table section: one
    ``struct.iter_unpack`` over the raw table for 64-bit little-endian files (a libc
    has thousands of symbols, pyelftools builds an object per symbol), pyelftools
    otherwise."""
    if elf.elfclass == 64 and elf.little_endian:  # type: ignore[attr-defined]
        strtab = elf.get_section(sec["sh_link"]).data()  # type: ignore[attr-defined]
        out = []
        for st_name, info, _other, shndx, value, _size in struct.iter_unpack(
                "<IBBHQQ", sec.data()):  # type: ignore[attr-defined]
            if info & 0xF != _STT_FUNC or shndx == _SHN_UNDEF or not value:
                continue
            end = strtab.find(b"\0", st_name)
            out.append((strtab[st_name:end].decode(errors="replace"), value))
        return out
    return [(sym.name, sym["st_value"]) for sym in sec.iter_symbols()  # type: ignore[attr-defined]
            if sym["st_info"]["type"] == "STT_FUNC" and sym["st_shndx"] != "SHN_UNDEF"
            and sym["st_value"]]
