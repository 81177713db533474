"""coreframe.syscalls: the syscall table read from kallsyms and kernel memory.

The reader's parsing runs here on files laid out as /proc/kallsyms and /proc/kcore
are (an ELF core whose PT_LOAD segments are kernel address ranges); the running
kernel's own table is compared with the header in tests/kernel/test_kern_syscalls.py
(this host lists no data symbols in kallsyms and has no /proc/kcore; the guests do).
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from coreframe import syscalls
from coreframe.errors import FeatureMissing, PermissionDenied

TABLE = 0xFFFFFFFF82400100
SEGMENT = 0xFFFFFFFF82400000
FUNCS = {"read": 0xFFFFFFFF81000010, "write": 0xFFFFFFFF81000020,
         "ni": 0xFFFFFFFF81000030, "quotactl_fd": 0xFFFFFFFF81000040,
         "newuname": 0xFFFFFFFF81000050}


def _kallsyms(tmp: Path, *, table: bool = True, zero: bool = False) -> Path:
    def addr(a: int) -> str:
        return f"{0 if zero else a:016x}"

    lines = [f"{addr(FUNCS['read'])} T __x64_sys_read",
             f"{addr(FUNCS['write'])} T __x64_sys_write",
             f"{addr(FUNCS['ni'])} T __x64_sys_ni_syscall",
             f"{addr(FUNCS['ni'])} T sys_ni_syscall",
             f"{addr(FUNCS['quotactl_fd'])} W __x64_sys_quotactl_fd",   # sys_ni.c's stub
             f"{addr(FUNCS['newuname'])} T __x64_sys_newuname",
             f"{addr(FUNCS['newuname'])} t __ia32_sys_newuname_alias"]
    if table:
        lines.append(f"{addr(TABLE)} D sys_call_table")
    lines += [f"{addr(TABLE + 6 * 8)} D x32_sys_call_table",
              f"{addr(0xFFFFFFFFC0000000)} t mod_fn\t[loop]"]
    path = tmp / "kallsyms"
    path.write_text("\n".join(lines) + "\n")
    return path


def _kcore(tmp: Path, pointers: list[int]) -> Path:
    data = b"\xcc" * (TABLE - SEGMENT) + b"".join(struct.pack("<Q", p) for p in pointers)
    data += struct.pack("<Q", 0xFFFFFFFF81000010) * 4       # past the bound: never read
    ehdr = bytearray(64)
    ehdr[:6] = b"\x7fELF\x02\x01"
    struct.pack_into("<Q", ehdr, 0x20, 64)                  # e_phoff
    struct.pack_into("<HH", ehdr, 0x36, 56, 2)              # e_phentsize, e_phnum
    note = struct.pack("<IIQQQQQQ", 4, 0, 0, 0, 0, 0, 0, 0)  # PT_NOTE first, as kcore has
    load = struct.pack("<IIQQQQQQ", 1, 4, 0x1000, SEGMENT, 0, len(data), len(data), 0x1000)
    blob = bytes(ehdr) + note + load
    blob += b"\0" * (0x1000 - len(blob)) + data
    path = tmp / "kcore"
    path.write_bytes(blob)
    return path


def test_reads_names_not_implemented_and_stubs(tmp_path: Path) -> None:
    entries = [FUNCS["read"], FUNCS["write"], FUNCS["ni"], FUNCS["quotactl_fd"],
               FUNCS["newuname"], FUNCS["read"]]
    reader = syscalls.KernelTableReader("x86_64", str(_kallsyms(tmp_path)),
                                        str(_kcore(tmp_path, entries)))
    table = reader.run()
    # bounded by the next symbol (x32_sys_call_table, 6 entries on), not by the data
    assert table.names == {0: "read", 1: "write", 4: "newuname", 5: "read"}
    assert table.missing == {2, 3}
    assert (table.name(2), table.name(3), table.name(9)) == (
        "[not implemented: 2]", "[not implemented: 3]", "[unknown: 9]")
    assert table.source == "kernel" and "sys_call_table" in table.origin


def test_table_ends_at_first_non_entry(tmp_path: Path) -> None:
    entries = [FUNCS["read"], FUNCS["write"], 0xFFFFFFFF81FFFFF0, FUNCS["read"],
               FUNCS["read"], FUNCS["read"]]
    table = syscalls.KernelTableReader("x86_64", str(_kallsyms(tmp_path)),
                                       str(_kcore(tmp_path, entries))).run()
    assert table.names == {0: "read", 1: "write"}


def test_missing_symbol_hidden_addresses_and_machine(tmp_path: Path) -> None:
    kcore = str(_kcore(tmp_path, [FUNCS["read"]]))
    with pytest.raises(FeatureMissing, match="CONFIG_KALLSYMS_ALL"):
        syscalls.KernelTableReader("x86_64", str(_kallsyms(tmp_path, table=False)),
                                   kcore).run()
    with pytest.raises(PermissionDenied, match="kptr_restrict"):
        syscalls.KernelTableReader("x86_64", str(_kallsyms(tmp_path, zero=True)), kcore).run()
    with pytest.raises(FeatureMissing, match="CONFIG_PROC_KCORE"):
        syscalls.read_kernel_memory(TABLE, 8, str(tmp_path / "no-kcore"))
    with pytest.raises(FeatureMissing, match="riscv64"):
        syscalls.KernelTableReader("riscv64")


def test_fallback_says_why() -> None:
    """On this machine: the kernel's table where it can be read, else the header's,
    whose ``origin`` names the header and why the kernel's was not used."""
    table = syscalls.syscall_table()
    try:
        syscalls.kernel_table()
    except (FeatureMissing, PermissionDenied) as e:
        assert table.source in ("header", "none")
        assert str(e) in table.origin and "fallback" in table.origin
    else:
        assert table.source == "kernel"
    if table.source != "none":
        assert table.names[0] == "read" and table.names[1] == "write"


def test_bpf_reader_reads_kernel_memory() -> None:
    """read_kernel_memory_bpf (what the reader falls back to without /proc/kcore) copies
    the kernel's BTF from where kallsyms says it starts (``__start_BTF``, listed even
    without CONFIG_KALLSYMS_ALL) byte for byte as /sys/kernel/btf/vmlinux shows it,
    across several runs of the program; a user-space address is refused by the kernel."""
    import os

    from coreframe.errors import Error
    from coreframe.sys.host import KALLSYMS, VMLINUX_BTF

    if os.geteuid() != 0:
        pytest.skip("needs root to load BPF programs")
    start = 0
    with open(KALLSYMS) as f:
        for line in f:
            if line.endswith(" __start_BTF\n"):
                start = int(line.split()[0], 16)
    if not start:
        pytest.skip("no __start_BTF in kallsyms (or its address is hidden)")
    size = syscalls.BPF_READ_CHUNK * 2 + 1000
    with open(VMLINUX_BTF, "rb") as f:
        want = f.read(size)
    assert syscalls.read_kernel_memory_bpf(start, size) == want
    with pytest.raises(Error, match="reading kernel memory at 0x1000 through BPF"):
        syscalls.read_kernel_memory_bpf(0x1000, 8)
