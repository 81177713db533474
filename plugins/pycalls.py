"""pycalls: calls and latency per Python function, and GC pauses, from CPython's USDT probes.

CPython built with ``--with-dtrace`` (Debian's ``/usr/bin/python3.11`` is) has
SystemTap probes: ``python:function__entry``/``function__return`` carry the code
object's file, name and line, ``gc__start``/``gc__done`` bracket a collection.
The tool attaches to them through coreframe's USDT support, for one process
(``-p PID``, wherever its interpreter or libpython is) or for every process
running one interpreter binary (``--python PATH``).

CPython 3.11 fires ``function__entry`` for a Python-to-Python call only on its
tracing dispatch path, which it takes while the ``line`` probe's semaphore is
set (``function__return`` fires on every return). Trapping every line would cost
a uprobe hit per line, so the tool sets that semaphore the way the kernel sets
any: a do-nothing uprobe whose ``ref_ctr_offset`` is the ``line`` semaphore,
placed on the interpreter's ELF entry point (run once per process, at exec).
``--no-line-semaphore`` leaves it off: cheaper, but calls made from Python code
are then not seen at entry, so neither counted nor timed. The semaphore goes
back to its old value when the tool detaches.

A generator's resumptions are entries too: CPython reports them with the line
the generator resumes at, so they form their own ``module:function:line`` rows.
"""

from __future__ import annotations

import os
import struct
import sys
import time

from coreframe.options import Choice, FloatRange, IntRange, Option
from coreframe.output import format_log2_hist, json_line, log2_bounds
from coreframe.runtime.compat import zip_strict
from coreframe.tool import Readiness, RunContext, Tool

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, TextIO

DEFAULT_PYTHON = "/usr/bin/python3.11"
PROVIDER = "python"
PROBES = {  # program -> probe
    "py_entry": "function__entry",
    "py_return": "function__return",
    "py_gc_start": "gc__start",
    "py_gc_done": "gc__done",
}
FILE_LEN, FUNC_LEN, MAX_SLOTS = 128, 64, 32  # bpf/pycalls.h
_KEY = struct.Struct(f"<{FILE_LEN}s{FUNC_LEN}sII")
_STAT = struct.Struct(f"<QQ{MAX_SLOTS}Q")
COUNTERS = ("entries", "returns", "unmatched", "dropped", "gc_unmatched")


def _cstr(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("utf-8", "replace")


def module_of(path: str) -> str:
    """A module-like name for a code object's file: ``/usr/lib/python3.11/json/
    decoder.py`` -> ``decoder``; ``<frozen importlib._bootstrap>`` -> that name."""
    if path.startswith("<frozen ") and path.endswith(">"):
        return path[8:-1]
    base = os.path.basename(path)
    return base[:-3] if base.endswith(".py") else base


class Stat:
    """One function's (or the GC's) calls, total and log2 latency slots."""

    __slots__ = ("count", "total_ns", "slots")

    def __init__(self, count: int = 0, total_ns: int = 0, slots: list[int] | None = None
                 ) -> None:
        self.count = count
        self.total_ns = total_ns
        self.slots = [0] * MAX_SLOTS if slots is None else slots

    @classmethod
    def decode(cls, raw: bytes) -> Stat:
        f = _STAT.unpack_from(raw)
        return cls(f[0], f[1], list(f[2:]))

    def minus(self, other: Stat | None) -> Stat:
        if other is None:
            return self
        return Stat(self.count - other.count, self.total_ns - other.total_ns,
                    [a - b for a, b in zip_strict(self.slots, other.slots)])

    def hist(self) -> list[dict[str, int]]:
        out = []
        for i, n in enumerate(self.slots):
            if n:
                lo, hi = log2_bounds(i)
                out.append({"lo": lo, "hi": hi, "count": n})
        return out


def build_rows(stats: dict[tuple[str, str, int], Stat], sort: str, top: int | None,
               now: float) -> list[dict[str, Any]]:
    """The report rows, one per function, in output order: the one place rows are
    made, for text and JSON alike."""
    items = [(k, s) for k, s in stats.items() if s.count]
    key = (lambda kv: kv[1].count) if sort == "count" else (lambda kv: kv[1].total_ns)
    items.sort(key=lambda kv: (key(kv), kv[0]), reverse=True)
    if top:
        items = items[:top]
    rows = []
    for (file, func, line), s in items:
        rows.append({"time": now, "function": func, "module": module_of(file), "file": file,
                     "line": line, "name": f"{module_of(file)}:{func}:{line}",
                     "count": s.count, "total_ns": s.total_ns,
                     "avg_ns": s.total_ns // s.count if s.count else 0, "hist": s.hist()})
    return rows


def gc_row(gc: Stat, now: float) -> dict[str, Any]:
    return {"time": now, "event": "gc", "count": gc.count, "total_ns": gc.total_ns,
            "hist": gc.hist()}


def print_text(rows: list[dict[str, Any]], gc: Stat, out: TextIO, *, hist: bool,
               timestamp: bool) -> None:
    if timestamp:
        print(time.strftime("%H:%M:%S"), file=out)
    width = max([len(r["name"]) for r in rows] + [8])
    print(f"{'FUNCTION':<{width}} {'CALLS':>10} {'TOTAL_ms':>12} {'AVG_us':>10}", file=out)
    for r in rows:
        print(f"{r['name']:<{width}} {r['count']:>10} {r['total_ns'] / 1e6:>12.3f} "
              f"{r['avg_ns'] / 1e3:>10.3f}", file=out)
        if hist:
            text = format_log2_hist(_slots(r["hist"]), "nsecs")
            if text:
                print(text, file=out)
    if gc.count:
        print(f"\nGC pauses: {gc.count}, total {gc.total_ns / 1e6:.3f} ms", file=out)
        print(format_log2_hist(gc.slots, "nsecs"), file=out)
    out.flush()


def _slots(hist: list[dict[str, int]]) -> list[int]:
    slots = [0] * MAX_SLOTS
    for h in hist:
        slot = 0 if h["hi"] == 0 else h["hi"].bit_length()
        slots[min(slot, MAX_SLOTS - 1)] += h["count"]
    return slots


class UsageProblem(Exception):
    """Bad input found before anything is loaded: one line, exit 2."""


class Target:
    """Where the probes are: the file, the process filter, the semaphore enabler."""

    __slots__ = ("path", "pid", "entry_off", "line_sema_off")

    def __init__(self, path: str, pid: int, entry_off: int | None, line_sema_off: int) -> None:
        self.path = path
        self.pid = pid
        self.entry_off = entry_off
        self.line_sema_off = line_sema_off


def resolve_target(pid: int | None, python: str) -> Target:
    """Find the interpreter file with the probes; UsageProblem when there is none."""
    from coreframe.errors import AttachError
    from coreframe.link import usdt

    if pid is not None:
        if not os.path.exists(f"/proc/{pid}"):
            raise UsageProblem(f"process {pid} does not exist")
        try:
            path = usdt.find_in_process(pid, PROVIDER, "function__entry")
        except AttachError as e:
            raise UsageProblem(f"{e}; is it a Python built with --with-dtrace?") from None
    else:
        if not os.path.isfile(python):
            raise UsageProblem(f"--python {python}: no such file")
        path = os.path.realpath(python)
    try:
        binary = usdt.read_binary(path)
    except AttachError as e:
        raise UsageProblem(str(e)) from None
    have = set(binary.probes())
    if not have:
        raise UsageProblem(f"{path} has no USDT probes (no .note.stapsdt section: not a "
                           f"Python built with --with-dtrace); check with: readelf -n {path}")
    if (PROVIDER, "function__entry") not in have:
        raise UsageProblem(
            f"{path} has no python:function__entry USDT probe (built without "
            f"--with-dtrace?); check with: readelf -n {path} | grep -A3 stapsdt")
    missing = [p for p in PROBES.values() if (PROVIDER, p) not in have]
    if missing:
        raise UsageProblem(f"{path} lacks USDT probes {', '.join(missing)}; check with: "
                           f"readelf -n {path}")
    for probe in PROBES.values():  # an argument spec coreframe cannot read: say so now
        try:
            for t in usdt.find_targets(binary, PROVIDER, probe):
                usdt.parse_args(t.args, binary.machine)
        except AttachError as e:
            raise UsageProblem(f"python:{probe} in {path}: {e}") from None
    line_sema = 0
    entry_off = None
    if (PROVIDER, "line") in have:
        try:
            line_sema = usdt.find_targets(binary, PROVIDER, "line")[0].sema_off
        except AttachError:
            line_sema = 0
        if binary.e_type == usdt.ET_EXEC or binary.entry:
            seg = binary.segment_of(binary.entry)
            if seg is not None and seg[3]:
                entry_off = binary.file_offset(binary.entry)
    return Target(path, pid or -1, entry_off, line_sema)


class PyCalls(Tool):
    """Per-function call counts and latency histograms of Python programs, via USDT."""

    name = "pycalls"
    summary = "Python calls and latency per function, GC pauses (USDT)"
    object_file = "pycalls.bpf.o"
    requires = ("bpf", "uprobe")

    @classmethod
    def readiness(cls) -> Readiness:
        base = super().readiness()
        if not base.ready:
            return base
        from coreframe.errors import AttachError
        from coreframe.link import usdt

        try:
            have = (PROVIDER, "function__entry") in usdt.read_binary(DEFAULT_PYTHON).probes()
        except AttachError:
            have = False
        if have:
            return Readiness(True, f"{DEFAULT_PYTHON} has its USDT probes")
        return Readiness(True, f"{DEFAULT_PYTHON} has no USDT probes: use -p or --python")

    @classmethod
    def params(cls) -> list[Option]:
        return [
            Option("-p", "--pid", type=IntRange(min=1), default=None,
                   help="Only this Python process."),
            Option("--python", default=DEFAULT_PYTHON, show_default=True,
                   help="Trace every process running this interpreter (without -p)."),
            Option("--top", type=IntRange(min=1), default=20, show_default=True,
                   help="Show the N functions with the most calls (or time)."),
            Option("--sort", type=Choice(("count", "time")), default="count",
                   show_default=True, help="Order by call count or by total time."),
            Option("-i", "--interval", type=FloatRange(min=0.01), default=None,
                   help="Print every S seconds (default: once, at the end)."),
            Option("--count", type=IntRange(min=1), default=None,
                   help="Stop after N intervals."),
            Option("--hist", is_flag=True, help="Print each function's latency histogram."),
            Option("-T", "--timestamp", is_flag=True, help="Print a time per interval."),
            Option("--json", "as_json", is_flag=True,
                   help="One JSON object per function (and one for GC) per interval."),
            Option("--no-line-semaphore", "no_line_sema", is_flag=True,
                   help="Do not turn on CPython's tracing path (cheaper; on 3.11 only "
                        "calls made from C are then seen at entry)."),
        ]

    def run(self, ctx: RunContext) -> int:
        o = self.options
        try:
            target = resolve_target(o["pid"], o["python"])
        except UsageProblem as e:
            sys.stderr.write(f"pycalls: {e}\n")
            return 2
        obj = self._load(target)
        try:
            who = f"process {target.pid}" if target.pid > 0 else f"every {target.path}"
            ctx.status(f"Tracing Python calls in {who}... Ctrl-C to end.")
            self._prev: dict[tuple[str, str, int], Stat] = {}
            self._prev_gc: Stat | None = None
            done = 0
            interval = o["interval"]
            while True:
                ctx.sleep(interval if interval is not None else 3600)
                if ctx.should_stop():
                    self._report(ctx, obj)
                    break
                if interval is None:
                    continue
                self._report(ctx, obj)
                done += 1
                if o["count"] and done >= o["count"]:
                    break
        finally:
            obj.close()
        return 0

    def _load(self, target: Target) -> Any:
        import coreframe

        spec = coreframe.open(self.object_path())
        if target.pid > 0:
            spec.rodata.targ_pid = target.pid
        use_sema = bool(target.line_sema_off and target.entry_off is not None
                        and not self.options["no_line_sema"])
        spec.programs.py_tracing_on.autoload = use_sema
        obj = spec.load()
        try:
            for prog, probe in PROBES.items():
                obj.links.append(obj.programs[prog].attach_usdt(
                    target.path, PROVIDER, probe, pid=target.pid if target.pid > 0 else None))
            if use_sema:
                from coreframe.link import attach_uprobe

                obj.links.append(attach_uprobe(
                    obj.programs.py_tracing_on, target.path, None, target.entry_off,
                    pid=target.pid, ref_ctr_offset=target.line_sema_off))
        except BaseException:
            obj.close()
            raise
        return obj

    def read(self, obj: Any) -> tuple[dict[tuple[str, str, int], Stat], Stat, dict[str, int]]:
        """Running totals from the maps: per function, GC, and the counters."""
        stats = {}
        for k, v in obj.maps.stats.items():
            file, func, line, _ = _KEY.unpack_from(bytes(k))
            stats[(_cstr(file), _cstr(func), line)] = Stat.decode(bytes(v))
        gc = Stat.decode(bytes(obj.maps.gc_stat.lookup(0)))
        counters = {}
        for i, name in enumerate(COUNTERS):
            per_cpu = obj.maps.counters.lookup(i) or []
            counters[name] = sum(int.from_bytes(bytes(c)[:8], "little") for c in per_cpu)
        return stats, gc, counters

    def _report(self, ctx: RunContext, obj: Any) -> None:
        o = self.options
        stats, gc, counters = self.read(obj)
        delta = {k: s.minus(self._prev.get(k)) for k, s in stats.items()}
        gc_delta = gc.minus(self._prev_gc)
        self._prev, self._prev_gc = stats, gc
        now = time.time()
        rows = build_rows(delta, o["sort"], o["top"], now)
        if counters["dropped"]:
            ctx.status(f"pycalls: {counters['dropped']} calls not counted: a table is full")
        if o["as_json"]:
            for r in rows:
                json_line(r, ctx.out)
            if gc_delta.count:
                json_line(gc_row(gc_delta, now), ctx.out)
            ctx.out.flush()
            return
        print_text(rows, gc_delta, ctx.out, hist=o["hist"], timestamp=o["timestamp"])

