"""cpudist: time tasks spend on a CPU per slice (or off it, -O) as log2 histograms.

Options and output follow libbpf-tools' cpudist (``-O -m -P -L -p -c -T``; its
positional interval and count are ``-i`` and ``-n``). One departure: the
on-CPU histogram counts every slice, as bcc's cpudist does, where libbpf-tools'
counts only slices that ended in a preemption (the task still runnable).
The kernel side is sched_switch as tp_btf or raw_tp.
"""

from __future__ import annotations

from coreframe.metrics import Histogram
from coreframe.options import Directory, Exclusive, IntRange, Option
from coreframe.tool import RunContext, Tool

from ._common import attach_option, open_object, trace
from ._hist import LOST_SAMPLES, hist_metric, interval_options, run_intervals

ATTACH = (
    ("tp_btf", ("tp_btf:sched_switch",), "the tasks as typed arguments"),
    ("raw_tp", ("raw_tp:sched_switch",), "the task pointers, read with CO-RE"),
)
ON_CPU = "coreframe_cpudist_on_cpu_seconds"
OFF_CPU = "coreframe_cpudist_off_cpu_seconds"
HELP = {ON_CPU: "Time on a CPU per scheduling slice",
        OFF_CPU: "Time off the CPU between scheduling slices (-O)"}
PROGRAMS = {"tp_btf": "switch_btf", "raw_tp": "switch_raw"}


class CpuDist(Tool):
    """Summarize on-CPU (or off-CPU) time per scheduling slice as a histogram."""

    name = "cpudist"
    summary = "On-CPU (or off-CPU) time per slice as log2 histograms"
    object_file = "cpudist.bpf.o"
    requires = ("bpf", "btf")
    attach_choices = ATTACH
    conflicts = (Exclusive("per_process", "per_thread", fix="pick one grouping"),)
    columns = ()
    metrics = (hist_metric(ON_CPU, HELP[ON_CPU], {}), hist_metric(OFF_CPU, HELP[OFF_CPU], {}))

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
            attach_option(PROGRAMS),
        ]

    def metric_families(self) -> tuple[Histogram, ...]:
        o = self.options
        name = OFF_CPU if o.get("offcpu") else ON_CPU
        labels = (("pid", "comm") if o.get("per_process") else
                  ("tid", "comm") if o.get("per_thread") else ())
        return (hist_metric(name, HELP[name], o, labels),)

    def run(self, ctx: RunContext) -> int:
        o = self.options
        spec, method = open_object(
            self, PROGRAMS, targ_per_process=bool(o["per_process"]),
            targ_per_thread=bool(o["per_thread"]), targ_offcpu=bool(o["offcpu"]),
            targ_ms=bool(o["milliseconds"]), targ_tgid=o["pid"] or 0,
            filter_cg=bool(o["cgroup"]))
        unit = "msecs" if o["milliseconds"] else "usecs"

        def label(key: int, comm: str) -> tuple[str | None, dict]:
            if o["per_process"]:
                return f"\npid = {key} {comm}", {"pid": key, "comm": comm}
            if o["per_thread"]:
                return f"\ntid = {key} {comm}", {"tid": key, "comm": comm}
            return None, {}

        what = "off-CPU" if o["offcpu"] else "on-CPU"
        return trace(ctx, spec, f"Tracing {what} time ({method})... Hit Ctrl-C to end.",
                     read=lambda obj: run_intervals(ctx, o, obj.maps.hists, unit, label,
                                                   self.metric_families()[0].name),
                     cgroup=o["cgroup"], lost=LOST_SAMPLES)
