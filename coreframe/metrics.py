"""Metrics a tool declares once and the framework exports (Prometheus, OTLP).

A tool lists its metrics as a class attribute::

    class ExecSnoop(Tool):
        metrics = (Counter("coreframe_execsnoop_execs", "Successful exec() calls", ("comm",)),
                   Histogram("coreframe_execsnoop_lifetime_seconds", "...", scale=1e-9))

and, when a run exports metrics (``--prometheus``, ``--otlp``, ``coreframe serve``),
finds a :class:`MetricSet` in ``ctx.metrics`` (None otherwise, so a plain run
pays nothing). Values come in two ways: counted as records are read
(``ctx.metrics.inc(name, labels)``), or read from the kernel's maps when an
exporter asks (``with ctx.metrics.collecting(hook): ...``: the hook runs at every
scrape and OTLP export while the maps are open, never after).

Histograms are log2 histograms in the slot numbering the BPF program fills (bcc's
or libbpf-tools', see :mod:`coreframe.output`): exporters turn slot *i* into a
classic Prometheus bucket whose ``le`` is the slot's inclusive upper bound (times
``scale``, e.g. 1e-9 for nanoseconds exported as seconds), so nothing is ever
re-bucketed.

Label cardinality is bounded (docs/metrics.md): a family keeps at most
``4 * top`` series in memory, folding the smallest into one series whose labels
are all ``"other"`` when it grows past that, and exporters show the ``top``
largest (by value, by count for histograms) plus ``other``. Sums over a family
stay exact; only which series are named changes.

This module imports neither prometheus_client nor OpenTelemetry: exporters live in
``coreframe.export`` and are imported only when used.
"""

from __future__ import annotations

import _thread

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence
    from typing import Any

OTHER = "other"
DEFAULT_TOP = 50


class Metric:
    """A metric family: name (without ``_total``), help text, label names."""

    kind = ""
    __slots__ = ("name", "help", "labels", "top")

    def __init__(self, name: str, help: str, labels: Sequence[str] = (), *,
                 top: int | None = None) -> None:
        self.name = name
        self.help = help
        self.labels = tuple(labels)
        self.top = top

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, labels={self.labels!r})"

    def with_labels(self, labels: Sequence[str]) -> Metric:
        """The same family with other label names (e.g. an optional ``pid``)."""
        new = type(self).__new__(type(self))
        for cls in type(self).__mro__:
            for slot in getattr(cls, "__slots__", ()):
                if hasattr(self, slot):
                    setattr(new, slot, getattr(self, slot))
        new.labels = tuple(labels)
        return new


class Counter(Metric):
    """A monotonic count (exported as ``NAME_total`` to Prometheus, a cumulative sum to OTLP)."""

    kind = "counter"
    __slots__ = ()


class Gauge(Metric):
    """A value that goes up and down."""

    kind = "gauge"
    __slots__ = ()


class Histogram(Metric):
    """A log2 histogram of ``slots`` slots in ``numbering`` ("bcc": slot 0 holds 0, slot
    i holds 2^(i-1)..2^i-1; "libbpf": slot 0 holds 0 and 1, slot i holds 2^i..2^(i+1)-1).
    Observed values and sums are in the BPF program's unit; ``scale`` converts them to
    the exported unit (1e-9: nanoseconds to seconds)."""

    kind = "histogram"
    __slots__ = ("slots", "numbering", "scale")

    def __init__(self, name: str, help: str, labels: Sequence[str] = (), *, slots: int = 64,
                 numbering: str = "bcc", scale: float = 1.0, top: int | None = None) -> None:
        if numbering not in ("bcc", "libbpf"):
            raise ValueError(f"histogram numbering {numbering!r}: want 'bcc' or 'libbpf'")
        super().__init__(name, help, labels, top=top)
        self.slots = slots
        self.numbering = numbering
        self.scale = scale

    def slot_of(self, value: int) -> int:
        """The slot a value falls in, as the BPF side computes it."""
        n = int(value).bit_length()
        if self.numbering == "libbpf":
            n = max(n - 1, 0)
        return min(n, self.slots - 1)

    def upper_bounds(self) -> list[float]:
        """Each slot's inclusive upper bound in the exported unit: the ``le`` of its bucket."""
        from .output import libbpf_log2_bounds, log2_bounds

        bounds = libbpf_log2_bounds if self.numbering == "libbpf" else log2_bounds
        per = 1 / self.scale
        if per == round(per):
            # divide by the whole number of units per exported unit (1e6 us in a second):
            # 15 / 1e6 is the double nearest 1.5e-05, 15 * 1e-6 is not
            return [float(bounds(i)[1]) / per for i in range(self.slots)]
        return [float(bounds(i)[1]) * self.scale for i in range(self.slots)]


# Every run's own metrics: what ctx.lost() reported (docs/output.md's lost records).
LOST = Counter("coreframe_lost_records",
               "Records lost or dropped, as the tool reported them (event: lost, dropped, "
               "undecoded)", ("event",))


class HistValue:
    """One histogram series: per-slot counts and the sum of observed values."""

    __slots__ = ("slots", "sum")

    def __init__(self, n: int) -> None:
        self.slots = [0] * n
        self.sum = 0

    def count(self) -> int:
        return sum(self.slots)

    def add(self, other: HistValue) -> None:
        s = self.slots
        for i, v in enumerate(other.slots):
            if v:
                s[i] += v
        self.sum += other.sum

    def copy(self) -> HistValue:
        new = HistValue(0)
        new.slots = list(self.slots)
        new.sum = self.sum
        return new


class Family:
    """A family's samples at one moment: ``(label values, value)`` pairs, where the
    value is a number or a :class:`HistValue`; what exporters turn into their format."""

    __slots__ = ("metric", "samples")

    def __init__(self, metric: Metric, samples: list[tuple[tuple[str, ...], Any]]) -> None:
        self.metric = metric
        self.samples = samples


class MetricSet:
    """One run's metric values, for the families ``metrics`` declares (plus LOST).

    ``inc``/``set``/``observe``/``add_hist`` are called from the thread reading
    records and take no lock (each is a few dict operations under the GIL);
    ``snapshot`` (exporters) and ``collecting`` hooks are serialized by a lock, so a
    hook never runs after the ``with`` block that registered it has ended.
    """

    def __init__(self, metrics: Sequence[Metric] = (), *, top: int = DEFAULT_TOP) -> None:
        self.top = top
        self.families: dict[str, Metric] = {}
        self.values: dict[str, dict[tuple[str, ...], Any]] = {}
        for m in (*metrics, LOST):
            if m.name in self.families:
                continue
            self.families[m.name] = m
            self.values[m.name] = {}
        self._lock = _thread.allocate_lock()
        self._hooks: list[Callable[[MetricSet], None]] = []
        self.hook_errors = 0
        self.last_hook_error = ""

    def _limit(self, metric: Metric) -> int:
        return metric.top or self.top

    # -- updating (hot paths) --

    def inc(self, name: str, labels: tuple[str, ...] = (), n: int | float = 1) -> None:
        d = self.values[name]
        if labels in d:
            d[labels] += n
        else:
            d[labels] = n
            if len(d) > 4 * self._limit(self.families[name]):
                self._compact(name)

    def set(self, name: str, labels: tuple[str, ...], value: int | float) -> None:
        d = self.values[name]
        new = labels not in d
        d[labels] = value
        if new and len(d) > 4 * self._limit(self.families[name]):
            self._compact(name)

    def _hist(self, name: str, labels: tuple[str, ...]) -> HistValue:
        d = self.values[name]
        h = d.get(labels)
        if h is None:
            m = self.families[name]
            assert isinstance(m, Histogram), m
            h = d[labels] = HistValue(m.slots)
            if len(d) > 4 * self._limit(m):
                self._compact(name)
                h = d.get(labels) or d[(OTHER,) * len(labels)]
        return h

    def observe(self, name: str, labels: tuple[str, ...], value: int) -> None:
        """Count one value (in the BPF program's unit) into its log2 slot."""
        m = self.families[name]
        h = self._hist(name, labels)
        h.slots[m.slot_of(value)] += 1  # type: ignore[attr-defined]
        h.sum += value

    def add_hist(self, name: str, labels: tuple[str, ...], slots: Sequence[int],
                 total: int) -> None:
        """Add per-slot counts read from a map (already in the family's numbering)."""
        h = self._hist(name, labels)
        s = h.slots
        for i, v in enumerate(slots):
            if v:
                s[i] += v
        h.sum += total

    def _compact(self, name: str) -> None:
        """Fold all but the 2*top largest series into ``other`` (bounded memory)."""
        m = self.families[name]
        d = self.values[name]
        keep = 2 * self._limit(m)
        key = _size_key(m)
        other = (OTHER,) * len(m.labels)
        ranked = sorted((k for k in d if k != other), key=lambda k: key(d[k]), reverse=True)
        for k in ranked[keep:]:
            _fold(d, other, d.pop(k), m)

    # -- reading (exporters) --

    def collecting(self, hook: Callable[[MetricSet], None]) -> _Hook:
        """``with ctx.metrics.collecting(hook):`` runs ``hook(metric_set)`` before every
        snapshot while the block runs (read the maps there); never after it ends."""
        return _Hook(self, hook)

    def refresh(self) -> None:
        """Run the collect hooks now (a tool about to change what they read)."""
        with self._lock:
            self._run_hooks()

    def _run_hooks(self) -> None:
        for hook in list(self._hooks):
            try:
                hook(self)
            except Exception as exc:  # a scrape must not fail because one map read did
                self.hook_errors += 1
                self.last_hook_error = f"{type(exc).__name__}: {exc}"

    def snapshot(self, refresh: bool = True) -> list[Family]:
        """Every family's current samples, top-N plus ``other`` per family."""
        with self._lock:
            if refresh:
                self._run_hooks()
            out = []
            for name, m in self.families.items():
                d = self.values[name].copy()
                if m.kind == "histogram":
                    d = {k: v.copy() for k, v in d.items()}
                out.append(Family(m, _top(m, d, self._limit(m))))
            return out


class _Hook:
    __slots__ = ("ms", "hook")

    def __init__(self, ms: MetricSet, hook: Callable[[MetricSet], None]) -> None:
        self.ms = ms
        self.hook = hook

    def __enter__(self) -> _Hook:
        with self.ms._lock:
            self.ms._hooks.append(self.hook)
        return self

    def __exit__(self, *exc: Any) -> None:
        # Last reading while the maps are still open, then never again.
        with self.ms._lock:
            try:
                self.hook(self.ms)
            except Exception:
                pass
            self.ms._hooks.remove(self.hook)


def _size_key(m: Metric) -> Callable[[Any], float]:
    if m.kind == "histogram":
        return lambda v: v.count()
    return lambda v: v


def _fold(d: dict[tuple[str, ...], Any], other: tuple[str, ...], value: Any, m: Metric) -> None:
    if m.kind == "histogram":
        if other in d:
            d[other].add(value)
        else:
            d[other] = value
    elif m.kind == "gauge":
        d[other] = d.get(other, 0) + value
    else:
        d[other] = d.get(other, 0) + value


def _top(m: Metric, d: dict[tuple[str, ...], Any], limit: int) -> list[tuple[tuple[str, ...],
                                                                              Any]]:
    other = (OTHER,) * len(m.labels)
    if len(d) > limit + (other in d):
        key = _size_key(m)
        ranked = sorted((k for k in d if k != other), key=lambda k: key(d[k]), reverse=True)
        for k in ranked[limit:]:
            _fold(d, other, d.pop(k), m)
    return sorted(d.items(), key=lambda kv: kv[0])


def iter_sets(sources: Sequence[tuple[dict[str, str], MetricSet]]) -> Iterator[
        tuple[dict[str, str], Family]]:
    """(constant labels, family) for every family of every set."""
    for labels, ms in sources:
        for fam in ms.snapshot():
            yield labels, fam
