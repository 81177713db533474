"""runqlat: run-queue latency (wakeup or preemption to running) as log2 histograms.

Options and output follow libbpf-tools' runqlat (``-m -p -P -L --pidnss -c -T``;
its positional interval and count are ``-i`` and ``-n`` here). The kernel side
runs on sched_wakeup, sched_wakeup_new and sched_switch as tp_btf or raw_tp.
"""

from __future__ import annotations

from coreframe.metrics import Histogram
from coreframe.options import Directory, Exclusive, IntRange, Option
from coreframe.tool import RunContext, Tool

from ._common import attach_option, open_object, trace
from ._hist import LOST_SAMPLES, hist_metric, interval_options, run_intervals

ATTACH = (
    ("tp_btf", ("tp_btf:sched_switch", "tp_btf:sched_wakeup", "tp_btf:sched_wakeup_new"),
     "the tasks as typed arguments"),
    ("raw_tp", ("raw_tp:sched_switch", "raw_tp:sched_wakeup", "raw_tp:sched_wakeup_new"),
     "the task pointers, read with CO-RE"),
)
LATENCY = "coreframe_runqlat_latency_seconds"
LATENCY_HELP = "Run-queue latency: from wakeup (or preemption) to running on a CPU"
# the histogram's labels for each grouping option, in label()'s order
GROUP_LABELS = (("per_process", ("pid", "comm")), ("per_thread", ("tid", "comm")),
                ("per_pidns", ("pidns",)))
PROGRAMS = {"tp_btf": ("wakeup_btf", "wakeup_new_btf", "switch_btf"),
            "raw_tp": ("wakeup_raw", "wakeup_new_raw", "switch_raw")}


class RunqLat(Tool):
    """Summarize run-queue (scheduler) latency as a histogram."""

    name = "runqlat"
    summary = "Run-queue latency as log2 histograms (per process, thread or PID namespace)"
    object_file = "runqlat.bpf.o"
    requires = ("bpf", "btf")
    attach_choices = ATTACH
    conflicts = (Exclusive("per_process", "per_thread", "per_pidns",
                           fix="pick one grouping"),)
    columns = ()
    metrics = (hist_metric(LATENCY, LATENCY_HELP, {}),)

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
            attach_option(PROGRAMS),
        ]

    def metric_families(self) -> tuple[Histogram, ...]:
        labels = next((names for k, names in GROUP_LABELS if self.options.get(k)), ())
        return (hist_metric(LATENCY, LATENCY_HELP, self.options, labels),)

    def run(self, ctx: RunContext) -> int:
        o = self.options
        spec, method = open_object(
            self, PROGRAMS, targ_ms=bool(o["milliseconds"]), targ_tgid=o["pid"] or 0,
            filter_cg=bool(o["cgroup"]),
            **{f"targ_{k}": bool(o[k]) for k in ("per_process", "per_thread", "per_pidns")})
        unit = "msecs" if o["milliseconds"] else "usecs"

        def label(key: int, comm: str) -> tuple[str | None, dict]:
            if o["per_process"]:
                return f"\npid = {key} {comm}", {"pid": key, "comm": comm}
            if o["per_thread"]:
                return f"\ntid = {key} {comm}", {"tid": key, "comm": comm}
            if o["per_pidns"]:
                return f"\npidns = {key} {comm}", {"pidns": key}
            return None, {}

        return trace(ctx, spec, f"Tracing run queue latency ({method})... Hit Ctrl-C to end.",
                     read=lambda obj: run_intervals(ctx, o, obj.maps.hists, unit, label, LATENCY),
                     cgroup=o["cgroup"], lost=LOST_SAMPLES)
