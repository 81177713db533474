"""syscount: system calls counted per syscall or per process, with their latency.

Options and output follow libbpf-tools' syscount (``-p -i -d -T -L -m -P -x -e -c
-l``). Counting runs at syscall exit on sys_exit, attached as tp_btf, raw_tp or
the raw_syscalls tracepoint (whichever this kernel offers first); ``-L`` adds
sys_enter for the latency. Syscall names come from the running kernel's own
``sys_call_table`` (:mod:`coreframe.syscalls`), its entry points' names as its
syscall trace events use them (``newuname``); where the kernel's table cannot be
read, from the UAPI header ``asm/unistd_64.h``, and the tool says so (``coreframe
info syscount``, and a line on stderr). ``-l`` marks the calls the running kernel
has no syscall trace event for.
"""

from __future__ import annotations

import _thread
import os
import struct
import time

from coreframe.metrics import Counter
from coreframe.options import Directory, Exclusive, IntRange, Option
from coreframe.output import Col, Field
from coreframe.tool import Readiness, RunContext, Tool

from ._common import attach_option, comm, open_object, trace

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from coreframe.metrics import MetricSet
    from coreframe.syscalls import SyscallTable

_DATA = struct.Struct("<QQ16s")       # struct data, bpf/syscount.h
ATTACH = (
    ("tp_btf", ("tp_btf:sys_exit", "tp_btf:sys_enter"),
     "typed pt_regs, no tracepoint record built for each of the machine's syscalls"),
    ("raw_tp", ("raw_tp:sys_exit", "raw_tp:sys_enter"),
     "raw arguments, no tracepoint record built for each of the machine's syscalls"),
    ("tracepoint", ("tracepoint:raw_syscalls/sys_exit", "tracepoint:raw_syscalls/sys_enter"),
     "the perf-event raw_syscalls tracepoints"),
)
SYSCALLS = Counter("coreframe_syscount_syscalls",
                   "System calls, by name (with -P: by process)", ("syscall",))
SECONDS = Counter("coreframe_syscount_seconds",
                  "Time spent in system calls (with -L), by name (with -P: by process)",
                  ("syscall",))
PROGRAMS = {"tp_btf": ("enter_btf", "exit_btf"), "raw_tp": ("enter_raw", "exit_raw"),
            "tracepoint": ("enter_tp", "exit_tp")}
TRACEFS_SYSCALLS = ("/sys/kernel/tracing/events/syscalls",
                    "/sys/kernel/debug/tracing/events/syscalls")


def kernel_syscalls() -> set[str]:
    """The system calls the running kernel has trace events for (its own names)."""
    for root in TRACEFS_SYSCALLS:
        try:
            return {e[len("sys_enter_"):] for e in os.listdir(root)
                    if e.startswith("sys_enter_")}
        except OSError:
            continue
    return set()


def _errno(text: str) -> int:
    import errno

    if text.isdigit() and int(text) > 0:
        return int(text)
    number = getattr(errno, text.upper(), None)
    if not isinstance(number, int):
        raise ValueError(text)
    return number


class Errno:
    """``-e ENOENT`` or ``-e 2``."""

    def convert(self, text: str) -> int:
        return _errno(text)

    def to_click(self, click: Any) -> Any:
        class ErrnoType(click.ParamType):
            name = "ERRNO"

            def convert(self, value: Any, param: Any, ctx: Any) -> int:
                if isinstance(value, int):
                    return value
                try:
                    return _errno(value)
                except ValueError:
                    self.fail(f"{value!r} is not an errno (a positive number or a name "
                              "such as ENOENT)", param, ctx)

        return ErrnoType()


class _Counts:
    """The counts taken out of the kernel's map and not printed yet.

    Each key is read and deleted in one step, so a count that lands meanwhile goes
    to the next take; when the run exports metrics, a scrape takes too and counts
    what it took into them, under the same lock as the printer's takes."""

    def __init__(self, counts: Any, names: SyscallTable, by_process: bool,
                 latency: bool) -> None:
        self.map = getattr(counts, "raw", counts)
        self.names = names
        self.by_process = by_process
        self.latency = latency
        self.rows: dict[int, tuple[int, int, bytes]] = {}
        self.lock = _thread.allocate_lock()

    def take(self, ms: MetricSet | None = None) -> None:
        with self.lock:
            for key, raw in self.map.take_all():
                n, total_ns, raw_comm = _DATA.unpack_from(bytes(raw))
                nr = int.from_bytes(bytes(key), "little")
                if ms is not None:
                    labels = ((str(nr), comm(raw_comm)) if self.by_process
                              else (self.names.name(nr),))
                    ms.inc(SYSCALLS.name, labels, n)
                    if self.latency:
                        ms.inc(SECONDS.name, labels, total_ns / 1e9)
                have = self.rows.get(nr)
                if have is not None:
                    n, total_ns = n + have[0], total_ns + have[1]
                self.rows[nr] = (n, total_ns, raw_comm)

    def pop(self) -> list[tuple[int, int, int, bytes]]:
        with self.lock:
            rows, self.rows = self.rows, {}
        return [(k, *v) for k, v in rows.items()]


class SysCount(Tool):
    """Count system calls (per syscall, or per process with -P), with their latency (-L)."""

    name = "syscount"
    summary = "Count system calls per syscall or per process, with latency"
    object_file = "syscount.bpf.o"
    requires = ("bpf", "btf")
    attach_choices = ATTACH
    conflicts = (Exclusive("total", "duration", fix="give the total duration once"),)
    columns = ()
    metrics = (SYSCALLS, SECONDS)

    @classmethod
    def params(cls) -> list[Option]:
        return [
            Option("-p", "--pid", type=IntRange(min=1), help="Only this process (PID)."),
            Option("-i", "--interval", type=IntRange(min=0), default=0,
                   help="Print a summary every INTERVAL seconds (0: once, at the end)."),
            Option("-d", "total", type=IntRange(min=1),
                   help="Total duration in seconds (as --duration)."),
            Option("-T", "--top", type=IntRange(min=1), default=10, show_default=True,
                   help="Print only the top N rows."),
            Option("-x", "--failures", is_flag=True, help="Only failed system calls."),
            Option("-e", "--errno", type=Errno(),
                   help="Only system calls that failed with this errno (number or name)."),
            Option("-L", "--latency", is_flag=True, help="Also measure latency; sort by it."),
            Option("-m", "--milliseconds", is_flag=True,
                   help="Latency in milliseconds (default: microseconds)."),
            Option("-P", "--process", is_flag=True, help="Count per process, not per syscall."),
            Option("-c", "--cgroup", type=Directory(),
                   help="Only processes in this cgroup (v2 path)."),
            Option("-l", "--list", "list_syscalls", is_flag=True,
                   help="Print the known system calls and exit."),
            attach_option(PROGRAMS),
        ]

    @classmethod
    def readiness(cls) -> Readiness:
        base = super().readiness()
        if not base.ready:
            return base
        from coreframe.syscalls import syscall_table

        return Readiness(True, f"{base.detail}; syscall names: {syscall_table().origin}")

    def run(self, ctx: RunContext) -> int:
        from coreframe.syscalls import syscall_table

        o = self.options
        table = syscall_table()
        if table.source != "kernel":
            ctx.status(f"syscount: syscall names from {table.origin}")
        if o["list_syscalls"]:
            traced = kernel_syscalls()
            for nr in sorted(table.names):
                name = table.names[nr]
                note = ("" if not traced or name in traced
                        else f"  (no syscalls/sys_enter_{name} event here)")
                ctx.out.write(f"{nr:3d}: {name}{note}\n")
            return 0
        if o["total"]:
            ctx.deadline = ctx.started + o["total"]
        spec, method = open_object(
            self, PROGRAMS, targ_tgid=o["pid"] or 0, filter_failed=bool(o["failures"]),
            filter_errno=o["errno"] or 0, measure_latency=bool(o["latency"]),
            count_by_process=bool(o["process"]), filter_cg=bool(o["cgroup"]))
        assert method is not None
        if not o["latency"]:
            spec.programs[PROGRAMS[method][0]].autoload = False
            spec.maps.start.max_entries = 1
        return trace(ctx, spec, f"Tracing syscalls, printing top {o['top']}... Ctrl+C to quit.",
                     read=lambda obj: self._loop(ctx, obj, table), cgroup=o["cgroup"],
                     lost=f"counts (the map of {'processes' if o['process'] else 'syscalls'} "
                          "was full)")

    def metric_families(self) -> tuple[Counter, ...]:
        labels = ("pid", "comm") if self.options.get("process") else ("syscall",)
        families = [SYSCALLS.with_labels(labels)]
        if self.options.get("latency"):
            families.append(SECONDS.with_labels(labels))
        return tuple(families)

    def _loop(self, ctx: RunContext, obj: Any, names: SyscallTable) -> None:
        o = self.options
        interval = o["interval"]
        counts = _Counts(obj.maps.counts, names, bool(o["process"]), bool(o["latency"]))

        def print_loop(take: Callable[[], None]) -> None:
            while not ctx.should_stop():
                ctx.sleep(interval or 3600)
                if interval and not ctx.should_stop():
                    take()
                    self._print(ctx, counts.pop(), names)
            take()
            self._print(ctx, counts.pop(), names)

        if ctx.metrics is None:
            print_loop(counts.take)
        else:
            # a scrape takes from the map (and exports it); printing shows what it took
            with ctx.metrics.collecting(counts.take):
                print_loop(ctx.metrics.refresh)

    def _print(self, ctx: RunContext, rows: list[tuple[int, int, int, bytes]],
               names: SyscallTable) -> None:
        o = self.options
        if not rows:
            return
        rows.sort(key=lambda r: r[2] if o["latency"] else r[1], reverse=True)
        rows = rows[:o["top"]]
        unit_div, unit = (1e6, "ms") if o["milliseconds"] else (1e3, "us")
        if o["process"]:
            cols = [Col("PID    COMM", "who", -22, key=None), Field("pid"), Field("comm")]
        else:
            cols = [Col("SYSCALL", "syscall", -22), Field("nr")]
        cols.append(Col("COUNT", "count", 8))
        if o["latency"]:
            cols += [Col(f"TIME ({unit})", "latency", 16, ".3f", key=None),
                     Field("total_ns")]
        table = ctx.table(cols)
        if not table.as_json:
            ctx.out.write(time.strftime("[%H:%M:%S]\n") + table.header())
        for key, n, total_ns, raw_comm in rows:
            c = comm(raw_comm)
            row = {"pid": key, "comm": c, "who": f"{key:<6d} {c:<15s}", "nr": key,
                   "syscall": names.name(key), "count": n,
                   "total_ns": total_ns, "latency": total_ns / unit_div}
            ctx.out.write(table.format(row))
        if not table.as_json:
            ctx.out.write("\n")
        ctx.out.flush()
