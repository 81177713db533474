"""``coreframe run TOOL --prometheus HOST:PORT --otlp URL``: exports for one tool's run.

Set up after the tool is made and before it loads anything: the optional
packages are checked and the port is bound first, so a missing package or a port
in use is one line and nothing reaches the kernel.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

from ..metrics import MetricSet

if TYPE_CHECKING:
    from ..tool import RunContext, Tool


def otlp_interval(default: float = 10.0) -> float:
    """Seconds between OTLP metric exports: OTEL_METRIC_EXPORT_INTERVAL (ms), as in the SDK."""
    raw = os.environ.get("OTEL_METRIC_EXPORT_INTERVAL", "")
    try:
        return max(float(raw) / 1000.0, 0.1) if raw else default
    except ValueError:
        return default


class RunExports:
    """The exporters of one ``coreframe run``; :meth:`close` stops them."""

    def __init__(self, tool: Tool, ctx: RunContext, prometheus: str | None,
                 otlp: str | None) -> None:
        self.server: Any = None
        self.otlp: Any = None
        ms = MetricSet(tool.metric_families())
        ctx.metrics = ms
        name = tool.name
        extra: list[tuple[dict[str, str], MetricSet]] = []

        def sources() -> list[tuple[dict[str, str], MetricSet]]:
            return [({"tool": name}, ms), *extra]

        if prometheus:
            from .prometheus import registry, require

            require()
            from .http import MetricsServer

            try:
                self.server = MetricsServer(prometheus, registry(sources))
            except OSError as exc:
                sys.stderr.write(f"coreframe: error: --prometheus {prometheus}: cannot listen: "
                                 f"{exc.strerror or exc} (pick another port)\n")
                raise SystemExit(2) from None
        if otlp:
            from .otlp import OtlpExporter

            as_json = bool(tool.options.get("as_json"))
            self.otlp = OtlpExporter(otlp, lambda: [({"tool": name}, ms)],
                                     interval=otlp_interval(), events=as_json,
                                     log=lambda msg: ctx.status(f"{name}: {msg}"))
            extra.append(({}, self.otlp.stats))
            if as_json:
                from .sinks import Tee

                exporter = self.otlp
                ctx.out = Tee(ctx.out, lambda line: exporter.offer(name, line))
        if self.server is not None:
            self.server.start()
            ctx.status(f"Serving Prometheus metrics on {self.server.url()}")
        if self.otlp is not None:
            self.otlp.start()
            what = "metrics and events" if self.otlp.events else "metrics (events with --json)"
            ctx.status(f"Exporting {what} over OTLP/HTTP to {self.otlp.url}")

    def close(self) -> None:
        if self.otlp is not None:
            self.otlp.close()
        if self.server is not None:
            self.server.close()
