"""exitsnoop: trace process (or thread) exits: exit code or signal, and lifetime.

Options and columns follow libbpf-tools' exitsnoop (``-x -t -p -T -c``); ``--json``
gives each exit as an object. The kernel side runs on sched_process_exit, attached
as tp_btf, raw_tp or a tracepoint, whichever this kernel offers first.
"""

from __future__ import annotations

import struct

from coreframe.metrics import Counter, Histogram
from coreframe.options import Directory, IntRange, Option
from coreframe.output import Col, Field
from coreframe.tool import RunContext, Tool

from ._common import attach_option, comm, metered, open_object, signal_name, trace

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from coreframe.metrics import MetricSet


_EVENT = struct.Struct("<QQIIII16s")     # struct event, bpf/exitsnoop.h

ATTACH = (
    ("tp_btf", ("tp_btf:sched_process_exit",),
     "the exiting task as a typed argument, no tracepoint record built"),
    ("raw_tp", ("raw_tp:sched_process_exit",), "raw arguments, no tracepoint record built"),
    ("tracepoint", ("tracepoint:sched/sched_process_exit",),
     "the perf-event tracepoint (kernels without raw tracepoint programs)"),
)
EXITS = Counter("coreframe_exitsnoop_exits", "Process (or, with -T, thread) exits, by program",
                ("comm",))
EXIT_CODES = Counter("coreframe_exitsnoop_exit_codes",
                     "Exits by exit code, or by the signal that ended them (SIGKILL, ...)",
                     ("code",))
LIFETIME = Histogram("coreframe_exitsnoop_lifetime_seconds",
                     "Lifetime of the exiting processes (log2 buckets)", scale=1e-9)
PROGRAMS = {"tp_btf": "exit_btf", "raw_tp": "exit_raw", "tracepoint": "exit_tp"}


def _describe(status: int) -> str:
    """libbpf-tools' EXIT_CODE text for a wait(2) status."""
    sig, code = status & 0x7F, (status >> 8) & 0xFF
    if not status & 0xFF:
        return f"code {code}" if code else "0"
    text = ""
    if sig:
        import signal

        text = f"signal {sig} ({signal.strsignal(sig) or 'Unknown signal ' + str(sig)})"
    if status & 0x80:
        text += ", core dumped"
    return text


def _count(ms: MetricSet, r: dict[str, Any]) -> None:
    ms.inc(EXITS.name, (r["comm"],))
    sig = r["signal"]
    ms.inc(EXIT_CODES.name, (signal_name(sig) if sig else str(r["exit_code"]),))
    ms.observe(LIFETIME.name, (), r["age_ns"])


class ExitSnoop(Tool):
    """One line per process exit: name, ids, age and how it ended."""

    name = "exitsnoop"
    summary = "Trace process exits: exit code, signal and lifetime"
    object_file = "exitsnoop.bpf.o"
    requires = ("bpf", "btf", "ringbuf")
    attach_choices = ATTACH
    columns = (Col("PCOMM", "comm", -16), Col("PID", "pid", -7), Col("PPID", "ppid", -7),
               Col("TID", "tid", -7), Col("AGE(s)", "age", -7, ".2f"),
               Col("EXIT_CODE", "text", key=None), Field("exit_code"), Field("signal"),
               Field("core_dumped"))
    time_field = "ts"
    time_columns = False
    metrics = (EXITS, EXIT_CODES, LIFETIME)

    @classmethod
    def params(cls) -> list[Option]:
        return [
            Option("-t", "--timestamp", "time", is_flag=True,
                   help="Include a time column (HH:MM:SS)."),
            Option("-x", "--failed", is_flag=True, help="Only exits with a non-zero status."),
            Option("-p", "--pid", type=IntRange(min=1), help="Only this process (PID)."),
            Option("-T", "--threaded", is_flag=True, help="Trace every thread's exit."),
            Option("-c", "--cgroup", type=Directory(),
                   help="Only processes in this cgroup (v2 path)."),
            attach_option(PROGRAMS),
        ]

    def run(self, ctx: RunContext) -> int:
        o = self.options
        spec, method = open_object(self, PROGRAMS, targ_tgid=o["pid"] or 0,
                                   failed_only=bool(o["failed"]),
                                   by_thread=bool(o["threaded"]),
                                   filter_cg=bool(o["cgroup"]))
        emit = metered(ctx, _count)
        unpack = _EVENT.unpack_from

        def handle(rec: memoryview) -> None:
            start, end, pid, tid, ppid, status, raw_comm = unpack(rec)
            emit({"ts": end, "comm": comm(raw_comm), "pid": pid, "ppid": ppid, "tid": tid,
                  "age": (end - start) / 1e9, "age_ns": end - start, "text": _describe(status),
                  "exit_code": (status >> 8) & 0xFF, "signal": status & 0x7F,
                  "core_dumped": bool(status & 0x80)})

        return trace(ctx, spec, f"Tracing process exits ({method})... Ctrl-C to end.",
                     handle=handle, cgroup=o["cgroup"])
