"""The interval loop of first-party histogram tools (runqlat, cpudist, biolatency).

Each interval: drain the tool's hash map of histograms (each key read and deleted
in one step, so a count that lands meanwhile goes to the next interval), then
print them as libbpf-tools does, or one JSON object per histogram.
"""

from __future__ import annotations

import _thread
import struct
import time

from coreframe.metrics import Histogram
from coreframe.options import IntRange, Option

from ._common import comm

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from coreframe.metrics import MetricSet
    from coreframe.tool import RunContext

    Label = Callable[[int, str], tuple[str | None, dict[str, Any]]]

MAX_SLOTS = 26                      # bpf/hist.h
LOST_SAMPLES = "samples (histogram map full)"
_HIST = struct.Struct(f"<{MAX_SLOTS}I16sQ")   # struct hist: slots, comm, total


def interval_options() -> list[Option]:
    """libbpf-tools' positional [interval [count]], as options, and -T."""
    return [
        Option("-i", "--interval", type=IntRange(min=1), default=None,
               help="Print every INTERVAL seconds (default: once, at the end)."),
        Option("-n", "--count", "times", type=IntRange(min=1), default=None,
               help="Stop after COUNT intervals."),
        Option("-T", "--timestamp", "print_time", is_flag=True,
               help="Print the time of each interval."),
    ]


def hist_metric(name: str, help: str, options: dict[str, Any],
                labels: tuple[str, ...] = ()) -> Histogram:
    """The Prometheus histogram of a tool's log2 histograms: the BPF slots as its
    buckets (libbpf numbering), exported in seconds from the -m/usecs unit."""
    scale = 1e-3 if options.get("milliseconds") else 1e-6
    return Histogram(name, help, labels, slots=MAX_SLOTS, numbering="libbpf", scale=scale)


def drain(hists: Any) -> list[tuple[int, list[int], str, int]]:
    """(key, slots, comm, total) of every histogram in the map, taken out of it; the
    key as an int (little-endian: a struct key's first member is its low bits)."""
    m = getattr(hists, "raw", hists)
    out = []
    for key, raw in m.take_all():
        *slots, raw_comm, total = _HIST.unpack_from(bytes(raw))
        out.append((int.from_bytes(bytes(key), "little"), slots, comm(raw_comm), total))
    out.sort(key=lambda h: h[0])
    return out


class Pending:
    """The histograms taken out of the map and not printed yet, by key.

    While a run exports metrics, a collect hook drains the map at every scrape (so
    the exported histograms are current) and adds what it took to the metric; the
    interval loop prints what gathered here since its last print. Both take from
    the map under one lock, so every count is printed once and exported once."""

    def __init__(self, hists: Any, label: Label, metric: str | None) -> None:
        self.hists = hists
        self.label = label
        self.metric = metric
        self.by_key: dict[int, tuple[list[int], str, int]] = {}
        self.lock = _thread.allocate_lock()

    def take(self, ms: MetricSet | None = None) -> None:
        with self.lock:
            for key, slots, c, total in drain(self.hists):
                if ms is not None and self.metric is not None:
                    labels = tuple(str(v) for v in self.label(key, c)[1].values())
                    ms.add_hist(self.metric, labels, slots, total)
                have = self.by_key.get(key)
                if have is None:
                    self.by_key[key] = (slots, c, total)
                else:
                    merged = [have[0][i] + slots[i] for i in range(len(slots))]
                    self.by_key[key] = (merged, have[1] or c, have[2] + total)

    def pop(self) -> list[tuple[int, list[int], str]]:
        with self.lock:
            taken, self.by_key = self.by_key, {}
        return [(k, v[0], v[1]) for k, v in sorted(taken.items())]


def run_intervals(ctx: RunContext, options: dict[str, Any], hists: Any, unit: str,
                  label: Label, metric: str | None = None) -> None:
    """Print the map's histograms every interval until stopped (and once at the end).

    ``label(key, comm)`` gives each histogram its title line (None: none) and its
    JSON labels, which are also the label values of the histogram family
    ``metric`` when the run exports metrics."""
    pending = Pending(hists, label, metric)
    if ctx.metrics is not None:
        with ctx.metrics.collecting(pending.take):
            _print_intervals(ctx, options, pending, unit)
    else:
        _print_intervals(ctx, options, pending, unit)


def _print_intervals(ctx: RunContext, options: dict[str, Any], pending: Pending,
                     unit: str) -> None:
    interval = options.get("interval")
    times = options.get("times")
    printed = 0
    while True:
        ctx.sleep(interval or 365 * 86400)
        stopping = ctx.should_stop()
        if not ctx.output.as_json:
            ctx.out.write("\n")
            if options.get("print_time"):
                ctx.out.write(f"{time.strftime('%H:%M:%S'):<8}\n")
        if ctx.metrics is not None:
            ctx.metrics.refresh()   # the hook takes from the map and counts it exported
        else:
            pending.take()
        for key, slots, c in pending.pop():
            title, labels = pending.label(key, c)
            if title is not None and not ctx.output.as_json:
                ctx.out.write(title + "\n")   # "" is a line too (biolatency's)
            ctx.hist(slots, unit, labels=labels)
        ctx.out.flush()
        printed += 1
        if stopping or (times and printed >= times):
            return
