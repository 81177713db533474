"""The ``Tool`` base class every coreframe plugin subclasses.

A tool declares what it is (name, summary, the BPF object it ships, its click
options, the kernel features it needs) as class attributes so that
``coreframe list`` can describe it without loading anything, and implements
``run()`` for ``coreframe run``. First-party tools and third-party ones are
the same kind of object, found through the same entry-point group.
"""

from __future__ import annotations

import _thread
import os
import sys
import time

from .errors import ToolError
from .records import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any, ClassVar, TextIO

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

    The threading module costs a tool a couple of milliseconds of start-up, and
    a stop flag that a signal handler or another thread sets is all ``run`` needs.
    The lock is held while the flag is clear; ``set`` releases it, waking waiters.
    """

    __slots__ = ("_flag", "_lock")

    def __init__(self) -> None:
        self._flag = False
        self._lock = _thread.allocate_lock()
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

    def _started_up(self) -> None:
        """Start-up is over: turn the cyclic GC back on (see :func:`run_tool`)."""
        self._gc_paused = False
        import gc

        gc.enable()

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
        # The C module behind ``signal``: the wrapper builds enum classes at import,
        # and the enum module costs a tool several milliseconds of start-up.
        import _signal as signal

        def handler(signum: int, _frame: Any) -> None:
            if self.stop_event.is_set():
                # A second Ctrl-C means the user really wants out now.
                raise KeyboardInterrupt
            self.stop_event.set()

        signal.signal(signal.SIGINT, handler)
        signal.signal(signal.SIGTERM, handler)


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

    def __init__(self, **options: Any) -> None:
        self.options = options

    @classmethod
    def params(cls) -> list[Any]:
        """The tool's own options; ``coreframe run NAME --help`` shows them.

        ``coreframe.options.Option`` objects let ``coreframe run`` parse the
        command line without importing click; click.Parameter objects work too.
        """
        return []

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
        return Readiness(True)

    @classmethod
    def object_path(cls) -> str:
        """Where the tool's prebuilt BPF object lives inside its installed package.

        A plain path string: pathlib (and the re/urllib it imports) would cost a
        few milliseconds of every tool's start-up for one join.
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
    if cls.columns is not None or cls.time_columns:
        taken = set()
        for p in params:
            taken.update(getattr(p, "opts", ()) or ())
            taken.add(getattr(p, "name", None))
        wanted = [Option("--json", "as_json", is_flag=True,
                         help="One JSON object per line (docs/output.md).")]
        if cls.time_columns:
            wanted[:0] = [
                Option("-T", "--time", is_flag=True, help="Include a time column (HH:MM:SS)."),
                Option("-t", "--timestamp", is_flag=True,
                       help="Include seconds since tracing started."),
            ]
        for option in wanted:
            if option.name in taken or taken & set(option.opts):
                continue
            extra.append(option)
    return params + extra + [
        Option("--duration", type=FloatRange(min=0), metavar="SECONDS",
               help="Stop by itself after SECONDS."),
    ]


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
    cost a tool milliseconds before its first event); the context re-enables it
    the first time the tool reports status or checks for a stop, which every tool
    does once attached, at the latest after ``GC_PAUSE_MAX_S``, and when ``run``
    returns.
    """
    ctx = RunContext(duration=options.pop("duration", None), gc_paused=gc_paused)
    if gc_paused:
        _thread.start_new_thread(_end_gc_pause, (ctx,))
    ctx.install_signal_handlers()
    try:
        tool = cls(**options)
        ctx.tool = tool
        return tool.run(ctx) or 0
    finally:
        if ctx._gc_paused:
            ctx._started_up()


CAP_SYS_ADMIN = 21
CAP_PERFMON = 38
CAP_BPF = 39


def has_capability(cap: int) -> bool:
    from .sys.errors import effective_caps

    return bool(effective_caps() & (1 << cap))


def _tracefs_root() -> str | None:
    for root in ("/sys/kernel/tracing", "/sys/kernel/debug/tracing"):
        if os.path.isdir(os.path.join(root, "events")):
            return root
    return None


def check_requirement(requirement: str) -> tuple[bool, str]:
    """Check one named requirement cheaply; return (ok, reason when not ok).

    Known names: ``bpf`` (CAP_BPF or CAP_SYS_ADMIN), ``perfmon``, ``btf`` (kernel
    BTF present), ``tracepoint:CAT/NAME``, ``kprobe``, ``uprobe``; anything else
    is asked of ``coreframe.features`` as ``has_<name>()``.
    """
    if requirement == "bpf":
        if has_capability(CAP_BPF) or has_capability(CAP_SYS_ADMIN):
            return True, ""
        return False, "needs CAP_BPF (run as root)"
    if requirement == "perfmon":
        if has_capability(CAP_PERFMON) or has_capability(CAP_SYS_ADMIN):
            return True, ""
        return False, "needs CAP_PERFMON (run as root)"
    if requirement == "btf":
        if os.path.exists("/sys/kernel/btf/vmlinux"):
            return True, ""
        return False, "needs kernel BTF (/sys/kernel/btf/vmlinux, CONFIG_DEBUG_INFO_BTF)"
    if requirement.startswith("tracepoint:"):
        event = requirement.split(":", 1)[1]
        root = _tracefs_root()
        if root is None:
            # Not mounted yet: the attach code mounts tracefs when it can.
            return (True, "") if os.path.isdir("/sys/kernel/tracing") else (
                False, "needs tracefs (/sys/kernel/tracing)")
        if os.path.isdir(os.path.join(root, "events", event)):
            return True, ""
        return False, f"needs tracepoint {event}"
    if requirement == "kprobe":
        if os.path.exists("/sys/bus/event_source/devices/kprobe/type"):
            return True, ""
        root = _tracefs_root()
        if root and os.path.exists(os.path.join(root, "kprobe_events")):
            return True, ""
        return False, "needs kprobes (CONFIG_KPROBE_EVENTS)"
    if requirement == "uprobe":
        if os.path.exists("/sys/bus/event_source/devices/uprobe/type"):
            return True, ""
        return False, "needs uprobes (CONFIG_UPROBE_EVENTS)"
    from . import features

    probe = getattr(features, f"has_{requirement}", None)
    if probe is None:
        return False, f"unknown requirement {requirement!r}"
    try:
        return (True, "") if probe() else (False, f"needs {requirement}")
    except Exception as exc:  # a probe failing must not break `coreframe list`
        return False, f"cannot probe {requirement}: {exc}"
