"""The running kernel's system call table: which number is which call, from the kernel.

The kernel keeps its syscall table as ``sys_call_table``: an array, indexed by number,
of pointers to the calls' entry points, ``__x64_sys_NAME`` on x86-64 and
``__arm64_sys_NAME`` on arm64, and ``sys_ni_syscall`` (the arch-prefixed one too) where a
number is not implemented: never assigned, removed, or configured out. x86-64 kernels
since the branch-history mitigation dispatch through a switch (``x64_sys_call``), but
keep the table, which is what the kernel's own syscall trace events are built from.
:func:`kernel_table` reads it in three named steps (:class:`KernelTableReader`):

1. ``find_table``: the table's address from ``/proc/kallsyms``. It is a data symbol,
   listed only when the kernel was built with ``CONFIG_KALLSYMS_ALL``; addresses are
   real only for a reader with CAP_SYSLOG under ``kernel.kptr_restrict``. The next
   symbol above it bounds its length (kallsyms has no sizes).
2. ``read_entries``: the table's bytes from ``/proc/kcore`` (``CONFIG_PROC_KCORE``, root),
   the kernel's memory as an ELF core file: a PT_LOAD segment per kernel address range.
3. ``name_entries``: each pointer back to the entry point at that address. A number
   whose entry point is ``sys_ni_syscall``, or only a weak symbol (the stub
   ``kernel/sys_ni.c`` gives a configured-out call), is not implemented; the table
   ends at the first entry that is no entry point.

The UAPI header ``asm/unistd_64.h`` (generated from the same ``syscall_64.tbl`` when the
headers were built, not necessarily for this kernel) is :func:`header_table`;
:func:`syscall_table` uses it only as a fallback and says why (``SyscallTable.origin``).
The kernel's names are its entry points' (``newuname``, ``umount``), which for a few
calls differ from the header's (``uname``, ``umount2``, ``sendfile``): ``HEADER_ALIASES``.
"""

from __future__ import annotations

import os
import struct

from .errors import Error, FeatureMissing, PermissionDenied
from .sys.host import KALLSYMS, KCORE

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

TABLE_SYMBOL = "sys_call_table"
# entry-point prefix of the native syscall table, per machine (uname -m)
ENTRY_PREFIX = {"x86_64": "__x64_sys_", "aarch64": "__arm64_sys_"}
NOT_IMPLEMENTED = "ni_syscall"           # sys_ni_syscall, and __x64_sys_ni_syscall
# Where the kernel's syscall table reaches user space: the UAPI header its build
# generates from arch/*/entry/syscalls/*.tbl, per multiarch triplet.
UNISTD = ("/usr/include/{triplet}/asm/unistd_64.h", "/usr/include/asm/unistd_64.h")
# syscall_64.tbl entries whose entry point is not sys_<name>: header name -> kernel name
# (the kernel's syscall trace events use the kernel name: sys_enter_newuname)
HEADER_ALIASES = {"stat": "newstat", "fstat": "newfstat", "lstat": "newlstat",
                  "sendfile": "sendfile64", "uname": "newuname", "umount2": "umount"}
MAX_SYSCALLS = 4096                      # bounds a read when kallsyms gives no end
_PTR = struct.Struct("<Q")               # x86-64 and arm64: 8-byte little-endian pointers
_ELF64_PHDR = struct.Struct("<IIQQQQQQ")
_PT_LOAD = 1
_PN_XNUM = 0xFFFF


class SyscallTable:
    """Syscall numbers and names: ``names`` (implemented calls), ``missing`` (numbers the
    kernel does not implement), ``source`` (``"kernel"``, ``"header"`` or ``"none"``) and
    ``origin``: where they came from, and for a fallback why the kernel's table was not
    used."""

    __slots__ = ("missing", "names", "origin", "source")

    def __init__(self, names: dict[int, str], missing: Iterable[int], source: str,
                 origin: str) -> None:
        self.names = names
        self.missing = frozenset(missing)
        self.source = source
        self.origin = origin

    def name(self, nr: int) -> str:
        """The call's name; libbpf-tools' ``[unknown: N]`` for a number the table lacks."""
        name = self.names.get(nr)
        if name is not None:
            return name
        if nr in self.missing:
            return f"[not implemented: {nr}]"
        return f"[unknown: {nr}]"

    def __repr__(self) -> str:
        return (f"SyscallTable({len(self.names)} calls, {len(self.missing)} not "
                f"implemented, {self.source}: {self.origin})")


class KernelTableReader:
    """``sys_call_table`` of the running kernel, read in named steps (see the module)."""

    def __init__(self, machine: str | None = None, kallsyms: str = KALLSYMS,
                 kcore: str = KCORE) -> None:
        machine = machine or os.uname().machine
        prefix = ENTRY_PREFIX.get(machine)
        if prefix is None:
            raise FeatureMissing(f"reading the syscall table on {machine}",
                                 f"known for {', '.join(sorted(ENTRY_PREFIX))}")
        self.prefix = prefix
        self.kallsyms = kallsyms
        self.kcore = kcore
        self.table_addr = 0
        self.table_end = 0
        self.via = ""                             # where read_entries read the table
        # entry-point address -> (name, weak) of each symbol there
        self.entries: dict[int, list[tuple[str, bool]]] = {}

    def run(self) -> SyscallTable:
        self.find_table()
        names, missing = self.name_entries(self.read_entries())
        return SyscallTable(names, missing, "kernel",
                            f"the running kernel's {TABLE_SYMBOL}, read through {self.via}")

    def find_table(self) -> None:
        """The table's address and bound, and every entry point's address."""
        import re

        try:
            with open(self.kallsyms, "rb") as f:
                text = f.read()
        except OSError as e:
            raise FeatureMissing(f"{self.kallsyms} ({e.strerror})",
                                 "a kernel built with CONFIG_KALLSYMS") from None
        at = text.find(b" " + TABLE_SYMBOL.encode() + b"\n")
        if at < 0:
            raise FeatureMissing(f"{TABLE_SYMBOL} in {self.kallsyms}",
                                 "a kernel built with CONFIG_KALLSYMS_ALL lists data symbols")
        line_start = text.rfind(b"\n", 0, at) + 1
        table = int(text[line_start:text.index(b" ", line_start)], 16)
        if not table:
            raise PermissionDenied(f"reading kernel symbol addresses from {self.kallsyms} "
                                   "(all zero: kernel.kptr_restrict hides them)", "CAP_SYSLOG")
        # vmlinux's symbols are listed in address order: the first one above the table
        # after it bounds it (kallsyms has no sizes)
        end = table + MAX_SYSCALLS * _PTR.size
        after = at + len(TABLE_SYMBOL) + 2
        for line in text[after:after + 4096].splitlines()[:-1]:
            addr = int(line.split(None, 1)[0], 16)
            if addr > table:
                end = min(end, addr)
                break
        self.table_addr, self.table_end = table, end
        entry = re.compile(rb"([0-9a-f]+) ([tTwW]) (" + re.escape(self.prefix.encode()) +
                           rb"\w+|\w*sys_" + NOT_IMPLEMENTED.encode() + rb")\n")
        for m in entry.finditer(text):
            weak = m.group(2) in b"wW"
            self.entries.setdefault(int(m.group(1), 16), []).append(
                (m.group(3).decode(), weak))

    def read_entries(self) -> list[int]:
        """The table's pointers, from the kernel's memory: /proc/kcore, else a BPF program
        (bpf_probe_read_kernel) where the kernel has no kcore or refuses it."""
        size = self.table_end - self.table_addr
        try:
            data = read_kernel_memory(self.table_addr, size, self.kcore)
            self.via = self.kcore
        except (FeatureMissing, PermissionDenied) as e:
            try:
                data = read_kernel_memory_bpf(self.table_addr, size)
            except Error as bpf_error:
                raise Error(f"{e}; and through BPF: {bpf_error}") from None
            self.via = "a BPF program (bpf_probe_read_kernel)"
        return [v for (v,) in _PTR.iter_unpack(data[:len(data) // _PTR.size * _PTR.size])]

    def name_entries(self, pointers: list[int]) -> tuple[dict[int, str], set[int]]:
        """Number -> name for the entry points, and the numbers not implemented."""
        names: dict[int, str] = {}
        missing: set[int] = set()
        for nr, ptr in enumerate(pointers):
            here = self.entries.get(ptr)
            if not here:
                break                       # past the table's end
            # sys_ni_syscall itself, or only the weak stub kernel/sys_ni.c defines for a
            # call that is configured out (the real one is a strong symbol)
            if any(n.endswith(NOT_IMPLEMENTED) for n, _ in here) or all(w for _, w in here):
                missing.add(nr)
                continue
            native = sorted(n[len(self.prefix):] for n, weak in here
                            if n.startswith(self.prefix) and not weak)
            if native:
                names[nr] = native[0]
        if not names:
            raise Error(f"reading {TABLE_SYMBOL} at {self.table_addr:#x}: no entry points "
                        f"({self.prefix}*) found in it")
        return names, missing


def read_kernel_memory(addr: int, size: int, kcore: str = KCORE) -> bytes:
    """``size`` bytes of kernel memory at virtual address ``addr``, from /proc/kcore."""
    try:
        fd = os.open(kcore, os.O_RDONLY)
    except OSError as e:
        if e.errno in (1, 13):              # EPERM, EACCES
            raise PermissionDenied(f"reading kernel memory through {kcore}",
                                   "CAP_SYS_RAWIO") from None
        raise FeatureMissing(f"{kcore} ({e.strerror})",
                             "a kernel built with CONFIG_PROC_KCORE") from None
    try:
        head = os.pread(fd, 64, 0)
        if head[:4] != b"\x7fELF" or head[4] != 2:
            raise Error(f"reading {kcore}: not a 64-bit ELF core file")
        phoff, = struct.unpack_from("<Q", head, 0x20)
        phentsize, phnum = struct.unpack_from("<HH", head, 0x36)
        if phnum == _PN_XNUM:               # the count is in section 0's sh_info
            shoff, = struct.unpack_from("<Q", head, 0x28)
            phnum, = struct.unpack_from("<I", os.pread(fd, 64, shoff), 0x2C)
        table = os.pread(fd, phentsize * phnum, phoff)
        for i in range(phnum):
            p_type, _flags, offset, vaddr, _paddr, filesz, _memsz, _align = \
                _ELF64_PHDR.unpack_from(table, i * phentsize)
            if p_type == _PT_LOAD and vaddr <= addr < vaddr + filesz:
                size = min(size, vaddr + filesz - addr)
                return os.pread(fd, size, offset + addr - vaddr)
    except OSError as e:
        raise Error(f"reading kernel memory at {addr:#x} through {kcore}: "
                    f"{e.strerror}") from None
    finally:
        os.close(fd)
    raise Error(f"reading kernel memory at {addr:#x}: no segment of {kcore} maps it")


BPF_READ_CHUNK = 1 << 15        # bytes one run of the reader program copies, at most


def read_kernel_memory_bpf(addr: int, size: int) -> bytes:
    """``size`` bytes of kernel memory at ``addr``, copied by a raw_tracepoint program
    run with BPF_PROG_RUN (never attached): ``bpf_probe_read_kernel(value, n, addr)``
    into an array map's value, ``addr`` and ``n`` from the run's context."""
    from . import asm
    from .sys import bpf as _bpf
    from .sys import consts as C
    from .sys.errors import raise_for

    ldx_dw = asm.BPF_LDX | asm.BPF_DW | asm.BPF_MEM
    try:
        value = _bpf.map_create(C.BPF_MAP_TYPE_ARRAY, 4, BPF_READ_CHUNK, 1, name="cf_kread")
    except OSError as e:
        raise_for(e, "creating the map of the kernel memory reader", capability="CAP_BPF")
    with value:
        insns = b"".join((
            asm.mov64_reg(6, 1),                                   # r6 = ctx (u64 args[])
            asm.encode(ldx_dw, 2, 6, 8),                           # r2 = args[1]: length
            asm.encode(asm.BPF_JMP | asm.BPF_JGT | asm.BPF_K, 2, 0, 5, BPF_READ_CHUNK),
            asm.encode(ldx_dw, 3, 6, 0),                           # r3 = args[0]: address
            asm.ld_imm64(1, int(value), asm.BPF_PSEUDO_MAP_VALUE),  # r1 = &value[0]
            asm.call(C.BPF_FUNC_probe_read_kernel),
            asm.exit_(),
            asm.mov64_imm(0, -22),                                 # longer than the value
            asm.exit_(),
        ))
        try:
            prog = _bpf.prog_load(C.BPF_PROG_TYPE_RAW_TRACEPOINT, insns, "GPL",
                                  name="cf_kread")
        except OSError as e:
            raise_for(e, "loading the kernel memory reader (bpf_probe_read_kernel)",
                      capability="CAP_PERFMON", feature="bpf_probe_read_kernel")
        out = bytearray()
        with prog:
            while len(out) < size:
                n = min(BPF_READ_CHUNK, size - len(out))
                where = addr + len(out)
                try:
                    run = _bpf.prog_test_run(prog, ctx_in=struct.pack("<QQ", where, n),
                                             repeat=0)
                except OSError as e:
                    raise_for(e, "running the kernel memory reader", capability="CAP_BPF",
                              feature="BPF_PROG_RUN of raw_tracepoint programs")
                if run.retval:
                    code = -(run.retval - (1 << 32)) if run.retval >= 1 << 31 else -run.retval
                    raise Error(f"reading kernel memory at {where:#x} through BPF: "
                                f"{os.strerror(code)}")
                raw = _bpf.map_lookup_elem(value, struct.pack("<I", 0), BPF_READ_CHUNK)
                assert raw is not None              # an array's one element always exists
                out += raw[:n]
        return bytes(out)


def kernel_table() -> SyscallTable:
    """The running kernel's own table; FeatureMissing/PermissionDenied say what is missing."""
    return KernelTableReader().run()


def header_table() -> SyscallTable:
    """The UAPI header's table (``asm/unistd_64.h``); FeatureMissing without the header."""
    import re

    triplet = f"{os.uname().machine}-linux-gnu"
    for pattern in UNISTD:
        path = pattern.format(triplet=triplet)
        try:
            with open(path) as f:
                text = f.read()
        except OSError:
            continue
        names = {int(nr): name for name, nr in
                 re.findall(r"^#define __NR_(\w+)\s+(\d+)\s*$", text, re.MULTILINE)}
        return SyscallTable(names, (), "header", path)
    raise FeatureMissing("the syscall table header asm/unistd_64.h",
                         "Debian: apt-get install linux-libc-dev")


def syscall_table() -> SyscallTable:
    """The kernel's table, or the header's with ``origin`` saying why (or an empty table
    whose ``origin`` says that neither could be read)."""
    try:
        return kernel_table()
    except Error as e:
        why = str(e)
    try:
        header = header_table()
    except Error as e:
        return SyscallTable({}, (), "none", f"nowhere (numbers only): {why}; {e}")
    header.origin = f"the header {header.origin}, as a fallback ({why})"
    return header
