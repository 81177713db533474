"""biolatency: block I/O latency as log2 histograms, per disk and/or request flags.

Options and output follow libbpf-tools' biolatency (``-Q -D -F -m -d -c -T``;
its positional interval and count are ``-i`` and ``-n``). Request flags are
decoded by the kernel's own enum req_flag_bits values (CO-RE), so ``-F`` names
the right flags on every kernel. The kernel side is block_rq_insert/issue/
complete as tp_btf or raw_tp.
"""

from __future__ import annotations

from coreframe.metrics import Histogram
from coreframe.options import Directory, Option
from coreframe.tool import RunContext, Tool

from ._blk import dev_of, disks, flags_text
from ._common import attach_option, open_object, trace
from ._hist import LOST_SAMPLES, hist_metric, interval_options, run_intervals

ATTACH = (
    ("tp_btf", ("tp_btf:block_rq_issue", "tp_btf:block_rq_complete",
                "tp_btf:block_rq_insert"), "the request as a typed argument"),
    ("raw_tp", ("raw_tp:block_rq_issue", "raw_tp:block_rq_complete",
                "raw_tp:block_rq_insert"), "the request pointer, read with CO-RE"),
)
LATENCY = "coreframe_biolatency_seconds"
LATENCY_HELP = "Block I/O latency: issue (or, with -Q, insertion) to completion"
PROGRAMS = {"tp_btf": ("insert_btf", "issue_btf", "complete_btf"),
            "raw_tp": ("insert_raw", "issue_raw", "complete_raw")}


class BioLatency(Tool):
    """Summarize block device I/O latency as a histogram."""

    name = "biolatency"
    summary = "Block I/O latency as log2 histograms (per disk, per flags)"
    object_file = "biolatency.bpf.o"
    requires = ("bpf", "btf")
    attach_choices = ATTACH
    columns = ()
    metrics = (hist_metric(LATENCY, LATENCY_HELP, {}),)

    @classmethod
    def params(cls) -> list[Option]:
        return [
            *interval_options(),
            Option("-Q", "--queued", is_flag=True, help="Include OS queued time."),
            Option("-D", "--disk", "per_disk", is_flag=True, help="One histogram per disk."),
            Option("-F", "--flag", "per_flag", is_flag=True,
                   help="One histogram per set of request flags."),
            Option("-m", "--milliseconds", is_flag=True, help="Milliseconds histogram."),
            Option("-d", "disk", help="Only this disk (e.g. sda, loop0)."),
            Option("-c", "--cgroup", type=Directory(),
                   help="Only I/O issued in this cgroup (v2 path)."),
            attach_option(PROGRAMS),
        ]

    def metric_families(self) -> tuple[Histogram, ...]:
        o = self.options
        labels = ("disk",) * bool(o.get("per_disk")) + ("flags",) * bool(o.get("per_flag"))
        return (hist_metric(LATENCY, LATENCY_HELP, o, labels),)

    def run(self, ctx: RunContext) -> int:
        o = self.options
        targ_dev = dev_of(o["disk"]) if o["disk"] else None
        spec, method = open_object(
            self, PROGRAMS, targ_per_disk=bool(o["per_disk"]),
            targ_per_flag=bool(o["per_flag"]), targ_queued=bool(o["queued"]),
            targ_ms=bool(o["milliseconds"]), filter_dev=targ_dev is not None,
            targ_dev=targ_dev or 0, filter_cg=bool(o["cgroup"]))
        assert method is not None
        if not o["queued"]:
            spec.programs[PROGRAMS[method][0]].autoload = False
        unit = "msecs" if o["milliseconds"] else "usecs"
        names = disks()

        def label(key: int, _comm: str) -> tuple[str | None, dict]:
            dev, flags = key & 0xFFFFFFFF, key >> 32
            title, labels = "", {}
            if o["per_disk"]:
                name = names.get(dev) or disks().get(dev, "Unknown")
                title += f"\ndisk = {name}\t"
                labels["disk"] = name
            if o["per_flag"]:
                title += f"flags = {flags_text(flags)}"
                labels["flags"] = flags_text(flags)
            return title, labels

        return trace(ctx, spec, f"Tracing block device I/O ({method})... Hit Ctrl-C to end.",
                     read=lambda obj: run_intervals(ctx, o, obj.maps.hists, unit, label, LATENCY),
                     cgroup=o["cgroup"], lost=LOST_SAMPLES)
