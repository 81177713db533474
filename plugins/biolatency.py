"""biolatency: block I/O latency as log2 histograms, per disk and/or request flags.

Options and output follow libbpf-tools' biolatency (``-Q -D -F -m -d -c -T``;
its positional interval and count are ``-i`` and ``-n``). Request flags are
decoded by the kernel's own enum req_flag_bits values (CO-RE), so ``-F`` names
the right flags on every kernel. The kernel side is block_rq_insert/issue/
complete as tp_btf or raw_tp.
"""

from __future__ import annotations

from coreframe.options import Choice, Directory, Option
from coreframe.tool import Readiness, RunContext, Tool, choose_attach

from ._blk import dev_of, disks, flags_text
from ._common import cgroup_fd, load_only, pick
from ._hist import interval_options, run_intervals

ATTACH = (
    ("tp_btf", ("tp_btf:block_rq_issue", "tp_btf:block_rq_complete",
                "tp_btf:block_rq_insert"), "the request as a typed argument"),
    ("raw_tp", ("raw_tp:block_rq_issue", "raw_tp:block_rq_complete",
                "raw_tp:block_rq_insert"), "the request pointer, read with CO-RE"),
)
PROGRAMS = {"tp_btf": ("insert_btf", "issue_btf", "complete_btf"),
            "raw_tp": ("insert_raw", "issue_raw", "complete_raw")}


class BioLatency(Tool):
    """Summarize block device I/O latency as a histogram."""

    name = "biolatency"
    summary = "Block I/O latency as log2 histograms (per disk, per flags)"
    object_file = "biolatency.bpf.o"
    requires = ("bpf", "btf")
    columns = ()

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
        targ_dev = dev_of(o["disk"]) if o["disk"] else None
        method = pick(self.name, ATTACH, o["attach"])
        spec = coreframe.open(self.object_path())
        spec.rodata.targ_per_disk = bool(o["per_disk"])
        spec.rodata.targ_per_flag = bool(o["per_flag"])
        spec.rodata.targ_queued = bool(o["queued"])
        spec.rodata.targ_ms = bool(o["milliseconds"])
        spec.rodata.filter_dev = targ_dev is not None
        spec.rodata.targ_dev = targ_dev or 0
        spec.rodata.filter_cg = bool(o["cgroup"])
        load_only(spec, method, PROGRAMS)
        if not o["queued"]:
            spec.programs[PROGRAMS[method][0]].autoload = False
        cg = cgroup_fd(o["cgroup"]) if o["cgroup"] else None
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

        try:
            with spec.load() as obj:
                if cg is not None:
                    obj.maps.cgroup_map.update(0, cg)
                obj.attach()
                ctx.status(f"Tracing block device I/O ({method})... Hit Ctrl-C to end.")
                run_intervals(ctx, o, obj.maps.hists, unit, label)
                dropped = int(obj.bss.dropped)
                ctx.lost(dropped, message=f"Lost {dropped} samples (histogram map full).")
        finally:
            if cg is not None:
                os.close(cg)
        return 0
