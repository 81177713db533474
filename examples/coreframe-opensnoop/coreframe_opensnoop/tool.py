"""opensnoop: trace open() and openat() with their results, libbpf-tools' columns."""

from coreframe.options import IntRange, Option
from coreframe.output import Col
from coreframe.tool import RunContext, Tool


class OpenSnoop(Tool):
    """One line per open()/openat(): who, the fd or errno, and the path."""

    name = "opensnoop"
    summary = "Trace open() and openat() calls"
    object_file = "opensnoop.bpf.o"
    requires = ("bpf", "btf", "ringbuf", "tracepoint:syscalls/sys_exit_openat")
    columns = (Col("UID", "uid", -7, when="print_uid"), Col("PID", "pid", -6),
               Col("COMM", "comm", -16), Col("FD", "fd", 3), Col("ERR", "err", 3),
               Col("PATH", "path"))
    time_field = "ts"     # -T / -t from the record's bpf_ktime_get_ns()
    time_columns = True

    @classmethod
    def params(cls) -> list[Option]:
        return [Option("-p", "--pid", type=IntRange(min=1), help="Only this process."),
                Option("-u", "--uid", type=IntRange(0, 2**32 - 2), help="Only this user."),
                Option("-x", "--failed", is_flag=True, help="Only failed opens."),
                Option("-U", "--print-uid", is_flag=True, help="Print a UID column.")]

    def run(self, ctx: RunContext) -> int:
        import coreframe

        o = self.options
        spec = coreframe.open(self.object_path())
        spec.rodata.targ_tgid = o["pid"] or 0
        spec.rodata.targ_uid = 2**32 - 1 if o["uid"] is None else o["uid"]  # -1: any
        spec.rodata.targ_failed = o["failed"]
        with spec.load() as obj:
            obj.attach()
            ctx.status("Tracing open()s... Ctrl-C to end.")
            for event in ctx.records(obj.maps.events, "struct event"):
                ctx.emit(event)
            ctx.lost(obj.bss.dropped, message=f"Lost {obj.bss.dropped} events.")
        return 0
