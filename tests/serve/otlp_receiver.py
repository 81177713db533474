"""A local OTLP/HTTP endpoint: keeps every request, decoded with the official protobufs."""

from __future__ import annotations

import gzip
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

logs_pb2 = pytest.importorskip("opentelemetry.proto.collector.logs.v1.logs_service_pb2")
metrics_pb2 = pytest.importorskip("opentelemetry.proto.collector.metrics.v1.metrics_service_pb2")


class Receiver:
    def __init__(self, fail: bool = False) -> None:
        self.metrics: list[Any] = []
        self.logs: list[Any] = []
        self.requests = 0
        self.lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                enc = self.headers.get("Content-Encoding", "")
                if enc == "gzip":
                    body = gzip.decompress(body)
                elif enc == "deflate":
                    body = zlib.decompress(body)
                with owner.lock:
                    owner.requests += 1
                    if self.path == "/v1/metrics":
                        req = metrics_pb2.ExportMetricsServiceRequest()
                        req.ParseFromString(body)
                        owner.metrics.append(req)
                        reply = metrics_pb2.ExportMetricsServiceResponse()
                    elif self.path == "/v1/logs":
                        req = logs_pb2.ExportLogsServiceRequest()
                        req.ParseFromString(body)
                        owner.logs.append(req)
                        reply = logs_pb2.ExportLogsServiceResponse()
                    else:
                        reply = None
                data = reply.SerializeToString() if reply is not None else b""
                self.send_response(200 if reply is not None else 404)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -- reading what came --

    def last_points(self, name: str) -> list[tuple[dict[str, str], Any]]:
        """(attributes, data point) of metric ``name`` in the latest export that has it."""
        with self.lock:
            requests = list(self.metrics)
        for req in reversed(requests):
            out = []
            for rm in req.resource_metrics:
                for sm in rm.scope_metrics:
                    for m in sm.metrics:
                        if m.name != name:
                            continue
                        which = m.WhichOneof("data")
                        assert which is not None, f"metric {m.name} carries no data"
                        for dp in getattr(m, which).data_points:
                            attrs = {a.key: a.value.string_value for a in dp.attributes}
                            out.append((attrs, dp))
            if out:
                return out
        return []

    def value(self, name: str, **labels: str) -> Any:
        for attrs, dp in self.last_points(name):
            if all(attrs.get(k) == v for k, v in labels.items()):
                return dp
        return None

    def log_bodies(self) -> list[tuple[dict[str, str], dict[str, Any]]]:
        """(attributes, body as a dict) of every log record received."""
        with self.lock:
            requests = list(self.logs)
        out = []
        for req in requests:
            for rl in req.resource_logs:
                for sl in rl.scope_logs:
                    for rec in sl.log_records:
                        attrs = {a.key: a.value.string_value for a in rec.attributes}
                        out.append((attrs, _any(rec.body)))
        return out


def _any(v: Any) -> Any:
    which = v.WhichOneof("value")
    if which == "kvlist_value":
        return {kv.key: _any(kv.value) for kv in v.kvlist_value.values}
    if which == "array_value":
        return [_any(x) for x in v.array_value.values]
    if which is None:
        return None
    return getattr(v, which)
