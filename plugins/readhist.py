"""readhist: log2 histograms of the byte counts vfs_read() returns, per process.

Three ways in, best first: ``fexit/vfs_read`` (BPF trampolines), then
``kretprobe/vfs_read`` (kprobes), then the ``sys_exit_read`` /
``sys_exit_pread64`` tracepoints, which see the same counts for read(2) and
pread64(2) but miss in-kernel reads and readv/splice. The tool probes which
one this kernel can load, disables the other programs before load, and says
which it uses.
"""

from __future__ import annotations

import os
import struct
import time
from collections.abc import Iterable

from coreframe.errors import FeatureMissing, ToolError
from coreframe.metrics import Counter
from coreframe.metrics import Histogram as HistogramMetric
from coreframe.options import Choice, FloatRange, IntRange, Option
from coreframe.output import TIME, Field, Histogram
from coreframe.runtime.compat import zip_strict
from coreframe.tool import Readiness, RunContext, Tool, check_requirement

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

MAX_SLOTS = 64
_KEY = struct.Struct("<I16s")
_VALUE = struct.Struct(f"<{MAX_SLOTS}QQQQ16s")

METHODS = ("fexit", "kretprobe", "tracepoint")
METHOD_PROGRAMS = {
    "fexit": ("vfs_read_fexit",),
    "kretprobe": ("vfs_read_kret",),
    "tracepoint": ("sys_exit_read", "sys_exit_pread64"),
}
METHOD_DESCRIPTION = {
    "fexit": "fexit: vfs_read",
    "kretprobe": "kretprobe: vfs_read",
    "tracepoint": "tracepoint: read/pread64",
}
METHOD_MISSES = {
    "fexit": "",
    "kretprobe": "",
    "tracepoint": "sees read(2)/pread64(2) only, not readv(2), splice or in-kernel reads",
}


def choose_methods(fexit_ok: bool, kprobe_ok: bool) -> list[str]:
    """The attach methods to try, best first, given what the kernel offers."""
    order = []
    if fexit_ok:
        order.append("fexit")
    if kprobe_ok:
        order.append("kretprobe")
    order.append("tracepoint")
    return order


def probe_methods() -> list[str]:
    """Probe this kernel (cached per process) and return the methods to try."""
    from coreframe import features

    return choose_methods(features.has_trampoline(), features.has_kprobe())


class Hist:
    """One process's (or comm's) counters; added up across intervals for Prometheus."""

    __slots__ = ("pid", "comm", "slots", "reads", "bytes", "errors")

    def __init__(self, pid: int, comm: str, slots: list[int] | None = None, reads: int = 0,
                 bytes: int = 0, errors: int = 0) -> None:
        self.pid = pid
        self.comm = comm
        self.slots = [0] * MAX_SLOTS if slots is None else slots
        self.reads = reads
        self.bytes = bytes
        self.errors = errors

    def __repr__(self) -> str:
        return (f"Hist(pid={self.pid}, comm={self.comm!r}, reads={self.reads}, "
                f"bytes={self.bytes}, errors={self.errors})")

    def add(self, other: Hist) -> None:
        self.slots = [a + b for a, b in zip_strict(self.slots, other.slots)]
        self.reads += other.reads
        self.bytes += other.bytes
        self.errors += other.errors

    def histogram(self) -> Histogram:
        """The size histogram: bcc's log2 slots, as readhist.bpf.c fills them."""
        return Histogram(self.slots, "bytes", numbering="bcc")

    def json_values(self) -> tuple[Any, ...]:
        """This row's values in COLUMNS' JSON order (after ``time``)."""
        return (self.pid or None, self.comm, self.reads, self.bytes, self.errors,
                self.histogram().rows())

    def to_json(self, now: float) -> dict[str, Any]:
        doc = {"time": now}
        doc.update(zip_strict([c.key for c in COLUMNS[1:]], self.json_values()))
        return doc


def decode_entries(items: Iterable[tuple[bytes, bytes]]) -> list[Hist]:
    """Decode raw (key, value) pairs of the ``hists`` map."""
    out = []
    for key, value in items:
        pid, key_comm = _KEY.unpack_from(key)
        fields = _VALUE.unpack_from(value)
        comm_raw = key_comm if key_comm.strip(b"\0") else fields[-1]
        comm = comm_raw.split(b"\0", 1)[0].decode("utf-8", "replace")
        out.append(Hist(pid, comm, list(fields[:MAX_SLOTS]), fields[MAX_SLOTS],
                        fields[MAX_SLOTS + 1], fields[MAX_SLOTS + 2]))
    return out


# One JSON record per process (or comm) per interval (docs/output.md); the text is a
# histogram block per process instead of columns.
COLUMNS = (TIME, Field("pid"), Field("comm"), Field("reads", kind=int),
           Field("bytes", kind=int), Field("errors", kind=int), Field("hist"))


# Metrics (docs/metrics.md): the same slots as the text and JSON, as a classic
# Prometheus histogram whose buckets are bcc's log2 slots; by comm (and pid with
# --prometheus-pid), read from the map whenever an exporter asks.
READ_BYTES = HistogramMetric("coreframe_vfs_read_bytes", "Bytes returned by vfs_read() per call",
                             ("comm",), numbering="bcc", slots=MAX_SLOTS)
READ_ERRORS = Counter("coreframe_vfs_read_errors", "vfs_read() calls that returned an error",
                      ("comm",))


class ReadHist(Tool):
    """Histogram of vfs_read() return sizes per process, with optional Prometheus export."""

    columns = COLUMNS
    metrics = (READ_BYTES, READ_ERRORS)
    name = "readhist"
    summary = "Histogram of vfs_read() sizes per process"
    object_file = "readhist.bpf.o"
    requires = ("bpf", "btf")

    @classmethod
    def params(cls) -> list[Option]:
        return [
            Option("-p", "--pid", type=IntRange(min=1), default=None,
                   help="Only this process (filtered in the kernel)."),
            Option("--threads", is_flag=True,
                   help="Key by thread id instead of process id."),
            Option("-c", "--comm", default=None, help="Only processes named COMM."),
            Option("--per-comm", is_flag=True, help="Aggregate by command name."),
            Option("-T", "--timestamp", is_flag=True, help="Print a time per interval."),
            Option("-i", "--interval", type=FloatRange(min=0.01), default=None,
                   help="Print every S seconds (default: once, at the end)."),
            Option("--count", type=IntRange(min=1), default=None,
                   help="Stop after N intervals."),
            Option("--top", type=IntRange(min=1), default=None,
                   help="Only the N processes with the most reads."),
            Option("--cumulative", is_flag=True,
                   help="Do not clear the histograms between intervals."),
            Option("--json", "as_json", is_flag=True,
                   help="One JSON object per process per interval."),
            Option("--prometheus-pid", is_flag=True,
                   help="Label metric series by pid as well as comm."),
            Option("--max-entries", type=IntRange(min=1), default=None,
                   help="Size of the in-kernel per-process table (default 10240)."),
            Option("--method", type=Choice(("auto",) + METHODS), default="auto",
                   show_default=True, help="Attach method (auto: best this kernel has)."),
        ]

    def metric_families(self) -> tuple[Any, ...]:
        if self.options.get("prometheus_pid"):
            return tuple(m.with_labels(("comm", "pid")) for m in self.metrics)
        return self.metrics

    @classmethod
    def readiness(cls) -> Readiness:
        base = super().readiness()
        if not base.ready:
            return base
        ok, _ = check_requirement("kprobe")
        if ok:
            return Readiness(True, METHOD_DESCRIPTION["kretprobe"] + " or better")
        return Readiness(True, METHOD_DESCRIPTION["tracepoint"] + " unless fexit loads")

    def run(self, ctx: RunContext) -> int:
        o = self.options
        methods = probe_methods() if o["method"] == "auto" else [o["method"]]
        obj, method = self._load(methods)
        try:
            note = METHOD_MISSES[method]
            totals: dict[tuple[int, str], Hist] = {}
            self._last: dict[bytes, Hist] = {}
            self._mlast: dict[bytes, Hist] = {}
            self._dropped = 0
            if ctx.metrics is None:
                self._trace(ctx, obj, totals, method, note)
            else:
                # read the map at every scrape / export while it is open
                with ctx.metrics.collecting(lambda ms: self._collect(ms, obj)):
                    self._trace(ctx, obj, totals, method, note)
        finally:
            obj.close()
        return 0

    def _trace(self, ctx: RunContext, obj: Any, totals: dict[tuple[int, str], Hist],
               method: str, note: str) -> None:
        o = self.options
        ctx.status(f"Tracing vfs_read() sizes with {METHOD_DESCRIPTION[method]}"
                   + (f" ({note})" if note else "") + "... Ctrl-C to end.")
        interval = o["interval"]
        done = 0
        while True:
            ctx.sleep(interval if interval is not None else 3600)
            if ctx.should_stop():
                # Ctrl-C, SIGTERM or --duration: what was counted since the last report.
                self._report(ctx, obj, totals)
                break
            if interval is None:
                continue
            self._report(ctx, obj, totals)
            done += 1
            if o["count"] and done >= o["count"]:
                break

    def _collect(self, ms: Any, obj: Any) -> None:
        """Add what the map counted since the last collection to the metric families.

        Runs under the MetricSet's lock (scrapes, exports, and :meth:`_report` before
        it deletes entries of exited processes, so no read is lost to a deletion).
        A key whose counts went down is a new process that reused a pid: all new.
        """
        o = self.options
        hists_map = obj.maps.hists.raw  # bytes: decode_entries reads bpf/readhist.h's layout
        items = list(hists_map.items())
        by_pid = bool(o.get("prometheus_pid"))
        last = self._mlast
        seen: dict[bytes, Hist] = {}
        for (key, _), h in zip_strict(items, decode_entries(items)):
            raw = bytes(key)
            seen[raw] = h
            if o["comm"] and h.comm != o["comm"]:
                continue
            before = last.get(raw)
            if before is not None and h.reads >= before.reads and h.errors >= before.errors:
                slots = [a - b for a, b in zip_strict(h.slots, before.slots)]
                nbytes, errors = h.bytes - before.bytes, h.errors - before.errors
            else:
                slots, nbytes, errors = h.slots, h.bytes, h.errors
            labels = (h.comm, str(h.pid)) if by_pid else (h.comm,)
            if any(slots) or nbytes:
                ms.add_hist("coreframe_vfs_read_bytes", labels, slots, nbytes)
            elif labels not in ms.values["coreframe_vfs_read_bytes"]:
                ms.add_hist("coreframe_vfs_read_bytes", labels, (), 0)
            if errors or labels not in ms.values["coreframe_vfs_read_errors"]:
                ms.inc("coreframe_vfs_read_errors", labels, errors)
        self._mlast = seen

    def _load(self, methods: list[str]) -> tuple[Any, str]:
        """Load with the first method the kernel accepts; the others' programs stay unloaded."""
        import coreframe

        o = self.options
        last: Exception | None = None
        for method in methods:
            spec = coreframe.open(self.object_path())
            if o["pid"] is not None:
                spec.rodata.targ_pid = o["pid"]
            spec.rodata.targ_tgid_mode = not o["threads"]
            spec.rodata.per_comm = o["per_comm"]
            if o["max_entries"] is not None:
                spec.maps.hists.max_entries = o["max_entries"]
            for family, progs in METHOD_PROGRAMS.items():
                for prog in progs:
                    spec.programs[prog].autoload = family == method
            try:
                obj = spec.load()
            except FeatureMissing as exc:
                last = exc
                continue
            try:
                obj.attach()
            except FeatureMissing as exc:
                obj.close()
                last = exc
                continue
            return obj, method
        raise ToolError(f"readhist: no attach method works here (last: {last})")

    def _since_last_report(self, hists_map: Any, items: list[tuple[Any, Any]],
                           rows: list[Hist]) -> list[Hist]:
        """This interval's counts: the kernel's running totals minus the last report's.

        Clearing by deleting entries loses the reads a BPF program adds to an
        entry it looked up just before the deletion (hundreds per second for a
        busy reader); subtracting loses none. An entry is deleted only once its
        process has exited and nothing was added since the last report, so the
        map holds live processes (and comms), not every pid ever seen.
        """
        last = self._last
        self._last = {}
        out = []
        for (key, _), h in zip_strict(items, rows):
            raw = bytes(key)
            before = last.get(raw)
            if before is None:
                delta = h
            else:
                delta = Hist(h.pid, h.comm,
                             [a - b for a, b in zip_strict(h.slots, before.slots)],
                             h.reads - before.reads, h.bytes - before.bytes,
                             h.errors - before.errors)
            if delta.reads or delta.errors:
                out.append(delta)
            elif h.pid and not os.path.exists(f"/proc/{h.pid}"):
                hists_map.delete(key)
                continue
            self._last[raw] = h
        return out

    def _report_drops(self, ctx: RunContext, obj: Any) -> None:
        """Say when reads went uncounted because the per-process table was full."""
        total = obj.maps.dropped.percpu_sum(0)
        new = total - self._dropped
        if new <= 0:
            return
        self._dropped = total
        ctx.lost(new, "reads", event="dropped", detail={"total": total}, stamp=True,
                 message=f"readhist: {new} reads not counted: the table of processes is full "
                         f"({total} in total); use -p, --per-comm or a shorter --interval")

    def _report(self, ctx: RunContext, obj: Any, totals: dict[tuple[int, str], Hist]) -> None:
        o = self.options
        if ctx.metrics is not None:
            ctx.metrics.refresh()  # count what the entries deleted below still hold
        # keys and values as bytes (decode_entries reads the layout of bpf/readhist.h)
        hists_map = obj.maps.hists.raw
        items = list(hists_map.items())
        rows = decode_entries(items)
        if not o["cumulative"]:
            rows = self._since_last_report(hists_map, items, rows)
        if o["comm"]:
            rows = [h for h in rows if h.comm == o["comm"]]
        for h in rows:
            key = (h.pid, h.comm)
            if o["cumulative"]:
                totals[key] = h
            elif key in totals:
                totals[key].add(h)
            else:
                totals[key] = Hist(h.pid, h.comm, list(h.slots), h.reads, h.bytes, h.errors)
        self._report_drops(ctx, obj)
        rows.sort(key=lambda h: h.reads, reverse=True)
        if o["top"]:
            rows = rows[: o["top"]]
        if o["as_json"]:
            json_line = ctx.table().json_line
            now_ns = time.monotonic_ns()  # one time for the whole interval
            for h in rows:
                ctx.out.write(json_line(h.json_values(), now_ns))
            ctx.out.flush()
            return
        out = ctx.out
        if o["timestamp"]:
            print(time.strftime("%H:%M:%S"), file=out)
        for h in rows:
            who = f"comm = {h.comm}" if o["per_comm"] else f"pid = {h.pid} comm = {h.comm}"
            print(f"\n{who}  reads = {h.reads} bytes = {h.bytes} errors = {h.errors}", file=out)
            text = h.histogram().text()
            if text:
                print(text, file=out)
        out.flush()
