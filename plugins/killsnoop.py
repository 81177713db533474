"""killsnoop: trace signals sent by kill(), tkill() and tgkill(), with their results.

Columns and options follow libbpf-tools' killsnoop (its sigsnoop limited to the
kill system calls): ``-x -p -s -n``; ``--json`` adds the system call and, for
tgkill(), the target's thread group.
"""

from __future__ import annotations

import struct

from coreframe.metrics import Counter
from coreframe.options import IntRange, Option
from coreframe.output import Col, Field
from coreframe.tool import RunContext, Tool

from ._common import comm, errno_name, metered, open_object, signal_name, trace

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from coreframe.metrics import MetricSet

_EVENT = struct.Struct("<QIIiiiiII16s")      # struct event, bpf/killsnoop.h
CALLS = ("kill", "tkill", "tgkill")
ATTACH = (("tracepoint", tuple(f"tracepoint:syscalls/sys_{d}_{c}" for c in CALLS
                               for d in ("enter", "exit")),
           "per-syscall syscalls/sys_{enter,exit}_{kill,tkill,tgkill}: only these calls "
           "run the programs"),)
SIGNALS = Counter("coreframe_killsnoop_signals",
                  "Signals sent by kill(), tkill() and tgkill(), by signal and system call",
                  ("signal", "syscall"))
FAILURES = Counter("coreframe_killsnoop_failures", "Calls that failed, by signal and errno",
                   ("signal", "errno"))


class SignalSet:
    """``-s 1,9,15``: signal numbers separated by commas, as a mask (bit sig-1)."""

    def convert(self, text: str) -> int:
        mask = 0
        for part in text.split(","):
            sig = int(part)
            if not 1 <= sig <= 64:
                raise ValueError(part)
            mask |= 1 << (sig - 1)
        return mask

    def to_click(self, click: Any) -> Any:
        outer = self

        class SignalsType(click.ParamType):
            name = "SIGNALS"

            def convert(self, value: Any, param: Any, ctx: Any) -> int:
                if isinstance(value, int):
                    return value
                try:
                    return outer.convert(value)
                except ValueError:
                    self.fail(f"{value!r} is not a list of signal numbers 1-64 "
                              "separated by commas (e.g. 1,9,15)", param, ctx)

        return SignalsType()


def _count(ms: MetricSet, r: dict[str, Any]) -> None:
    sig = signal_name(r["sig"])
    ms.inc(SIGNALS.name, (sig, str(r["syscall"])))
    if r["ret"] < 0:
        ms.inc(FAILURES.name, (sig, errno_name(-r["ret"])))


class KillSnoop(Tool):
    """One line per kill()/tkill()/tgkill(): sender, signal, target and result."""

    name = "killsnoop"
    summary = "Trace signals sent by kill(), tkill() and tgkill()"
    object_file = "killsnoop.bpf.o"
    requires = ("bpf", "btf", "ringbuf", "tracepoint:syscalls/sys_enter_kill")
    attach_choices = ATTACH
    columns = (Col("PID", "pid", -7), Col("COMM", "comm", -16), Col("SIG", "sig_text", -9,
               key=None), Field("sig"), Col("TPID", "tpid", -7), Field("tgid"),
               Field("syscall"), Col("RESULT", "ret", -6))
    time_field = "ts"
    metrics = (SIGNALS, FAILURES)

    @classmethod
    def params(cls) -> list[Option]:
        return [
            Option("-x", "--failed", is_flag=True, help="Only failed calls."),
            Option("-p", "--pid", type=IntRange(min=1), help="Only calls from this process."),
            Option("-s", "--signal", "signals", type=SignalSet(), default=0,
                   help="Only these signals (numbers separated by commas)."),
            Option("-n", "--name", "signal_names", is_flag=True,
                   help="Print signal names instead of numbers."),
        ]

    def run(self, ctx: RunContext) -> int:
        o = self.options
        o["time"] = True        # libbpf-tools' killsnoop always starts with TIME
        spec, _ = open_object(self, targ_tgid=o["pid"] or 0, targ_signals=o["signals"],
                              failed_only=bool(o["failed"]))
        names = bool(o["signal_names"])
        emit = metered(ctx, _count)
        unpack = _EVENT.unpack_from

        def handle(rec: memoryview) -> None:
            ts, pid, _tid, tpid, tgid, sig, ret, call, _pad, raw_comm = unpack(rec)
            emit({"ts": ts, "pid": pid, "comm": comm(raw_comm), "sig": sig,
                  "sig_text": signal_name(sig) if names else sig, "tpid": tpid,
                  "tgid": tgid, "syscall": CALLS[call] if call < 3 else call, "ret": ret})

        return trace(ctx, spec, "Tracing kill()s... Ctrl-C to end.", handle=handle)
