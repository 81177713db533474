"""The ``Tool`` base class every coreframe plugin subclasses.

A tool declares what it is (name, summary, the BPF object it ships, its click
options, the kernel features it needs) as class attributes so that
``coreframe list`` can describe it without loading anything, and implements
``run()`` for ``coreframe run``. First-party tools and third-party ones are
the same kind of object, found through the same entry-point group.
"""

from __future__ import annotations

import os
import sys
import time

from .errors import ToolError
from .runtime.startup import (
    SIGINT,
    SIGTERM,
    Record,
    allocate_lock,
    resume_gc,
    set_signal_handler,
    start_new_thread,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any, ClassVar, TextIO

    from .metrics import Metric, MetricSet
    from .options import Exclusive
    from .output import Col, Output, Table


class Readiness(Record, fields="ready detail", defaults=("",)):
    """Whether a tool can run here; ``detail`` says how (when ready) or why not."""

    __slots__ = ()

    ready: bool
    detail: str

    def __str__(self) -> str:
        if self.ready:
            return f"yes ({self.detail})" if self.detail else "yes"
        return f"no: {self.detail}" if self.detail else "no"


class StopEvent:
    """``threading.Event``'s set / is_set / wait on one ``_thread`` lock.

    The threading module is one more import at every tool's start (collections and
    more), and
    a stop flag that a signal handler or another thread sets is all ``run`` needs.
    The lock is held while the flag is clear; ``set`` releases it, waking waiters.
    """

    __slots__ = ("_flag", "_lock")

    def __init__(self) -> None:
        self._flag = False
        self._lock = allocate_lock()
        self._lock.acquire()

    def is_set(self) -> bool:
        return self._flag

    def set(self) -> None:
        if self._flag:
            return
        self._flag = True
        try:
            self._lock.release()
        except RuntimeError:  # two setters raced: the lock is already released
            pass

    def wait(self, timeout: float | None = None) -> bool:
        """Block until set or ``timeout`` seconds pass; return whether it is set."""
        if not self._flag:
            if self._lock.acquire(True, -1 if timeout is None else max(timeout, 0.0)):
                self._lock.release()
        return self._flag


class RunContext:
    """What ``coreframe run`` hands a tool: streams, the stop signal and the deadline.

    A plain class (not a dataclass): ``coreframe run`` start-up time counts, and
    the dataclasses module alone costs more to import than this whole file.
    """

    def __init__(self, out: TextIO | None = None, err: TextIO | None = None,
                 duration: float | None = None, stop_event: Any = None,
                 started: float | None = None, gc_paused: bool = False) -> None:
        self.out: TextIO = sys.stdout if out is None else out
        self.err: TextIO = sys.stderr if err is None else err
        self.duration = duration
        self.stop_event = StopEvent() if stop_event is None else stop_event
        self.started = time.monotonic() if started is None else started
        self.deadline: float | None = None if duration is None else self.started + duration
        self._gc_paused = gc_paused
        self.tool: Tool | None = None
        self._output: Output | None = None
        # The run's coreframe.metrics.MetricSet when something exports metrics
        # (--prometheus, --otlp, coreframe serve); None otherwise, so a plain run
        # counts nothing.
        self.metrics: MetricSet | None = None

    def _started_up(self) -> None:
        """Start-up is over: turn the cyclic GC back on (see :func:`run_tool`)."""
        self._gc_paused = False
        resume_gc()

    def should_stop(self) -> bool:
        """True once Ctrl-C/SIGTERM arrived or ``--duration`` has elapsed."""
        if self._gc_paused:
            self._started_up()
        if self.stop_event.is_set():
            return True
        deadline = self.deadline
        return deadline is not None and time.monotonic() >= deadline

    def poll_timeout(self, cap: float = 0.1) -> float:
        """Seconds to wait in the next poll: at most ``cap``, never past the deadline."""
        if self._gc_paused:
            self._started_up()
        deadline = self.deadline
        if deadline is None:
            return cap
        return max(0.0, min(cap, deadline - time.monotonic()))

    def sleep(self, seconds: float) -> None:
        """Sleep up to ``seconds``, waking early on stop or deadline."""
        if self._gc_paused:
            self._started_up()
        end = time.monotonic() + seconds
        deadline = self.deadline
        if deadline is not None:
            end = min(end, deadline)
        while not self.should_stop():
            left = end - time.monotonic()
            if left <= 0:
                return
            self.stop_event.wait(min(left, 0.2))

    def status(self, message: str) -> None:
        """A line for the human on stderr (banners, lost-event summaries)."""
        if self._gc_paused:
            self._started_up()
        print(message, file=self.err, flush=True)

    # -- output (coreframe.output): columns, JSON lines, lost counts, histograms --

    @property
    def output(self) -> Output:
        """This run's :class:`coreframe.output.Output`, set up from the tool's
        ``columns``, ``time_field`` and options (``--json``, ``-T``, ``-t``)."""
        if self._output is None:
            from .output import Output

            tool = self.tool
            self._output = Output(self.out, self.err, getattr(tool, "options", None),
                                  getattr(tool, "columns", None),
                                  getattr(tool, "time_field", None))
            self._output.metrics = self.metrics
        return self._output

    def table(self, columns: tuple[Col, ...] | list[Col] | None = None, **kwargs: Any) -> Table:
        """A :class:`coreframe.output.Table` for ``columns`` (default: the tool's)."""
        return self.output.table(columns, **kwargs)

    def header(self) -> None:
        """Print the tool's column header now (once; nothing with --json)."""
        self.output.table().write_header()

    def emit(self, record: Any) -> None:
        """Write one record in the tool's columns: a text line, or a JSON line."""
        self.output.table().emit(record)

    def lost(self, count: int, what: str = "events", **kwargs: Any) -> None:
        """Report lost/dropped records on stderr (and as a JSON record); see Output.lost."""
        self.output.lost(count, what, **kwargs)

    def hist(self, vals: Any, unit: str = "value", **kwargs: Any) -> None:
        """Print a log2 (or ``linear=(base, step)``) histogram; see Output.hist."""
        self.output.hist(vals, unit, **kwargs)

    def records(self, source: Any, record_type: Any = None, *, btf: Any = None,
                cap: float = 0.1) -> Iterator[Any]:
        """Yield each record of a ring buffer / perf buffer until the run should stop.

        ``source`` is a ringbuf or perf-event-array map (a reader is opened and
        closed here) or an open reader. ``record_type`` is a BTF type name such as
        ``"struct event"`` (looked up in the map's BTF, or in ``btf=``), a ctypes
        type, or None for bytes; a record of another size than its type keeps its
        complete fields and ``.tail`` (coreframe.btf.values), never dropped.
        Prints the tool's header first, waits at most ``cap`` seconds per poll
        (never past ``--duration``), flushes ``ctx.out`` after each batch, drains
        what is left once stopping, and reports what the perf buffer lost.
        """
        from .output import records

        return records(self, source, record_type, btf=btf, cap=cap)

    def install_signal_handlers(self) -> None:
        """SIGINT/SIGTERM ask the tool to stop; it drains its buffers and exits 0."""
        def handler(signum: int, _frame: Any) -> None:
            if self.stop_event.is_set():
                # A second Ctrl-C means the user really wants out now.
                raise KeyboardInterrupt
            self.stop_event.set()

        set_signal_handler(SIGINT, handler)  # _signal's (runtime.startup): no enum import
        set_signal_handler(SIGTERM, handler)


class Tool:
    """Base class of coreframe tools.

    Subclasses set ``name``, ``summary``, ``object_file`` (a file in the
    ``objects/`` directory next to the tool's module), ``requires`` (feature
    names understood by :func:`check_requirement`) and implement ``run``.
    """

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    object_file: ClassVar[str | None] = None
    requires: ClassVar[tuple[str, ...]] = ()
    # The output layer (coreframe.output, docs/output.md): the record columns, the
    # record field holding its bpf_ktime_get_ns() time, and whether the tool offers
    # libbpf-tools' -T/-t time columns. Declaring columns also adds --json.
    columns: ClassVar[tuple[Col, ...] | None] = None
    time_field: ClassVar[str | None] = None
    time_columns: ClassVar[bool] = False
    # The tool's attach methods, best first, as rows for choose_attach(): readiness
    # then also says which one this kernel offers (coreframe info shows why).
    attach_choices: ClassVar[Any] = ()
    # Metrics (coreframe.metrics, docs/metrics.md): the families the tool fills when a
    # run exports them (ctx.metrics); declaring any adds --prometheus and --otlp.
    metrics: ClassVar[tuple[Metric, ...]] = ()
    # Options that cannot be given together (coreframe.options.Exclusive): a command
    # line giving two of a group is a usage error, exit 2, before anything is loaded.
    conflicts: ClassVar[tuple[Exclusive, ...]] = ()

    def __init__(self, **options: Any) -> None:
        self.options = options

    @classmethod
    def params(cls) -> list[Any]:
        """The tool's own options; ``coreframe run NAME --help`` shows them.

        ``coreframe.options.Option`` objects let ``coreframe run`` parse the
        command line without importing click; click.Parameter objects work too.
        """
        return []

    def metric_families(self) -> tuple[Metric, ...]:
        """The metric families of this run (``metrics``, unless options change them)."""
        return tuple(self.metrics)

    @classmethod
    def readiness(cls) -> Readiness:
        """Cheap check of whether this kernel and user can run the tool.

        Must not parse BTF or load objects: ``coreframe list`` calls it for
        every tool.
        """
        for requirement in cls.requires:
            ok, why = check_requirement(requirement)
            if not ok:
                return Readiness(False, why)
        if cls.attach_choices:
            choice = choose_attach(cls.attach_choices)
            return Readiness(choice.method is not None, choice.detail)
        return Readiness(True)

    @classmethod
    def object_path(cls) -> str:
        """Where the tool's prebuilt BPF object lives inside its installed package.

        A plain path string: pathlib (and the re/urllib it imports) would be imported
        at every tool's start for one join.
        """
        if not cls.object_file:
            raise ToolError(f"tool {cls.name!r} declares no BPF object")
        module = sys.modules.get(cls.__module__)
        where = getattr(module, "__file__", None)
        if not where:
            raise ToolError(f"tool {cls.name!r}: cannot tell where its module {cls.__module__} "
                            "is installed (BPF objects must be files on disk)")
        path = os.path.join(os.path.dirname(where), "objects", cls.object_file)
        if not os.path.isfile(path):
            raise ToolError(f"tool {cls.name!r}: BPF object {path} is missing from its package")
        return path

    def run(self, ctx: RunContext) -> int | None:
        """Load, attach and report until ``ctx.should_stop()``; return an exit code."""
        raise NotImplementedError


def run_params(cls: type[Tool]) -> list[Any]:
    """A tool's options plus the ``--duration`` every tool accepts from ``coreframe run``."""
    from .options import FloatRange, Option

    params = list(cls.params())
    extra = []
    taken = set()
    for p in params:
        taken.update(getattr(p, "opts", ()) or ())
        taken.add(getattr(p, "name", None))
    wanted = []
    if cls.columns is not None or cls.time_columns:
        wanted.append(Option("--json", "as_json", is_flag=True,
                             help="One JSON object per line (docs/output.md)."))
        if cls.time_columns:
            wanted[:0] = [
                Option("-T", "--time", is_flag=True, help="Include a time column (HH:MM:SS)."),
                Option("-t", "--timestamp", is_flag=True,
                       help="Include seconds since tracing started."),
            ]
    wanted += export_options(_exportable(cls))
    wanted.append(btf_option())
    for option in wanted:
        if option.name in taken or taken & set(option.opts):
            continue
        extra.append(option)
    return params + extra + [
        Option("--duration", type=FloatRange(min=0), metavar="SECONDS",
               help="Stop by itself after SECONDS."),
    ]


def usage_error(cls: type[Tool], options: dict[str, Any]) -> str:
    """Why these parsed options cannot run together ("" when they can): the first of
    the tool's ``conflicts`` that ``options`` breaks, with its fix."""
    if not cls.conflicts:
        return ""
    from .options import conflict_error

    return conflict_error(run_params(cls), cls.conflicts, options)


def btf_option() -> Any:
    """``--btf FILE``: the BTF CO-RE relocates against (docs/no-btf.md); a tool that
    declares its own ``--btf`` keeps it, and ``coreframe run --btf FILE NAME`` still
    reaches this one."""
    from .options import File, Option

    return Option("--btf", "core_btf", type=File(), metavar="FILE",
                  help="Relocate against this BTF (raw, BTFHub's .btf.tar.xz, or an ELF "
                       "with .BTF) instead of the kernel's: for kernels without BTF.")


def _kit_btf(cls: type[Tool]) -> bool:
    """Whether ``--btf`` is coreframe's (run_params added it) rather than the tool's."""
    return not any(getattr(p, "name", None) == "core_btf" or "--btf" in
                   (getattr(p, "opts", None) or ()) for p in cls.params())


def use_tool_btf(cls: type[Tool], path: str | None = None) -> None:
    """Point CO-RE at ``path`` (``--btf``) and search the tool package's ``btf/``
    directory for per-kernel BTFs (btf.locate); costs no file access."""
    from .btf import locate

    if path is not None:
        locate.set_default(path, "--btf")
    module = sys.modules.get(cls.__module__)
    where = getattr(module, "__file__", None)
    if where:
        locate.add_search_dir(os.path.join(os.path.dirname(where), "btf"))


def _exportable(cls: type[Tool]) -> tuple[str, ...]:
    """``prometheus`` for tools with metrics; ``otlp`` for those and for tools on the
    output layer (their --json events become OTLP log records)."""
    if cls.metrics:
        return ("prometheus", "otlp")
    if cls.columns is not None:
        return ("otlp",)
    return ()


def export_options(which: tuple[str, ...] = ("prometheus", "otlp")) -> list[Any]:
    """``--prometheus`` and ``--otlp`` (docs/metrics.md)."""
    from .options import HostPort, Option, Url

    options = {
        "prometheus": Option("--prometheus", type=HostPort(), metavar="HOST:PORT",
                             help="Serve the tool's metrics for Prometheus at "
                                  "http://HOST:PORT/metrics."),
        "otlp": Option("--otlp", type=Url(), metavar="URL",
                       help="Export metrics (and with --json, events as log records) over "
                            "OTLP/HTTP to URL, e.g. http://127.0.0.1:4318."),
    }
    return [options[n] for n in which]


def _export_names(cls: type[Tool]) -> list[str]:
    """Which of --prometheus/--otlp run_params added (a tool may declare its own)."""
    which = _exportable(cls)
    if not which:
        return []
    own = {getattr(p, "name", None) for p in cls.params()}
    return [n for n in which if n not in own]


GC_PAUSE_MAX_S = 2.0


def _end_gc_pause(ctx: RunContext) -> None:
    """Backstop for a tool that never reports status nor asks ``ctx`` whether to stop."""
    time.sleep(GC_PAUSE_MAX_S)
    if ctx._gc_paused:
        ctx._started_up()


def run_tool(cls: type[Tool], options: dict[str, Any], *, gc_paused: bool = False) -> int:
    """Run a tool the way ``coreframe run`` does; returns its exit code.

    ``gc_paused``: the caller disabled the cyclic GC for start-up (imports and the
    loader allocate tens of thousands of objects, and the collections they trigger
    find no garbage, see :mod:`coreframe.runtime.startup`); the context re-enables it
    the first time the tool reports status or checks for a stop, which every tool
    does once attached, at the latest after ``GC_PAUSE_MAX_S``, and when ``run``
    returns.
    """
    problem = usage_error(cls, options)
    if problem:  # coreframe run refuses these before calling here (exit 2)
        raise ToolError(f"{cls.name}: {problem}")
    ctx = RunContext(duration=options.pop("duration", None), gc_paused=gc_paused)
    if gc_paused:
        start_new_thread(_end_gc_pause, (ctx,))
    ctx.install_signal_handlers()
    exports = None
    try:
        wanted = {n: options.pop(n, None) for n in _export_names(cls)}
        use_tool_btf(cls, options.pop("core_btf", None) if _kit_btf(cls) else None)
        tool = cls(**options)
        ctx.tool = tool
        if any(wanted.values()):
            from .export.run import RunExports

            exports = RunExports(tool, ctx, wanted.get("prometheus"), wanted.get("otlp"))
        return tool.run(ctx) or 0
    finally:
        if exports is not None:
            exports.close()
        if ctx._gc_paused:
            ctx._started_up()


def check_requirement(requirement: str) -> tuple[bool, str]:
    """Check one named requirement cheaply; return (ok, reason when not ok).

    Known names: ``bpf`` (CAP_BPF or CAP_SYS_ADMIN), ``perfmon``, ``btf`` (kernel
    BTF present), ``tracepoint:CAT/NAME``, ``kprobe``, ``uprobe``; anything else
    is asked of ``coreframe.features`` as ``has_<name>()``.
    """
    from .link import tracefs
    from .sys import host
    from .sys.errors import has_capability

    if requirement == "bpf":
        if has_capability("CAP_BPF"):  # or CAP_SYS_ADMIN, as the kernel's bpf_capable()
            return True, ""
        return False, "needs CAP_BPF (run as root)"
    if requirement == "perfmon":
        if has_capability("CAP_PERFMON"):  # or CAP_SYS_ADMIN (perfmon_capable())
            return True, ""
        return False, "needs CAP_PERFMON (run as root)"
    if requirement == "btf":
        # CO-RE's target: the kernel's BTF, or a file standing in for it (btf.locate)
        from .btf.locate import KernelBTFMissing, find

        try:
            target = find()
        except KernelBTFMissing:
            return False, ("needs kernel BTF (/sys/kernel/btf/vmlinux, CONFIG_DEBUG_INFO_BTF) "
                           "or a BTF file: --btf, COREFRAME_BTF, COREFRAME_BTF_PATH "
                           "(docs/no-btf.md)")
        return True, "" if target.is_kernel else f"CO-RE against {target.path}"
    if requirement.startswith("tracepoint:"):
        event = requirement.split(":", 1)[1]
        root = tracefs.find_root()
        if root is None:
            # Not mounted yet: the attach code mounts tracefs when it can.
            return (True, "") if os.path.isdir(host.TRACEFS_MOUNTS[0]) else (
                False, "needs tracefs (/sys/kernel/tracing)")
        if os.path.isdir(os.path.join(root, "events", event)):
            return True, ""
        return False, f"needs tracepoint {event}"
    if requirement == "kprobe":
        if host.has_pmu("kprobe") or tracefs.has_file("kprobe_events"):
            return True, ""
        return False, "needs kprobes (CONFIG_KPROBE_EVENTS)"
    if requirement == "uprobe":
        if host.has_pmu("uprobe"):
            return True, ""
        return False, "needs uprobes (CONFIG_UPROBE_EVENTS)"
    if requirement.startswith(("raw_tp:", "tp_btf:")):
        return _check_btf_tracepoint(*requirement.split(":", 1))
    from . import features

    probe = getattr(features, f"has_{requirement}", None)
    if probe is None:
        return False, f"unknown requirement {requirement!r}"
    try:
        return (True, "") if probe() else (False, f"needs {requirement}")
    except Exception as exc:  # a probe failing must not break `coreframe list`
        return False, f"cannot probe {requirement}: {exc}"


def _kernel_btf_bytes() -> bytes:
    """The kernel's BTF, read once; empty when it has none (or it is hidden)."""
    global _kernel_btf
    if _kernel_btf is None:
        from .sys.host import VMLINUX_BTF

        try:
            with open(VMLINUX_BTF, "rb") as f:
                _kernel_btf = f.read()
        except OSError:
            _kernel_btf = b""
    return _kernel_btf


def _kernel_btf_has_name(name: str) -> bool:
    """Whether the kernel's BTF string section holds ``name`` (a whole string)."""
    return _kernel_btf_bytes().find(b"\0" + name.encode() + b"\0") >= 0


_kernel_btf: bytes | None = None


def _check_btf_tracepoint(kind: str, event: str) -> tuple[bool, str]:
    """``raw_tp:NAME`` / ``tp_btf:NAME``: the program type loads here and the kernel
    has the raw tracepoint (its ``btf_trace_NAME`` typedef, which every tracepoint
    gets in a kernel built with BTF, is what tp_btf programs are verified against)."""
    from . import features
    from .sys import consts as C

    prog_type = (C.BPF_PROG_TYPE_RAW_TRACEPOINT if kind == "raw_tp"
                 else C.BPF_PROG_TYPE_TRACING)
    try:
        if not features.has_prog_type(prog_type):
            return False, f"{kind} programs do not load on this kernel"
    except Exception as exc:  # no privilege: cannot tell, so do not promise
        return False, f"cannot probe {kind} programs: {exc}"
    if kind == "raw_tp" and not _kernel_btf_bytes():
        # a kernel without BTF still has raw tracepoints (they need none): one exists
        # when a tracepoint of that name does
        if _tracefs_has_event(event):
            return True, ""
        return False, f"no tracepoint {event} in tracefs (and no kernel BTF to look in)"
    if not _kernel_btf_has_name("btf_trace_" + event):
        return False, f"the kernel's BTF has no raw tracepoint {event}"
    return True, ""


def _tracefs_has_event(event: str) -> bool:
    """Whether some tracefs category has an event called ``event``."""
    from .link import tracefs

    root = tracefs.find_root()
    if root is None:
        return False
    events = os.path.join(root, "events")
    try:
        categories = os.listdir(events)
    except OSError:
        return False
    return any(os.path.isdir(os.path.join(events, c, event)) for c in categories)


class AttachChoice(Record, fields="method detail", defaults=("",)):
    """The attach method a tool picked by probing, and why (for ``coreframe info``)."""

    __slots__ = ()

    method: str | None
    detail: str


def choose_attach(choices: Any) -> AttachChoice:
    """The first of ``choices`` whose requirements all hold here.

    ``choices`` are ``(method, requirements, why)`` rows, best first; requirements
    are :func:`check_requirement` names (``tracepoint:CAT/NAME``, ``raw_tp:NAME``,
    ``tp_btf:NAME``, ...). ``detail`` says why the method was picked and what ruled
    out each better one; ``method`` is None when none fits.
    """
    skipped = []
    for method, requirements, why in choices:
        for requirement in requirements:
            ok, reason = check_requirement(requirement)
            if not ok:
                skipped.append(f"not {method}: {reason}")
                break
        else:
            return AttachChoice(method, "; ".join([f"{method}: {why}", *skipped]))
    return AttachChoice(None, "; ".join(skipped) or "no attach method declared")
