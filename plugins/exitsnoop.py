"""exitsnoop: trace process (or thread) exits: exit code or signal, and lifetime.

Options and columns follow libbpf-tools' exitsnoop (``-x -t -p -T -c``); ``--json``
gives each exit as an object. The kernel side runs on sched_process_exit, attached
as tp_btf, raw_tp or a tracepoint, whichever this kernel offers first.
"""

from __future__ import annotations

import struct

from coreframe.options import Choice, Directory, IntRange, Option
from coreframe.output import Col, Field
from coreframe.tool import Readiness, RunContext, Tool, choose_attach

from ._common import cgroup_fd, comm, load_only, pick, stream

_EVENT = struct.Struct("<QQIIII16s")     # struct event, bpf/exitsnoop.h

ATTACH = (
    ("tp_btf", ("tp_btf:sched_process_exit",),
     "the exiting task as a typed argument, no tracepoint record built"),
    ("raw_tp", ("raw_tp:sched_process_exit",), "raw arguments, no tracepoint record built"),
    ("tracepoint", ("tracepoint:sched/sched_process_exit",),
     "the perf-event tracepoint (kernels without raw tracepoint programs)"),
)
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


class ExitSnoop(Tool):
    """One line per process exit: name, ids, age and how it ended."""

    name = "exitsnoop"
    summary = "Trace process exits: exit code, signal and lifetime"
    object_file = "exitsnoop.bpf.o"
    requires = ("bpf", "btf", "ringbuf")
    columns = (Col("PCOMM", "comm", -16), Col("PID", "pid", -7), Col("PPID", "ppid", -7),
               Col("TID", "tid", -7), Col("AGE(s)", "age", -7, ".2f"),
               Col("EXIT_CODE", "text", key=None), Field("exit_code"), Field("signal"),
               Field("core_dumped"))
    time_field = "ts"
    time_columns = False

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
            Option("--attach", type=Choice(["auto", *PROGRAMS]), default="auto",
                   show_default=True,
                   help="Attach method (auto: the first this kernel offers, see info)."),
        ]

    @classmethod
    def readiness(cls) -> Readiness:
        base = super().readiness()
        if not base.ready:
            return base
        choice = choose_attach(ATTACH)
        return Readiness(choice.method is not None, choice.detail)

    def run(self, ctx: RunContext) -> int:
        import os

        import coreframe

        o = self.options
        method = pick(self.name, ATTACH, o["attach"])
        spec = coreframe.open(self.object_path())
        spec.rodata.targ_tgid = o["pid"] or 0
        spec.rodata.failed_only = bool(o["failed"])
        spec.rodata.by_thread = bool(o["threaded"])
        spec.rodata.filter_cg = bool(o["cgroup"])
        load_only(spec, method, PROGRAMS)
        cg = cgroup_fd(o["cgroup"]) if o["cgroup"] else None
        emit = ctx.emit
        unpack = _EVENT.unpack_from

        def handle(rec: memoryview) -> None:
            start, end, pid, tid, ppid, status, raw_comm = unpack(rec)
            emit({"ts": end, "comm": comm(raw_comm), "pid": pid, "ppid": ppid, "tid": tid,
                  "age": (end - start) / 1e9, "text": _describe(status),
                  "exit_code": (status >> 8) & 0xFF, "signal": status & 0x7F,
                  "core_dumped": bool(status & 0x80)})

        try:
            with spec.load() as obj:
                if cg is not None:
                    obj.maps.cgroup_map.update(0, cg)
                obj.attach()
                ctx.status(f"Tracing process exits ({method})... Ctrl-C to end.")
                stream(ctx, obj.maps.events, handle)
                dropped = int(obj.bss.dropped)
                ctx.lost(dropped, message=f"Lost {dropped} events (ring buffer full).")
        finally:
            if cg is not None:
                os.close(cg)
        return 0
