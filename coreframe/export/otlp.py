"""OTLP/HTTP (protobuf) export of tool metrics and events, on a thread of its own.

Needs the optional extra ``coreframe[otlp]`` (opentelemetry-sdk and
opentelemetry-exporter-otlp-proto-http; not the gRPC exporter). The SDK's own
instruments cannot carry what a BPF map holds (there is no asynchronous
histogram, and recording millions of reads one by one would re-bucket them), so
each export builds the SDK's metric data model directly from a snapshot of the
tools' :class:`~coreframe.metrics.MetricSet`s (cumulative temporality, log2
slots as explicit bucket bounds) and hands it to the SDK's OTLP/HTTP exporter.

Events (the JSON lines a tool writes) become log records: the reading thread only
appends the line to a bounded queue (:meth:`OtlpExporter.offer`, never blocks,
drops the newest when full and counts it); this thread decodes and sends them in
batches. An endpoint that fails or cannot be reached is retried with exponential
back-off (1 s doubling up to 60 s) and every failure is counted
(``coreframe_otlp_export_failures``); metrics are cumulative, so the next
successful export carries everything, and queued events wait for it.
"""

from __future__ import annotations

import collections
import json
import threading
import time
from typing import TYPE_CHECKING, Any

from ..errors import ToolError
from ..metrics import Counter, Gauge, HistValue, MetricSet
from ..runtime.compat import zip_strict

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

BACKOFF_MIN_S = 1.0
BACKOFF_MAX_S = 60.0
LOG_BATCH = 512
QUEUE_MAX = 8192
EXPORT_TIMEOUT_S = 5.0

STATS = (
    Counter("coreframe_otlp_exports", "OTLP export requests that succeeded", ("signal",)),
    Counter("coreframe_otlp_export_failures",
            "OTLP export requests that failed (endpoint unreachable or refused); retried "
            "with back-off", ("signal",)),
    Counter("coreframe_otlp_events_dropped",
            "Events not exported as log records because the export queue was full"),
    Gauge("coreframe_otlp_events_queued", "Events waiting to be exported as log records"),
)


def _sdk() -> dict[str, Any]:
    try:
        from opentelemetry._logs import LogRecord, SeverityNumber
        from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        from opentelemetry.sdk._logs import ReadableLogRecord
        from opentelemetry.sdk.metrics.export import (
            AggregationTemporality,
            Gauge,
            Histogram,
            HistogramDataPoint,
            Metric,
            MetricExportResult,
            MetricsData,
            NumberDataPoint,
            ResourceMetrics,
            ScopeMetrics,
            Sum,
        )
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.util.instrumentation import InstrumentationScope
    except ImportError as exc:
        raise ToolError("--otlp needs the OpenTelemetry SDK and its OTLP/HTTP exporter: "
                        f"pip install 'coreframe[otlp]' ({exc})") from None
    return {
        "LogRecord": LogRecord,
        "SeverityNumber": SeverityNumber,
        "OTLPLogExporter": OTLPLogExporter,
        "OTLPMetricExporter": OTLPMetricExporter,
        "ReadableLogRecord": ReadableLogRecord,
        "AggregationTemporality": AggregationTemporality,
        "Gauge": Gauge,
        "Histogram": Histogram,
        "HistogramDataPoint": HistogramDataPoint,
        "Metric": Metric,
        "MetricExportResult": MetricExportResult,
        "MetricsData": MetricsData,
        "NumberDataPoint": NumberDataPoint,
        "ResourceMetrics": ResourceMetrics,
        "ScopeMetrics": ScopeMetrics,
        "Sum": Sum,
        "Resource": Resource,
        "InstrumentationScope": InstrumentationScope,
    }


def require() -> None:
    """Fail now, in one line, when the OpenTelemetry packages are missing."""
    _sdk()


def _clean(value: Any) -> Any:
    """JSON data as OTLP AnyValue accepts it (no nulls)."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_clean(v) for v in value if v is not None]
    return value


class OtlpExporter:
    """Export ``sources()`` (constant labels, MetricSet) every ``interval`` seconds and
    offered events as log records, to the OTLP/HTTP endpoint at ``url``."""

    def __init__(self, url: str,
                 sources: Callable[[], Sequence[tuple[dict[str, str], MetricSet]]], *,
                 interval: float = 10.0, events: bool = True, queue_max: int = QUEUE_MAX,
                 log: Callable[[str], None] | None = None, service: str = "coreframe") -> None:
        sdk = _sdk()
        self.sdk = sdk
        base = url.rstrip("/")
        for suffix in ("/v1/metrics", "/v1/logs"):
            if base.endswith(suffix):
                base = base[: -len(suffix)]
        self.url = base
        self.sources = sources
        self.interval = interval
        self.events = events
        self.queue: collections.deque[tuple[str, str]] = collections.deque()
        self.queue_max = queue_max
        self.log = log or (lambda msg: None)
        self.stats = MetricSet(STATS)
        import logging
        import socket

        # The SDK logs every failed request; we count them and say so once per outage.
        logging.getLogger("opentelemetry.exporter").setLevel(logging.CRITICAL)
        self.resource = sdk["Resource"].create({"service.name": service,
                                                "host.name": socket.gethostname()})
        self.scope = sdk["InstrumentationScope"]("coreframe")
        self.metric_exporter = sdk["OTLPMetricExporter"](endpoint=f"{base}/v1/metrics",
                                                         timeout=EXPORT_TIMEOUT_S)
        self.log_exporter = sdk["OTLPLogExporter"](endpoint=f"{base}/v1/logs",
                                                   timeout=EXPORT_TIMEOUT_S)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._next = {"metrics": 0.0, "logs": 0.0}
        self._streak = {"metrics": 0, "logs": 0}
        self.started_ns = time.time_ns()

    # -- the reading threads' side --

    def offer(self, tool: str, line: str) -> None:
        """Queue one event (a JSON line) for export; drop and count it when the queue is full."""
        if len(self.queue) >= self.queue_max:
            self.stats.inc("coreframe_otlp_events_dropped")
            return
        self.queue.append((tool, line))

    # -- the export thread --

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="coreframe-otlp", daemon=True)
        self._thread.start()

    def close(self, timeout: float = 10.0) -> None:
        """Stop the thread, then one last export of metrics and queued events, unless the
        endpoint is failing (a stop must not wait for retries to an endpoint that is down)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(min(timeout, EXPORT_TIMEOUT_S))
            if self._thread.is_alive():  # still inside a request: do not start another
                return
        failing = dict(self._streak)
        self._next = {"metrics": 0.0, "logs": 0.0}
        if not failing["metrics"]:
            self.export_metrics()
        deadline = time.monotonic() + timeout
        while self.events and not failing["logs"] and self.queue \
                and time.monotonic() < deadline:
            if not self.export_logs():
                break
        if self.queue:
            self.log(f"{len(self.queue)} events were not exported over OTLP (endpoint failing)")
        for exp in (self.metric_exporter, self.log_exporter):
            try:
                exp.shutdown()
            except Exception:
                pass

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            now = time.monotonic()
            if self.events and self.queue and now >= self._next["logs"]:
                self.export_logs()
            if now >= self._next["metrics"]:
                if self.export_metrics():
                    self._next["metrics"] = time.monotonic() + self.interval
            self.stats.set("coreframe_otlp_events_queued", (), len(self.queue))

    def _result(self, signal: str, ok: bool, why: str = "") -> bool:
        if ok:
            if self._streak[signal]:
                self.log(f"OTLP {signal} export to {self.url} works again")
            self._streak[signal] = 0
            self.stats.inc("coreframe_otlp_exports", (signal,))
            return True
        self.stats.inc("coreframe_otlp_export_failures", (signal,))
        n = self._streak[signal]
        if n == 0:
            self.log(f"OTLP {signal} export to {self.url} failed{': ' + why if why else ''}; "
                     "retrying with back-off (counted in coreframe_otlp_export_failures)")
        self._streak[signal] = n + 1
        self._next[signal] = time.monotonic() + min(BACKOFF_MAX_S, BACKOFF_MIN_S * (2 ** n))
        return False

    def export_metrics(self) -> bool:
        if time.monotonic() < self._next["metrics"] and self._streak["metrics"]:
            return False
        try:
            data = self.metrics_data()
            result = self.metric_exporter.export(data, timeout_millis=EXPORT_TIMEOUT_S * 1000)
            return self._result("metrics", result == self.sdk["MetricExportResult"].SUCCESS)
        except Exception as exc:
            return self._result("metrics", False, f"{type(exc).__name__}: {exc}")

    def export_logs(self) -> bool:
        batch = []
        for _ in range(min(LOG_BATCH, len(self.queue))):
            batch.append(self.queue.popleft())
        if not batch:
            return True
        try:
            records = [self._log_record(tool, line) for tool, line in batch]
            result = self.log_exporter.export(records)
            ok = getattr(result, "name", str(result)) == "SUCCESS"
        except Exception as exc:
            ok = False
            why = f"{type(exc).__name__}: {exc}"
        else:
            why = ""
        if not ok:
            # back to the head of the queue, in order; what no longer fits is dropped, counted
            room = self.queue_max - len(self.queue)
            keep = batch[:max(room, 0)]
            if len(batch) > len(keep):
                self.stats.inc("coreframe_otlp_events_dropped", (), len(batch) - len(keep))
            self.queue.extendleft(reversed(keep))
        return self._result("logs", ok, why)

    # -- OTLP data model --

    def _log_record(self, tool: str, line: str) -> Any:
        sdk = self.sdk
        try:
            body = json.loads(line)
        except ValueError:
            body = line
        now = time.time_ns()
        ts = now
        event = "record"
        if isinstance(body, dict):
            body = _clean(body)
            t = body.get("time")
            if isinstance(t, (int, float)):
                ts = int(t * 1e9)
            event = str(body.get("event", event))
        rec = sdk["LogRecord"](timestamp=ts, observed_timestamp=now, body=body,
                               severity_number=sdk["SeverityNumber"].INFO, severity_text="INFO",
                               attributes={"coreframe.tool": tool},
                               event_name=f"coreframe.{tool}.{event}")
        return sdk["ReadableLogRecord"](rec, resource=self.resource,
                                        instrumentation_scope=self.scope)

    def metrics_data(self) -> Any:
        from ..metrics import Histogram, iter_sets

        sdk = self.sdk
        now = time.time_ns()
        cumulative = sdk["AggregationTemporality"].CUMULATIVE
        merged: dict[str, tuple[Any, list[Any]]] = {}
        sets = list(self.sources()) + [({}, self.stats)]
        for const, fam in iter_sets(sets):
            m = fam.metric
            entry = merged.setdefault(m.name, (m, []))
            start = self.started_ns
            for values, value in fam.samples:
                attrs = dict(const)
                attrs.update(zip_strict(m.labels, values))
                if m.kind == "histogram":
                    assert isinstance(m, Histogram) and isinstance(value, HistValue)
                    entry[1].append(sdk["HistogramDataPoint"](
                        attributes=attrs, start_time_unix_nano=start, time_unix_nano=now,
                        count=value.count(), sum=value.sum * m.scale,
                        bucket_counts=[*value.slots, 0], explicit_bounds=m.upper_bounds(),
                        min=None, max=None))
                else:
                    entry[1].append(sdk["NumberDataPoint"](
                        attributes=attrs, start_time_unix_nano=start, time_unix_nano=now,
                        value=value))
        metrics = []
        for name, (m, points) in merged.items():
            if not points:  # nothing seen yet: OTLP has no empty metric
                continue
            if m.kind == "counter":
                data = sdk["Sum"](data_points=points, aggregation_temporality=cumulative,
                                  is_monotonic=True)
            elif m.kind == "gauge":
                data = sdk["Gauge"](data_points=points)
            else:
                data = sdk["Histogram"](data_points=points, aggregation_temporality=cumulative)
            metrics.append(sdk["Metric"](name=name, description=m.help, unit="", data=data))
        scope = sdk["ScopeMetrics"](scope=self.scope, metrics=metrics, schema_url="")
        rm = sdk["ResourceMetrics"](resource=self.resource, scope_metrics=[scope], schema_url="")
        return sdk["MetricsData"](resource_metrics=[rm])
