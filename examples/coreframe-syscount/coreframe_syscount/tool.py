"""syscount: system calls per process, every interval — a complete third-party tool."""

from __future__ import annotations

import time
from typing import Any

import click

from coreframe.output import json_line
from coreframe.tool import RunContext, Tool


class SysCount(Tool):
    """Counts system calls per process on the raw sys_enter tracepoint."""

    name = "syscount"
    summary = "System calls per process, top N every interval"
    object_file = "syscount.bpf.o"
    requires = ("bpf",)

    @classmethod
    def params(cls) -> list[click.Parameter]:
        return [
            click.Option(["-p", "--pid"], type=int, default=0, help="Only this process (tgid)."),
            click.Option(["-i", "--interval"], type=float, default=1.0, show_default=True),
            click.Option(["--top"], type=int, default=10, show_default=True),
            click.Option(["--json", "as_json"], is_flag=True, help="One JSON object per line."),
        ]

    def run(self, ctx: RunContext) -> int:
        import coreframe

        opts: dict[str, Any] = self.options
        spec = coreframe.open(self.object_path())
        spec.rodata.targ_tgid = opts["pid"]
        with spec.load() as obj:
            obj.attach()
            counts = obj.maps.counts
            ctx.status("Tracing system calls... Ctrl-C to end.")
            while not ctx.should_stop():
                ctx.sleep(opts["interval"])
                rows = []
                # keys and values come typed from the object's BTF: an int pid and a
                # `struct counter` with .calls and .comm (a str)
                for pid, c in counts.items():
                    rows.append((pid, c.comm, c.calls))
                    counts.delete(pid)
                rows.sort(key=lambda r: r[2], reverse=True)
                self._print(ctx, rows[: opts["top"]], opts["as_json"])
        return 0

    @staticmethod
    def _print(ctx: RunContext, rows: list[tuple[int, str, int]], as_json: bool) -> None:
        now = time.time()
        if as_json:
            for pid, comm, calls in rows:
                json_line({"time": now, "pid": pid, "comm": comm, "calls": calls}, ctx.out)
            return
        print(time.strftime("%H:%M:%S"), file=ctx.out)
        print(f"{'PID':>7} {'COMM':<16} {'CALLS':>10}", file=ctx.out)
        for pid, comm, calls in rows:
            print(f"{pid:>7} {comm:<16} {calls:>10}", file=ctx.out)
        print(file=ctx.out, flush=True)
