"""Prometheus exposition of :class:`coreframe.metrics.MetricSet`s (needs prometheus-client).

Counters become ``NAME_total``, gauges stay, log2 histograms become classic
histograms with one bucket per slot whose ``le`` is the slot's inclusive upper
bound (so the buckets are the kernel's slots, not an approximation). Every
sample carries its source's constant labels (``tool``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import ToolError
from ..metrics import Histogram, HistValue
from ..runtime.compat import zip_strict

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

    from ..metrics import Family, MetricSet

Sources = "Callable[[], Sequence[tuple[dict[str, str], MetricSet]]]"


def _client() -> Any:
    try:
        import prometheus_client
        import prometheus_client.core  # noqa: F401
        import prometheus_client.exposition  # noqa: F401
    except ImportError:
        raise ToolError("--prometheus needs the prometheus-client package: "
                        "pip install 'coreframe[prometheus]'") from None
    return prometheus_client


def require() -> None:
    """Fail now, in one line, when prometheus-client is missing."""
    _client()


def bucket_text(bound: float) -> str:
    """The ``le`` label of a bucket: the bound as Python prints a float (``4095.0``)."""
    return str(float(bound))


def to_families(items: Iterable[tuple[dict[str, str], Family]]) -> list[Any]:
    """prometheus_client metric families for (constant labels, Family) pairs; families of
    the same name from several sources (one per tool) merge into one."""
    core = _client().core
    merged: dict[str, tuple[Any, list[str], list[tuple[dict[str, str], Any]]]] = {}
    for const, fam in items:
        m = fam.metric
        entry = merged.get(m.name)
        if entry is None:
            entry = merged[m.name] = (m, [], [])
        names = entry[1]
        for label in (*const, *m.labels):
            if label not in names:
                names.append(label)
        for values, value in fam.samples:
            labels = dict(const)
            labels.update(zip_strict(m.labels, values))
            entry[2].append((labels, value))
    out = []
    for name, (m, names, samples) in merged.items():
        if m.kind == "counter":
            pf = core.CounterMetricFamily(name, m.help, labels=names)
        elif m.kind == "gauge":
            pf = core.GaugeMetricFamily(name, m.help, labels=names)
        else:
            pf = core.HistogramMetricFamily(name, m.help, labels=names)
            assert isinstance(m, Histogram)
            les = [bucket_text(b) for b in m.upper_bounds()]
        for labels, value in samples:
            lv = [str(labels.get(n, "")) for n in names]
            if m.kind == "histogram":
                assert isinstance(value, HistValue)
                running = 0
                buckets = []
                for le, count in zip_strict(les, value.slots):
                    running += count
                    buckets.append((le, running))
                buckets.append(("+Inf", running))
                pf.add_metric(lv, buckets, sum_value=value.sum * m.scale)  # type: ignore[attr-defined]
            else:
                pf.add_metric(lv, value)
        out.append(pf)
    return out


class Collector:
    """A prometheus_client collector over whatever ``sources()`` returns at scrape time."""

    def __init__(self, sources: Callable[[], Sequence[tuple[dict[str, str], MetricSet]]]) -> None:
        self.sources = sources

    def collect(self) -> Iterable[Any]:
        from ..metrics import iter_sets

        return to_families(iter_sets(self.sources()))


def registry(sources: Callable[[], Sequence[tuple[dict[str, str], MetricSet]]]) -> Any:
    client = _client()
    reg = client.CollectorRegistry(auto_describe=False)
    reg.register(Collector(sources))
    return reg


def exposition(reg: Any) -> tuple[bytes, str]:
    """The text exposition of ``reg`` and its content type."""
    exp = _client().exposition
    return exp.generate_latest(reg), exp.CONTENT_TYPE_LATEST
