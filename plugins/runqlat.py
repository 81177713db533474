"""runqlat: run-queue latency (wakeup or preemption to running) as log2 histograms.

Options and output follow libbpf-tools' runqlat (``-m -p -P -L --pidnss -c -T``;
its positional interval and count are ``-i`` and ``-n`` here). The kernel side
runs on sched_wakeup, sched_wakeup_new and sched_switch as tp_btf or raw_tp.
"""

from __future__ import annotations

from coreframe.errors import ToolError
from coreframe.options import Choice, Directory, IntRange, Option
from coreframe.tool import Readiness, RunContext, Tool, choose_attach

from ._common import cgroup_fd, load_only, pick
from ._hist import interval_options, run_intervals

ATTACH = (
    ("tp_btf", ("tp_btf:sched_switch", "tp_btf:sched_wakeup", "tp_btf:sched_wakeup_new"),
     "the tasks as typed arguments"),
    ("raw_tp", ("raw_tp:sched_switch", "raw_tp:sched_wakeup", "raw_tp:sched_wakeup_new"),
     "the task pointers, read with CO-RE"),
)
PROGRAMS = {"tp_btf": ("wakeup_btf", "wakeup_new_btf", "switch_btf"),
            "raw_tp": ("wakeup_raw", "wakeup_new_raw", "switch_raw")}


class RunqLat(Tool):
    """Summarize run-queue (scheduler) latency as a histogram."""

    name = "runqlat"
    summary = "Run-queue latency as log2 histograms (per process, thread or PID namespace)"
    object_file = "runqlat.bpf.o"
    requires = ("bpf", "btf")
    columns = ()

    @classmethod
    def params(cls) -> list[Option]:
        return [
            *interval_options(),
            Option("-m", "--milliseconds", is_flag=True, help="Milliseconds histogram."),
            Option("-p", "--pid", type=IntRange(min=1), help="Only this process (PID)."),
            Option("-P", "--pids", "per_process", is_flag=True,
                   help="One histogram per process."),
            Option("-L", "--tids", "per_thread", is_flag=True,
                   help="One histogram per thread."),
            Option("--pidnss", "per_pidns", is_flag=True,
                   help="One histogram per PID namespace."),
            Option("-c", "--cgroup", type=Directory(),
                   help="Only tasks in this cgroup (v2 path)."),
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
        if sum(bool(o[k]) for k in ("per_process", "per_thread", "per_pidns")) > 1:
            raise ToolError("-P, -L and --pidnss cannot be used together: pick one grouping")
        method = pick(self.name, ATTACH, o["attach"])
        spec = coreframe.open(self.object_path())
        for k in ("per_process", "per_thread", "per_pidns"):
            setattr(spec.rodata, f"targ_{k}", bool(o[k]))
        spec.rodata.targ_ms = bool(o["milliseconds"])
        spec.rodata.targ_tgid = o["pid"] or 0
        spec.rodata.filter_cg = bool(o["cgroup"])
        load_only(spec, method, PROGRAMS)
        cg = cgroup_fd(o["cgroup"]) if o["cgroup"] else None
        unit = "msecs" if o["milliseconds"] else "usecs"

        def label(key: int, comm: str) -> tuple[str | None, dict]:
            if o["per_process"]:
                return f"\npid = {key} {comm}", {"pid": key, "comm": comm}
            if o["per_thread"]:
                return f"\ntid = {key} {comm}", {"tid": key, "comm": comm}
            if o["per_pidns"]:
                return f"\npidns = {key} {comm}", {"pidns": key}
            return None, {}

        try:
            with spec.load() as obj:
                if cg is not None:
                    obj.maps.cgroup_map.update(0, cg)
                obj.attach()
                ctx.status(f"Tracing run queue latency ({method})... Hit Ctrl-C to end.")
                run_intervals(ctx, o, obj.maps.hists, unit, label)
                dropped = int(obj.bss.dropped)
                ctx.lost(dropped, message=f"Lost {dropped} samples (histogram map full).")
        finally:
            if cg is not None:
                os.close(cg)
        return 0
