"""Addresses to function names: the kernel's from /proc/kallsyms, user space's from ELF.

Used by tools that collect stack traces (``profile``). Nothing here loads BPF.

- :class:`KernelSymbols`: ``/proc/kallsyms`` sorted once, looked up by bisection. The file
  has no sizes, so an address maps to the closest symbol at or below it (as perf and bcc
  do); addresses below the first text symbol are ``[unknown]``.
- :class:`ElfSymbols`: one binary's function symbols (``.symtab`` and ``.dynsym``, plus
  those of its separate debug file under ``/usr/lib/debug/.build-id`` when there is one),
  with the ``PT_LOAD`` program headers that turn a file offset into a link-time virtual
  address. Read with pyelftools, kept per build-id in memory and on disk (the user cache
  directory), so libc is read once, not once per process or per run.
- :class:`ProcessMaps`: a process's executable mappings from ``/proc/PID/maps``, read when
  the process is first seen (:meth:`Symbolizer.remember`): a process that exits before its
  stacks are symbolized keeps its mappings. A user address becomes ``(binary, file
  offset)``, then a link-time address through the binary's program headers (this handles
  PIE executables and shared libraries, which are mapped anywhere, and non-PIE ones).
- :class:`Symbolizer`: the three together, with ``[unknown]`` wherever no symbol covers an
  address and the mapping's name (``[vdso]``, ``[anon]``) where there is no file.

A return address is the instruction after a call; it is looked up one byte earlier so a
call that is the last instruction of a function (a ``noreturn`` call) is attributed to
the caller, not to whatever function follows it.
"""

from __future__ import annotations

import bisect
import os

from .sys.host import KALLSYMS

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from typing import Any

UNKNOWN = "[unknown]"
_CACHE_VERSION = 1
_DEBUG_ROOT = "/usr/lib/debug/.build-id"
# ELF symbol types that name code (STT_FUNC, STT_GNU_IFUNC, as pyelftools spells them)
_CODE_TYPES = ("STT_FUNC", "STT_LOOS", "STT_GNU_IFUNC")
# kallsyms types of text symbols: code in the kernel and in modules, weak code
_KALLSYMS_TEXT = frozenset("tTwW")
# Files kept open between remember() and load_pending(), at most (fds are a process limit)
MAX_PENDING_FDS = 256


class KernelSymbols:
    """``/proc/kallsyms`` as sorted addresses and names."""

    def __init__(self, path: str = KALLSYMS) -> None:
        pairs = []
        with open(path, "rb") as f:
            for line in f:
                parts = line.split()
                if len(parts) < 3 or parts[1].decode()[0] not in _KALLSYMS_TEXT:
                    continue
                addr = int(parts[0], 16)
                if addr:
                    pairs.append((addr, parts[2].decode("utf-8", "replace")))
        if not pairs:
            from .errors import PermissionDenied

            raise PermissionDenied(f"reading kernel symbol addresses from {path} "
                                   "(all zero: kernel.kptr_restrict hides them)",
                                   "CAP_SYSLOG")
        pairs.sort()
        self.addrs = [a for a, _ in pairs]
        self.names = [n for _, n in pairs]

    def lookup(self, addr: int) -> str:
        i = bisect.bisect_right(self.addrs, addr) - 1
        return self.names[i] if i >= 0 else UNKNOWN


class ElfSymbols:
    """One ELF file's code symbols and loadable segments."""

    def __init__(self, build_id: str, starts: list[int], ends: list[int],
                 names: list[str], segments: list[tuple[int, int, int]]) -> None:
        self.build_id = build_id
        self.starts = starts
        self.ends = ends
        self.names = names
        # (p_offset, p_vaddr, p_filesz) of each executable PT_LOAD
        self.segments = segments

    def vaddr(self, file_offset: int) -> int | None:
        """The link-time virtual address of a byte of the file, or None if not loaded."""
        for off, vaddr, size in self.segments:
            if off <= file_offset < off + size:
                return file_offset - off + vaddr
        return None

    def lookup(self, vaddr: int) -> str | None:
        i = bisect.bisect_right(self.starts, vaddr) - 1
        if i >= 0 and vaddr < self.ends[i]:
            return self.names[i]
        return None

    @classmethod
    def read(cls, path: str) -> ElfSymbols:
        """Read ``path`` (and its separate debug file), cached by build-id."""
        from elftools.common.exceptions import ELFError
        from elftools.elf.elffile import ELFFile

        try:
            with open(path, "rb") as f:
                elf = ELFFile(f)
                build_id, segments = _build_id_and_segments(elf)
                if build_id:
                    cached = _cache_get(build_id)
                    if cached is not None:
                        return cls(build_id, *cached)
                syms = _code_symbols(elf)
            debug = _debug_file(build_id)
            if debug:
                try:
                    with open(debug, "rb") as g:
                        syms += _code_symbols(ELFFile(g))
                except (OSError, ELFError, ValueError):
                    pass
        except ELFError as exc:
            raise ValueError(f"{path}: not an ELF file ({exc})") from None
        starts, ends, names = _sorted_symbols(syms)
        if build_id:
            _cache_put(build_id, (starts, ends, names, segments))
        return cls(build_id, starts, ends, names, segments)


def _build_id_and_segments(elf: Any) -> tuple[str, list[tuple[int, int, int]]]:
    build_id = ""
    segments = []
    for seg in elf.iter_segments():
        if seg["p_type"] == "PT_LOAD" and seg["p_flags"] & 1:  # PF_X
            segments.append((seg["p_offset"], seg["p_vaddr"], seg["p_filesz"]))
        elif seg["p_type"] == "PT_NOTE" and not build_id:
            for note in seg.iter_notes():
                if note["n_type"] == "NT_GNU_BUILD_ID":
                    build_id = note["n_desc"]
    return build_id, segments


def _code_symbols(elf: Any) -> list[tuple[int, int, str]]:
    syms: list[tuple[int, int, str]] = []
    fast = elf.elfclass == 64 and elf.little_endian
    for name in (".symtab", ".dynsym"):
        sec = elf.get_section_by_name(name)
        if sec is None or not hasattr(sec, "iter_symbols"):
            continue
        if fast:
            syms += _code_symbols_64le(elf, sec)
            continue
        for sym in sec.iter_symbols():
            value = sym["st_value"]
            if (not value or sym["st_info"]["type"] not in _CODE_TYPES or not sym.name
                    or sym["st_shndx"] == "SHN_UNDEF"):
                continue
            syms.append((value, sym["st_size"], sym.name))
    return syms


def _code_symbols_64le(elf: Any, sec: Any) -> list[tuple[int, int, str]]:
    """The table read in one pass of struct.iter_unpack (Elf64_Sym: name, info, other,
    shndx, value, size): pyelftools builds a dict per symbol, ~30x slower, and a
    libc or a browser has tens of thousands of them."""
    import struct

    data = sec.data()
    strtab = elf.get_section(sec["sh_link"]).data()
    out = []
    n = len(data) // 24 * 24
    for st_name, info, _other, shndx, value, size in struct.iter_unpack(
            "<IBBHQQ", data[:n]):
        # STT_FUNC (2) or STT_GNU_IFUNC (10), defined (SHN_UNDEF is 0), with a name
        if not value or (info & 0xF) not in (2, 10) or not shndx or not st_name:
            continue
        end = strtab.find(b"\0", st_name)
        out.append((value, size, strtab[st_name:end].decode("utf-8", "replace")))
    return out


def _sorted_symbols(syms: Iterable[tuple[int, int, str]]
                    ) -> tuple[list[int], list[int], list[str]]:
    """One symbol per start address, sorted, with where each ends.

    Aliases share an address (``__libc_malloc``/``malloc``): the largest wins, then the
    name with the fewest leading underscores.
    """
    uniq = sorted(set(syms),
                  key=lambda s: (s[0], -s[1], len(s[2]) - len(s[2].lstrip("_")), s[2]))
    starts: list[int] = []
    sizes: list[int] = []
    names: list[str] = []
    for start, size, name in uniq:
        if starts and starts[-1] == start:
            continue
        starts.append(start)
        sizes.append(size)
        names.append(name)
    ends = []
    for i, start in enumerate(starts):
        if sizes[i]:
            ends.append(start + sizes[i])
        else:
            # no size (hand-written assembly): up to the next symbol
            ends.append(starts[i + 1] if i + 1 < len(starts) else start + 1)
    return starts, ends, names


def _debug_file(build_id: str) -> str | None:
    if len(build_id) < 3:
        return None
    path = os.path.join(_DEBUG_ROOT, build_id[:2], build_id[2:] + ".debug")
    return path if os.path.isfile(path) else None


def _cache_path(build_id: str) -> str | None:
    from .runtime.cache import cache_dir

    d = cache_dir()
    return os.path.join(d, f"elfsyms-{build_id}.v{_CACHE_VERSION}") if d else None


def _cache_get(build_id: str) -> tuple[Any, ...] | None:
    from .runtime.cache import read_marshal

    path = _cache_path(build_id)
    value = read_marshal(path) if path else None
    if not isinstance(value, tuple) or len(value) != 4:
        return None
    starts, ends, names, segments = value
    return list(starts), list(ends), list(names), [tuple(s) for s in segments]


def _cache_put(build_id: str, value: tuple[Any, ...]) -> None:
    from .runtime.cache import prune, write_marshal

    path = _cache_path(build_id)
    if path:
        starts, ends, names, segments = value
        write_marshal(path, (tuple(starts), tuple(ends), tuple(names),
                             tuple(tuple(s) for s in segments)))
        prune(os.path.dirname(path), "elfsyms-", f".v{_CACHE_VERSION}", 256)


class Mapping:
    """One executable mapping of a process: where it is and what file bytes it holds."""

    __slots__ = ("start", "end", "offset", "path", "open_path", "ident")

    def __init__(self, start: int, end: int, offset: int, path: str, open_path: str,
                 ident: tuple[int, int] | None) -> None:
        self.start = start
        self.end = end
        self.offset = offset
        self.path = path            # as /proc/PID/maps names it
        self.open_path = open_path  # where to read it from
        self.ident = ident          # (device, inode) of the file, None for anonymous


class ProcessMaps:
    """The executable mappings of one process, read once."""

    def __init__(self, pid: int, mappings: list[Mapping]) -> None:
        self.pid = pid
        self.mappings = mappings
        self.starts = [m.start for m in mappings]

    @classmethod
    def read(cls, pid: int, proc: str = "/proc") -> ProcessMaps | None:
        """None when the process is gone (it exited before we looked)."""
        try:
            with open(f"{proc}/{pid}/maps", "rb") as f:
                text = f.read().decode("utf-8", "replace")
        except OSError:
            return None
        mappings = []
        for line in text.splitlines():
            parts = line.split(None, 5)
            if len(parts) < 5 or "x" not in parts[1]:
                continue
            lo, _, hi = parts[0].partition("-")
            start, end = int(lo, 16), int(hi, 16)
            path = parts[5].strip() if len(parts) > 5 else ""
            inode = int(parts[4])
            open_path = path
            ident = None
            if inode and path.startswith("/"):
                major, _, minor = parts[3].partition(":")
                ident = (int(major, 16) << 20 | int(minor, 16), inode)
                if path.endswith(" (deleted)"):
                    path = path[:-10]
                    # the deleted file's bytes are still reachable while the process lives
                    open_path = f"{proc}/{pid}/map_files/{parts[0]}"
                else:
                    # the process's own view (its mount namespace, a chroot)
                    open_path = f"{proc}/{pid}/root{path}"
            mappings.append(Mapping(start, end, int(parts[2], 16), path or "[anon]",
                                    open_path, ident))
        mappings.sort(key=lambda m: m.start)
        return cls(pid, mappings)

    def find(self, addr: int) -> Mapping | None:
        i = bisect.bisect_right(self.starts, addr) - 1
        if i >= 0 and addr < self.mappings[i].end:
            return self.mappings[i]
        return None


class Symbolizer:
    """Kernel and user stacks to names; processes remembered when first seen."""

    def __init__(self, kernel: bool = True, proc: str = "/proc") -> None:
        self.proc = proc
        self._kernel: KernelSymbols | None = None
        self._want_kernel = kernel
        self._maps: dict[tuple[int, bytes | str], ProcessMaps | None] = {}
        # binaries by (device, inode) and by path: each read (and cached) once
        self._elves: dict[Any, ElfSymbols | None] = {}
        self._pending: dict[tuple[int, int], int] = {}  # files opened by remember()
        self.errors: dict[str, str] = {}    # binaries that could not be read, and why

    @property
    def kernel(self) -> KernelSymbols:
        if self._kernel is None:
            self._kernel = KernelSymbols(f"{self.proc}/kallsyms")
        return self._kernel

    def remember(self, pid: int, comm: bytes | str = "") -> None:
        """Read ``pid``'s mappings now, if not already (call as soon as a pid shows up).

        Mappings are kept per (pid, comm): a process that exec()s keeps its pid but maps
        another program, and usually changes its comm (a forked child sampled before its
        exec() shows its parent's comm and mappings).

        Each file it maps (not seen before) is also opened through the process
        (``/proc/PID/map_files``) while it is alive, and kept open until
        :meth:`load_pending` reads its symbols: a binary deleted or replaced after the
        process exits is still symbolized. Cheap: one read and a few opens per process.
        """
        if (pid, comm) in self._maps:
            return
        maps = self._maps[pid, comm] = ProcessMaps.read(pid, self.proc)
        if maps is None:
            return
        for m in maps.mappings:
            key = m.ident
            if key is None or key in self._elves or key in self._pending:
                continue
            if len(self._pending) >= MAX_PENDING_FDS:
                break
            lo, hi = f"{m.start:x}", f"{m.end:x}"
            try:
                self._pending[key] = os.open(f"{self.proc}/{pid}/map_files/{lo}-{hi}",
                                             os.O_RDONLY | os.O_CLOEXEC)
            except OSError:
                pass  # gone already, or no map_files here: read by path later

    def load_pending(self, until: float | None = None) -> None:
        """Read the symbols of the files :meth:`remember` opened (each once); stop after
        the file being read when ``time.monotonic()`` passes ``until``."""
        import time

        while self._pending and (until is None or time.monotonic() < until):
            key, fd = self._pending.popitem()
            try:
                if key not in self._elves:
                    try:
                        self._elves[key] = ElfSymbols.read(f"/proc/self/fd/{fd}")
                    except (OSError, ValueError):
                        pass  # _elf() tries the paths again, and records why
            finally:
                os.close(fd)

    def close(self) -> None:
        for fd in self._pending.values():
            os.close(fd)
        self._pending.clear()

    def kernel_stack(self, addrs: Sequence[int]) -> list[str]:
        """Names, leaf first."""
        look = self.kernel.lookup
        return [look(a if i == 0 else a - 1) for i, a in enumerate(addrs)]

    def user_stack(self, pid: int, addrs: Sequence[int], comm: bytes | str = "") -> list[str]:
        """Names, leaf first; ``[unknown]`` for what no mapping or symbol covers."""
        self.remember(pid, comm)
        self.load_pending()
        maps = self._maps.get((pid, comm))
        out = []
        for i, addr in enumerate(addrs):
            a = addr if i == 0 else addr - 1
            out.append(self._user_name(maps, a) if maps is not None else UNKNOWN)
        return out

    def _user_name(self, maps: ProcessMaps, addr: int) -> str:
        m = maps.find(addr)
        if m is None:
            return UNKNOWN
        if m.ident is None:
            return UNKNOWN if m.path == "[anon]" else m.path  # [vdso], [heap], JIT code
        elf = self._elf(m)
        if elf is None:
            return UNKNOWN
        vaddr = elf.vaddr(addr - m.start + m.offset)
        name = elf.lookup(vaddr) if vaddr is not None else None
        return name or UNKNOWN

    def _elf(self, m: Mapping) -> ElfSymbols | None:
        key = m.ident
        if key in self._elves:
            return self._elves[key]
        elf = None
        for path in dict.fromkeys((m.open_path, m.path)):
            try:
                elf = ElfSymbols.read(path)
                break
            except (OSError, ValueError) as exc:
                why = str(exc)
        else:
            self.errors[m.path] = why
        self._elves[key] = elf
        return elf
