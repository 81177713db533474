"""cpudist: time tasks spend on a CPU per slice (or off it, -O) as log2 histograms.

Options and output follow libbpf-tools' cpudist (``-O -m -P -L -p -c -T``; its
positional interval and count are ``-i`` and ``-n``). One departure: the
on-CPU histogram counts every slice, as bcc's cpudist does, where libbpf-tools'
counts only slices that ended in a preemption (the task still runnable).
The kernel side is sched_switch as tp_btf or raw_tp.
"""

from __future__ import annotations

from coreframe.errors import ToolError
from coreframe.options import Choice, Directory, IntRange, Option
from coreframe.tool import Readiness, RunContext, Tool, choose_attach

from ._common import cgroup_fd, load_only, pick
from ._hist import interval_options, run_intervals

ATTACH = (
    ("tp_btf", ("tp_btf:sched_switch",), "the tasks as typed arguments"),
    ("raw_tp", ("raw_tp:sched_switch",), "the task pointers, read with CO-RE"),
)
PROGRAMS = {"tp_btf": "switch_btf", "raw_tp": "switch_raw"}


class CpuDist(Tool):
    """Summarize on-CPU (or off-CPU) time per scheduling slice as a histogram."""

    name = "cpudist"
    summary = "On-CPU (or off-CPU) time per slice as log2 histograms"
    object_file = "cpudist.bpf.o"
    requires = ("bpf", "btf")
    columns = ()

    @classmethod
    def params(cls) -> list[Option]:
        return [
            *interval_options(),
            Option("-O", "--offcpu", is_flag=True, help="Measure off-CPU time."),
            Option("-m", "--milliseconds", is_flag=True, help="Milliseconds histogram."),
            Option("-P", "--pids", "per_process", is_flag=True,
                   help="One histogram per process."),
            Option("-L", "--tids", "per_thread", is_flag=True,
                   help="One histogram per thread."),
            Option("-p", "--pid", type=IntRange(min=1), help="Only this process (PID)."),
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
        if o["per_process"] and o["per_thread"]:
            raise ToolError("-P and -L cannot be used together: pick one grouping")
        method = pick(self.name, ATTACH, o["attach"])
        spec = coreframe.open(self.object_path())
        spec.rodata.targ_per_process = bool(o["per_process"])
        spec.rodata.targ_per_thread = bool(o["per_thread"])
        spec.rodata.targ_offcpu = bool(o["offcpu"])
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
            return None, {}

        try:
            with spec.load() as obj:
                if cg is not None:
                    obj.maps.cgroup_map.update(0, cg)
                obj.attach()
                what = "off-CPU" if o["offcpu"] else "on-CPU"
                ctx.status(f"Tracing {what} time ({method})... Hit Ctrl-C to end.")
                run_intervals(ctx, o, obj.maps.hists, unit, label)
                dropped = int(obj.bss.dropped)
                ctx.lost(dropped, message=f"Lost {dropped} samples (histogram map full).")
        finally:
            if cg is not None:
                os.close(cg)
        return 0
