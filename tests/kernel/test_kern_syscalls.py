"""The running kernel's syscall table (coreframe.syscalls) against the UAPI header, and
syscount printing its names.

The kernel's table is read from ``sys_call_table`` (found in /proc/kallsyms, which
lists data symbols only with CONFIG_KALLSYMS_ALL) through /proc/kcore. This host's
kernel has neither, so the comparison skips here with that reason and runs in the
guests (Debian's 6.1 and 6.12 have both), where a table that cannot be read fails.
Each comparison is recorded (``tool_oracle``) for kernels/report.py's summary.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

import pytest
from kernkit import IN_GUEST, ROOT

sys.path.insert(0, str(ROOT / "tests" / "tools"))

from oracle import helper  # noqa: E402
from tool_proc import ToolProcess  # noqa: E402

from coreframe import syscalls  # noqa: E402
from coreframe.errors import FeatureMissing, PermissionDenied  # noqa: E402

pytestmark = pytest.mark.kernel

UNAMES = 300
# calls uname(2) UNAMES times when told, prints "done"
UNAME_LOOP = f"""
import os, sys
sys.stdin.readline()
for _ in range({UNAMES}):
    os.uname()
print("done", flush=True)
sys.stdin.readline()
"""


def _kernel_table() -> syscalls.SyscallTable:
    try:
        return syscalls.kernel_table()
    except (FeatureMissing, PermissionDenied) as e:
        if IN_GUEST:
            pytest.fail(f"the guest kernel's syscall table cannot be read: {e}")
        pytest.skip(f"the kernel's syscall table cannot be read here: {e}")


def test_kernel_table_equals_header(record_property: Callable[[str, object], None]) -> None:
    kernel = _kernel_table()
    header = syscalls.header_table()
    both = sorted(set(kernel.names) & set(header.names))
    # the kernel names a call by its entry point (sys_newuname): a few x86-64 numbers'
    # entry points are not sys_<header name> (syscall_64.tbl's fourth column)
    aliased = {nr: (header.names[nr], kernel.names[nr]) for nr in both
               if header.names[nr] != kernel.names[nr]}
    differ = {nr: pair for nr, pair in aliased.items()
              if syscalls.HEADER_ALIASES.get(pair[0]) != pair[1]}
    assert not differ, f"numbers the kernel and the header name differently: {differ}"
    # numbers the header names and the kernel lacks: ones it does not implement
    # (removed, never wired on x86-64, or configured out), or past its table's end
    header_only = sorted(set(header.names) - set(kernel.names))
    last = max(kernel.names)
    unexplained = [nr for nr in header_only if nr not in kernel.missing and nr <= last]
    assert not unexplained, {nr: header.names[nr] for nr in unexplained}
    kernel_only = sorted(set(kernel.names) - set(header.names))     # newer than the header
    traced = _traced()
    untraced = sorted(n for n in kernel.names.values() if n not in traced) if traced else []
    record_property("tool_oracle", (
        f"syscall table: {len(kernel.names)} calls in the kernel's sys_call_table, "
        f"{len(kernel.missing)} not implemented; {len(both)} numbers also in the header, "
        f"equal ({len(aliased)} by entry-point name: "
        f"{', '.join(f'{a}={b}' for a, b in aliased.values())}); header only: "
        f"{', '.join(f'{nr} {header.names[nr]}' for nr in header_only) or '-'}; "
        f"kernel only: {', '.join(f'{nr} {kernel.names[nr]}' for nr in kernel_only) or '-'}; "
        f"without a trace event: {', '.join(untraced) or '-'}"))


def test_bpf_read_equals_kcore(record_property: Callable[[str, object], None]) -> None:
    """The table's bytes as the BPF reader copies them (the fallback without kcore) are
    the bytes /proc/kcore gives."""
    reader = syscalls.KernelTableReader()
    try:
        reader.find_table()
        size = reader.table_end - reader.table_addr
        via_kcore = syscalls.read_kernel_memory(reader.table_addr, size)
    except (FeatureMissing, PermissionDenied) as e:
        if IN_GUEST:
            pytest.fail(f"the guest kernel's syscall table cannot be read: {e}")
        pytest.skip(f"the kernel's syscall table cannot be read here: {e}")
    via_bpf = syscalls.read_kernel_memory_bpf(reader.table_addr, size)
    assert via_bpf == via_kcore
    record_property("tool_oracle", f"syscall table bytes: BPF reader = /proc/kcore "
                                   f"({size} bytes at sys_call_table)")


def _traced() -> set[str]:
    for root in ("/sys/kernel/tracing/events/syscalls",
                 "/sys/kernel/debug/tracing/events/syscalls"):
        try:
            return {e[len("sys_enter_"):] for e in os.listdir(root) if e.startswith("sys_enter_")}
        except OSError:
            continue
    return set()


def test_syscount_names_from_the_table(record_property: Callable[[str, object], None]) -> None:
    """``syscount -l`` lists the table syscount_table() gives, and a counting run names
    uname(2) by it: ``newuname`` from the kernel's table, ``uname`` from the header's
    (which stderr then says, with why)."""
    table = syscalls.syscall_table()
    if IN_GUEST:
        assert table.source == "kernel", table.origin
    with ToolProcess(["syscount", "-l"], ready=None) as listing:
        assert listing.wait() == 0, listing.stderr
    listed = {int(nr): rest.split()[0] for nr, _, rest in
              (line.partition(":") for line in listing.stdout)}
    assert listed == table.names
    fallback = [x for x in listing.stderr if "syscall names from" in x]
    assert bool(fallback) == (table.source != "kernel"), listing.stderr
    nr_uname = next(nr for nr, name in syscalls.header_table().names.items() if name == "uname")
    with helper(UNAME_LOOP) as h, ToolProcess(["syscount", "-p", str(h.pid), "--json"]) as t:
        assert h.step() == "done"
        assert t.stop() == 0, t.stderr
    rows = {r["syscall"]: r for r in t.json_records()}
    name = table.name(nr_uname)
    assert name == ("newuname" if table.source == "kernel" else "uname")
    assert rows[name]["nr"] == nr_uname and rows[name]["count"] >= UNAMES, rows
    record_property("tool_oracle", f"syscount: names from {table.source} table; "
                                   f"uname(2) x{rows[name]['count']} as {name!r}")
