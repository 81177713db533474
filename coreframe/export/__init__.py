"""Exporters of tool metrics and events: Prometheus (``prometheus``), OTLP/HTTP (``otlp``),
and the HTTP endpoint that serves ``/metrics`` and health (``http``).

Each needs an optional extra and is imported only by a run that asks for it.
"""
