"""syslat: system call latency as a log2 histogram every interval (libbpf-tools' layout)."""

import time

from coreframe.options import FloatRange, IntRange, Option
from coreframe.tool import RunContext, Tool


class SysLat(Tool):
    """Reads (and clears) the in-kernel histogram every interval; --json gives its rows."""

    name = "syslat"
    summary = "Histogram of system call latency"
    object_file = "syslat.bpf.o"
    requires = ("bpf", "btf", "tracepoint:raw_syscalls/sys_exit")
    columns = ()          # histograms only: still gets --json

    @classmethod
    def params(cls) -> list[Option]:
        return [Option("-p", "--pid", type=IntRange(min=1), help="Only this process."),
                Option("-s", "--syscall", type=IntRange(min=0), help="Only this syscall nr."),
                Option("-i", "--interval", type=FloatRange(min=0.01), default=1.0),
                Option("-c", "--count", type=IntRange(min=1), help="Stop after N intervals.")]

    def run(self, ctx: RunContext) -> int:
        import coreframe

        o = self.options
        spec = coreframe.open(self.object_path())
        spec.rodata.targ_tgid = o["pid"] or 0
        spec.rodata.targ_nr = -1 if o["syscall"] is None else o["syscall"]
        with spec.load() as obj:
            obj.attach()
            hists = obj.maps.hists   # values typed from BTF: struct hist, .slots a list
            ctx.status("Tracing system calls... Ctrl-C to end.")
            intervals = 0
            while True:  # a report per interval, and one for the part Ctrl-C cut short
                ctx.sleep(o["interval"])
                slots = list(hists.lookup(0).slots)
                hists.update(0, bytes(hists.value_size))   # the next interval starts empty
                ctx.hist(slots, "usecs", title=time.strftime("%H:%M:%S"))
                intervals += 1
                if ctx.should_stop() or intervals == o["count"]:
                    break
        return 0
