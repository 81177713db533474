"""profile: sample what runs on the CPUs, with kernel and user stacks.

Options and output follow libbpf-tools' profile: a multi-line stack per
(process, kernel stack, user stack) with its sample count, or with ``-f`` one
folded line per stack (``comm;user frames;kernel frames count``, root first), the
format flame-graph tools read. ``--flamegraph FILE.svg`` (or ``.html``) also writes
an interactive flame graph, and ``--json`` prints one object per stack.

Sampling: one perf event per CPU (``-C`` for one), the software cpu-clock event at
``-F`` Hz or every ``-c`` nanoseconds of CPU time, with a perf_event BPF program
that counts samples per (pid, comm, kernel stack id, user stack id) in the kernel.
Stacks are read and symbolized when sampling ends: kernel frames from
/proc/kallsyms, user frames from the ELF symbol tables of the files mapped in each
process (read when the process is first seen sampling, so processes that exit
before the end keep their names). ``-p``/``-L`` filter in the kernel.
"""

from __future__ import annotations

import os
import struct
import time

from coreframe.errors import ToolError
from coreframe.metrics import Counter
from coreframe.options import Exclusive, IntRange, Option
from coreframe.tool import Readiness, RunContext, Tool

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from coreframe.metrics import MetricSet

# Layout of bpf/profile.h.
TASK_COMM_LEN = 16
PERF_MAX_STACK_DEPTH = 127
MAX_PID_NR = 30
MAX_TID_NR = 30
_KEY = struct.Struct("<Iii16s")
EFAULT = 14
EEXIST = 17
NOT_COLLECTED = -1  # what the program stores for the half -U/-K leave out

DEFAULT_FREQUENCY = 99
# Unique stacks the stack-trace map holds. bcc's default, not libbpf-tools' 1024: a
# stack's bucket is a hash of its addresses and stays taken by the first stack that
# lands in it, so a map near full loses most new stacks (-EEXIST), and every address
# inside a hot loop is a stack of its own. 16k entries of 127 frames are 16 MiB of
# kernel memory, charged to the memory cgroup.
STACK_STORAGE_SIZE = 16384
# How often the tool looks for processes it has not seen yet, to read their mappings
# while they still exist (a process sampled and gone before the end would otherwise
# have nothing to symbolize its user stack with).
SCAN_INTERVAL_S = 1.0

SAMPLES = Counter("coreframe_profile_samples", "CPU samples taken, by the program on the CPU",
                  ("comm",))

MISSED_USER = "[Missed User Stack]"
MISSED_KERNEL = "[Missed Kernel Stack]"


class IdList:
    """Comma-separated positive ids (``-p 12,34``), at most ``limit`` of them."""

    def __init__(self, what: str, limit: int) -> None:
        self.what = what
        self.limit = limit

    def convert(self, text: str) -> tuple[int, ...]:
        ids = tuple(int(part) for part in text.split(","))
        if not ids or len(ids) > self.limit or min(ids) < 1:
            raise ValueError(text)
        return ids

    def to_click(self, click: Any) -> Any:
        outer = self

        class _Type(click.ParamType):
            name = outer.what

            def convert(self, value: Any, param: Any, ctx: Any) -> Any:
                if isinstance(value, tuple):
                    return value
                try:
                    return outer.convert(value)
                except ValueError:
                    self.fail(f"{value!r}: want up to {outer.limit} comma-separated "
                              f"{outer.what}s, each a positive integer", param, ctx)

        return _Type()


def probe_perf_event(type_: int, config: int) -> str:
    """"" when a sampling event of this type opens on CPU 0, else why not."""
    import errno

    from coreframe.sys.attr import PerfEventAttr
    from coreframe.sys.consts import PERF_FLAG_FD_CLOEXEC
    from coreframe.sys.syscall import perf_event_open

    attr = PerfEventAttr(type=type_, config=config)
    attr.disabled = 1
    attr.freq = 1
    attr.sample_freq = DEFAULT_FREQUENCY
    try:
        fd = perf_event_open(attr, -1, 0, -1, PERF_FLAG_FD_CLOEXEC)
    except OSError as e:
        name = errno.errorcode.get(e.errno or 0, str(e.errno))
        return f"{name}: {os.strerror(e.errno or 0)}"
    os.close(fd)
    return ""


def attach_method() -> tuple[bool, str]:
    """Whether sampling can work here, and how it will be done (for ``coreframe info``)."""
    from coreframe.sys.consts import (
        PERF_COUNT_HW_CPU_CYCLES,
        PERF_COUNT_SW_CPU_CLOCK,
        PERF_TYPE_HARDWARE,
        PERF_TYPE_SOFTWARE,
    )

    sw = probe_perf_event(PERF_TYPE_SOFTWARE, PERF_COUNT_SW_CPU_CLOCK)
    if sw:
        return False, f"cannot open a cpu-clock perf event ({sw})"
    hw = probe_perf_event(PERF_TYPE_HARDWARE, PERF_COUNT_HW_CPU_CYCLES)
    pmu = ("a hardware PMU is present; cpu-clock is used anyway: it samples time on CPU, "
           "as libbpf-tools' profile does" if not hw else
           f"there is no hardware PMU here: perf_event_open of cpu-cycles gave {hw}")
    return True, ("perf_event program on the software cpu-clock event, one per CPU, "
                  f"sampled from an hrtimer; {pmu}; attached by a BPF perf link, or by "
                  "PERF_EVENT_IOC_SET_BPF on kernels without perf links")


class Stack:
    """One counted (process, kernel stack, user stack) and its frames, leaf first."""

    __slots__ = ("pid", "comm", "count", "kernel", "user")

    def __init__(self, pid: int, comm: str, count: int, kernel: list[str] | None,
                 user: list[str] | None) -> None:
        self.pid = pid
        self.comm = comm
        self.count = count
        self.kernel = kernel  # None: not collected, or no kernel stack for this sample
        self.user = user


def _count_samples(ms: MetricSet, counts: Any) -> None:
    """The samples counted so far in the kernel's map, per program name."""
    per_comm: dict[str, int] = {}
    for raw_key, raw_value in counts.items_batch(4096):
        name = bytes(raw_key)[_KEY.size - TASK_COMM_LEN:_KEY.size].partition(b"\0")[0]
        comm = name.decode("utf-8", "replace")
        per_comm[comm] = per_comm.get(comm, 0) + int.from_bytes(bytes(raw_value)[:8], "little")
    for comm, n in per_comm.items():
        ms.set(SAMPLES.name, (comm,), n)


class Profile(Tool):
    """Profile CPU usage by sampling stack traces at a timed interval."""

    name = "profile"
    summary = "Sample on-CPU stacks (kernel and user); folded output and flame graphs"
    object_file = "profile.bpf.o"
    requires = ("bpf", "perfmon")
    metrics = (SAMPLES,)
    conflicts = (
        Exclusive("user_stacks_only", "kernel_stacks_only",
                  fix="each leaves out the other's stacks; give at most one"),
        Exclusive("frequency", "period", fix="both set the sampling rate; give one"),
        Exclusive("duration_arg", "duration", fix="the duration is given twice; give one"),
    )

    @classmethod
    def params(cls) -> list[Any]:
        # A positional duration (`profile 5`, as libbpf-tools) needs click's parser:
        # coreframe's own option parser takes options only.
        import click

        return [
            Option("-p", "--pid", type=IdList("PID", MAX_PID_NR), default=None,
                   help="Profile these processes only (comma-separated PIDs)."),
            Option("-L", "--tid", type=IdList("TID", MAX_TID_NR), default=None,
                   help="Profile these threads only (comma-separated TIDs)."),
            Option("-U", "--user-stacks-only", is_flag=True,
                   help="Show stacks from user space only (no kernel space stacks)."),
            Option("-K", "--kernel-stacks-only", is_flag=True,
                   help="Show stacks from kernel space only (no user space stacks)."),
            Option("-F", "--frequency", type=IntRange(min=1), default=None,
                   help=f"Sample frequency, Hertz (default {DEFAULT_FREQUENCY})."),
            Option("-c", "--count", "period", type=IntRange(min=1), default=None,
                   help="Sample once every COUNT nanoseconds of CPU time, instead of -F."),
            Option("-d", "--delimited", is_flag=True,
                   help="Insert a delimiter between kernel and user stacks."),
            Option("-I", "--include-idle", is_flag=True, help="Include CPU idle stacks."),
            Option("-f", "--folded", is_flag=True,
                   help="Folded output, one line per stack (for flame graphs)."),
            Option("-C", "--cpu", type=IntRange(min=0), default=None,
                   help="Sample this CPU only."),
            Option("--stack-storage-size", type=IntRange(min=1, max=1 << 20),
                   default=STACK_STORAGE_SIZE, show_default=True,
                   help="The number of unique stack traces that can be stored."),
            Option("--perf-max-stack-depth", type=IntRange(min=1, max=PERF_MAX_STACK_DEPTH),
                   default=PERF_MAX_STACK_DEPTH, show_default=True,
                   help="The limit for both kernel and user stack traces."),
            Option("--flamegraph", metavar="FILE.svg|FILE.html", default=None,
                   help="Also write an interactive flame graph (SVG or HTML, by extension)."),
            Option("--json", "as_json", is_flag=True,
                   help="One JSON object per stack (frames leaf first)."),
            click.Argument(["duration_arg"], required=False, type=click.FloatRange(min=0),
                           metavar="[DURATION]"),
        ]

    @classmethod
    def readiness(cls) -> Readiness:
        base = super().readiness()
        if not base.ready:
            return base
        ok, how = attach_method()
        return Readiness(ok, how)

    # -- run ------------------------------------------------------------------------------

    def _check_usage(self, ctx: RunContext) -> None:
        """Usage errors, before anything is loaded (exit 2, click's usage message)."""
        import click

        o = self.options
        if o["duration_arg"] is not None:
            ctx.duration = o["duration_arg"]  # counted from attach, in _sample
        fg = o["flamegraph"]
        if fg is not None:
            if not fg.lower().endswith((".svg", ".html", ".htm")):
                raise click.UsageError(f"--flamegraph {fg}: name a .svg or .html file "
                                       "(the extension picks the format)")
            parent = os.path.dirname(os.path.abspath(fg))
            if not os.path.isdir(parent):
                raise click.UsageError(f"--flamegraph {fg}: no directory {parent}")
        for pid in o["pid"] or ():
            if not os.path.exists(f"/proc/{pid}"):
                raise click.UsageError(f"-p {pid}: no such process")
        if o["cpu"] is not None:
            from coreframe.perf import online_cpus

            cpus = online_cpus()
            if o["cpu"] not in cpus:
                raise click.UsageError(f"-C {o['cpu']}: not an online CPU (online: "
                                       f"{_ranges(cpus)})")

    def run(self, ctx: RunContext) -> int:
        """Check the options, load, sample until stopped, then symbolize and report."""
        from coreframe.symbolize import Symbolizer

        self._check_usage(ctx)
        symbolizer = Symbolizer()
        try:
            if not self.options["user_stacks_only"]:
                symbolizer.kernel  # noqa: B018 - read kallsyms now: an error before sampling
            with self._load() as obj:
                rate = self._sample(ctx, obj, symbolizer)
                stacks, missing, collision = self._collect(obj, symbolizer)
                dropped = _sum_percpu(obj.maps.dropped)
        finally:
            symbolizer.close()
        self._report(ctx, stacks, rate, missing, collision, dropped)
        return 0

    def _load(self) -> Any:
        """The object, loaded with the options in its globals and map sizes."""
        import coreframe

        o = self.options
        spec = coreframe.open(self.object_path())
        spec.rodata.kernel_stacks_only = bool(o["kernel_stacks_only"])
        spec.rodata.user_stacks_only = bool(o["user_stacks_only"])
        spec.rodata.include_idle = bool(o["include_idle"])
        spec.rodata.filter_by_pid = bool(o["pid"])
        spec.rodata.filter_by_tid = bool(o["tid"])
        spec.maps.stackmap.max_entries = o["stack_storage_size"]
        spec.maps.stackmap.value_size = 8 * o["perf_max_stack_depth"]
        obj = spec.load()
        try:
            for name, ids in (("pids", o["pid"]), ("tids", o["tid"])):
                target = getattr(obj.maps[name], "raw", obj.maps[name])
                for i in ids or ():
                    target.update(i.to_bytes(4, "little"), b"\x01")
        except BaseException:
            obj.close()
            raise
        return obj

    def _sample(self, ctx: RunContext, obj: Any, symbolizer: Any) -> dict[str, int]:
        """Attach to a perf event per CPU and sample until stopped; returns the rate."""
        from coreframe.link import attach_perf_event

        o = self.options
        period = o["period"]
        rate = {"period": period} if period else {
            "frequency": o["frequency"] or DEFAULT_FREQUENCY}
        link = attach_perf_event(obj.programs.do_perf_event,
                                 cpus=None if o["cpu"] is None else [o["cpu"]], **rate)
        try:
            if ctx.duration is not None:
                # DURATION is how long to sample, as libbpf-tools' profile sleeps it after
                # attaching: on a loaded machine the load alone can take longer than that
                ctx.deadline = time.monotonic() + ctx.duration
            ctx.status(self._banner(rate, ctx.duration))
            counts = getattr(obj.maps.counts, "raw", obj.maps.counts)
            if ctx.metrics is not None:
                with ctx.metrics.collecting(lambda ms: _count_samples(ms, counts)):
                    self._scan(ctx, counts, symbolizer)
            else:
                self._scan(ctx, counts, symbolizer)
        finally:
            link.close()  # stop sampling before reading, so counts stop moving
        return rate

    def _report(self, ctx: RunContext, stacks: list[Stack], rate: dict[str, int],
                missing: int, collision: bool, dropped: int) -> None:
        o = self.options
        self._print(ctx, stacks)
        if o["flamegraph"]:
            self._write_flamegraph(ctx, stacks, rate)
        if missing:
            ctx.lost(missing, "stack traces", event="missed_stacks",
                     message=f"WARNING: {missing} stack traces could not be displayed."
                     + (" Consider increasing --stack-storage-size." if collision else ""))
        if dropped:
            ctx.lost(dropped, "samples", event="dropped",
                     message=f"WARNING: {dropped} samples not counted: the table of stacks "
                             "is full; use -p, -C or a shorter duration")

    def _banner(self, rate: dict[str, int], duration: float | None) -> str:
        o = self.options
        text = (f"Sampling at {rate['frequency']} Hertz of" if "frequency" in rate else
                f"Sampling every {rate['period']} ns of CPU time of")
        if o["pid"]:
            text += f" PID [{', '.join(map(str, o['pid']))}]"
        elif o["tid"]:
            text += f" TID [{', '.join(map(str, o['tid']))}]"
        else:
            text += " all threads"
        text += (" by user" if o["user_stacks_only"] else " by kernel"
                 if o["kernel_stacks_only"] else " by user + kernel")
        if o["cpu"] is not None:
            text += f" on CPU#{o['cpu']}"
        if duration is not None:
            return text + f" for {duration:g} secs."
        return text + "... Hit Ctrl-C to end."

    def _scan(self, ctx: RunContext, counts: Any, symbolizer: Any) -> None:
        while not ctx.should_stop():
            ctx.sleep(SCAN_INTERVAL_S)
            self._remember_new(counts, symbolizer, ctx)

    @staticmethod
    def _remember_new(counts: Any, symbolizer: Any, ctx: RunContext) -> None:
        """Read the mappings of processes seen sampling for the first time (all of
        them first: reading the files' symbols takes longer, and processes exit), then
        symbols until the next scan is due: sampling never runs past --duration for it."""
        # batches: one system call per 4096 entries, not one per key
        for raw, _ in counts.items_batch(4096):
            pid, _, _, comm = _KEY.unpack(bytes(raw)[:_KEY.size])
            symbolizer.remember(pid, comm)
        symbolizer.load_pending(until=time.monotonic() + ctx.poll_timeout(SCAN_INTERVAL_S))

    def _collect(self, obj: Any, symbolizer: Any) -> tuple[list[Stack], int, bool]:
        """Every counted stack, symbolized, most samples first; and how many were missed."""
        o = self.options
        depth = o["perf_max_stack_depth"]
        counts = getattr(obj.maps.counts, "raw", obj.maps.counts)
        stackmap = getattr(obj.maps.stackmap, "raw", obj.maps.stackmap)
        frames_of: dict[int, tuple[int, ...] | None] = {}

        def addresses(stack_id: int) -> tuple[int, ...] | None:
            if stack_id not in frames_of:
                raw = stackmap.lookup(stack_id.to_bytes(4, "little"))
                if raw is None:
                    frames_of[stack_id] = None
                else:
                    ips = memoryview(bytes(raw)).cast("Q")
                    n = 0
                    while n < depth and ips[n]:
                        n += 1
                    frames_of[stack_id] = tuple(ips[:n])
            return frames_of[stack_id]

        def half(stack_id: int, skip: bool, missed: str, names: Any) -> list[str] | None:
            nonlocal missing, collision
            if skip or stack_id == -EFAULT:
                return None
            if stack_id < 0:
                missing += 1
                collision = collision or stack_id == -EEXIST
                return [missed]
            ips = addresses(stack_id)
            return [missed] if ips is None else names(ips)

        missing = 0
        collision = False
        # Stacks that differ only in addresses within the same functions (a loop's
        # every instruction is its own stack id) are one stack once symbolized.
        merged: dict[tuple[Any, ...], Stack] = {}
        for raw_key, raw_value in counts.items_batch(4096):
            pid, kid, uid, comm = _KEY.unpack(bytes(raw_key)[:_KEY.size])
            count = int.from_bytes(bytes(raw_value)[:8], "little")
            if not count:
                continue
            kernel = half(kid, o["user_stacks_only"], MISSED_KERNEL, symbolizer.kernel_stack)
            user = half(uid, o["kernel_stacks_only"], MISSED_USER,
                        lambda ips, pid=pid, comm=comm: symbolizer.user_stack(pid, ips, comm))
            name = comm.partition(b"\0")[0].decode("utf-8", "replace")
            key = (pid, name, None if kernel is None else tuple(kernel),
                   None if user is None else tuple(user))
            if key in merged:
                merged[key].count += count
            else:
                merged[key] = Stack(pid, name, count, kernel, user)
        stacks = sorted(merged.values(), key=lambda s: s.count, reverse=True)
        return stacks, missing, collision

    # -- output ---------------------------------------------------------------------------

    def _print(self, ctx: RunContext, stacks: list[Stack]) -> None:
        o = self.options
        out = ctx.out
        delim = bool(o["delimited"])
        if o["as_json"]:
            from coreframe.output import encode_json

            for s in stacks:
                out.write(encode_json({"pid": s.pid, "comm": s.comm, "count": s.count,
                                       "user_stack": s.user, "kernel_stack": s.kernel}))
                out.write("\n")
        elif o["folded"]:
            for s in stacks:
                parts = [s.comm]
                if s.user is not None:
                    parts.extend(reversed(s.user))
                if s.kernel is not None:
                    if delim and s.user is not None:
                        parts.append("-")
                    parts.extend(reversed(s.kernel))
                out.write(";".join(parts) + f" {s.count}\n")
        else:
            for s in stacks:
                lines = []
                if s.kernel is not None:
                    lines.extend(s.kernel)
                if s.user is not None:
                    if delim and s.kernel is not None:
                        lines.append("--")
                    lines.extend(s.user)
                out.write("".join(f"    {f}\n" for f in lines))
                out.write(f"    {'-':<16} {s.comm} ({s.pid})\n        {s.count}\n\n")
        out.flush()

    def _write_flamegraph(self, ctx: RunContext, stacks: list[Stack],
                          rate: dict[str, int]) -> None:
        from coreframe.flamegraph import render_html, render_svg

        path = self.options["flamegraph"]
        delim = bool(self.options["delimited"])
        folded = []
        total = 0
        for s in stacks:
            frames: list[tuple[str, str]] = [(s.comm, "comm")]
            if s.user is not None:
                frames.extend((f, "user") for f in reversed(s.user))
            if s.kernel is not None:
                if delim and s.user is not None:
                    frames.append(("-", "delim"))
                frames.extend((f, "kernel") for f in reversed(s.kernel))
            folded.append((frames, s.count))
            total += s.count
        how = (f"{rate['frequency']} Hz" if "frequency" in rate
               else f"every {rate['period']} ns")
        sub = f"{total:,} samples at {how}, {time.strftime('%Y-%m-%d %H:%M:%S')}"
        render = render_html if path.lower().endswith((".html", ".htm")) else render_svg
        text = render(folded, title="CPU Flame Graph (coreframe profile)", subtitle=sub)
        try:
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
        except OSError as exc:
            raise ToolError(f"writing the flame graph to {path}: "
                            f"{exc.strerror or exc}") from None
        ctx.status(f"Wrote a flame graph of {total} samples to {path}")


def _sum_percpu(m: Any) -> int:
    per_cpu = getattr(m, "raw", m).lookup(0) or []
    return sum(int.from_bytes(bytes(v)[:8], "little") for v in per_cpu)


def _ranges(cpus: list[int]) -> str:
    return ",".join(map(str, cpus))
