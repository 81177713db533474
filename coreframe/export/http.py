"""The HTTP endpoint of a run or of ``coreframe serve``: ``/metrics`` (Prometheus text),
``/healthz`` (the process serves: 200) and ``/readyz`` (every tool is running: 200, else
503), both with a JSON body saying each tool's state.

The socket is bound when the server is made, before any tool is loaded, so a port
in use is a usage error and nothing is left in the kernel.
"""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from ..options import split_host_port

if TYPE_CHECKING:
    from collections.abc import Callable


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class MetricsServer:
    """Bind ``address`` (HOST:PORT) now; :meth:`start` serves it from a thread.

    ``registry`` is a prometheus_client registry; ``health()`` returns
    ``(ready, document)``.
    """

    def __init__(self, address: str, registry: Any,
                 health: Callable[[], tuple[bool, dict[str, Any]]] | None = None) -> None:
        host, port = split_host_port(address)
        self.address = address
        self.registry = registry
        self.health = health or (lambda: (True, {}))
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                path = self.path.split("?", 1)[0]
                if path == "/metrics":
                    from .prometheus import exposition

                    try:
                        body, ctype = exposition(owner.registry)
                        code = 200
                    except Exception as exc:  # report, never kill the server thread
                        body, ctype, code = f"{exc}\n".encode(), "text/plain", 500
                elif path in ("/healthz", "/readyz", "/"):
                    ready, doc = owner.health()
                    code = 200 if (ready or path == "/healthz") else 503
                    doc = {"status": "ok" if code == 200 else "not ready", **doc}
                    body = (json.dumps(doc, sort_keys=True) + "\n").encode()
                    ctype = "application/json"
                else:
                    body, ctype, code = b"not found: try /metrics, /healthz or /readyz\n", \
                        "text/plain", 404
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server_cls = type("Server", (_Server,), {
            "address_family": socket.AF_INET6 if ":" in host else socket.AF_INET})
        self.server = server_cls((host, port), Handler)
        self.port = self.server.server_address[1]
        self.thread: threading.Thread | None = None

    def url(self, path: str = "/metrics") -> str:
        host, _ = split_host_port(self.address)
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{self.port}{path}"

    def start(self) -> None:
        self.thread = threading.Thread(target=self.server.serve_forever, name="coreframe-http",
                                       kwargs={"poll_interval": 0.2}, daemon=True)
        self.thread.start()

    def close(self) -> None:
        if self.thread is not None:
            self.server.shutdown()
            self.thread.join(5)
        self.server.server_close()
