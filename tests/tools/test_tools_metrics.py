"""Issue 19 on `coreframe run`: --prometheus and --otlp on the tools that declare metrics.

- ``--prometheus 19477`` (no host) is a usage error, exit 2, before anything loads;
- a line says where metrics are served;
- ``/metrics`` holds the counts from the first scrape, without ``--interval``;
- ``--otlp URL --json`` sends metrics and each event as a log record.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from read_loop import ReadLoop
from tool_proc import COREFRAME, ToolProcess

pytestmark = pytest.mark.usefixtures("need_root")

WORKLOAD = [(16, 1000), (128, 1000), (2048, 1000)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("tool", ["readhist", "execsnoop"])
def test_bare_port_is_a_usage_error_before_loading(tool: str) -> None:
    proc = subprocess.run([COREFRAME, "run", tool, "--prometheus", "19477"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "Tracing" not in proc.stderr
    [line] = [x for x in proc.stderr.splitlines() if x.startswith("Error:")]
    assert "'19477' is not HOST:PORT" in line and "127.0.0.1:19477" in line, line


def test_bad_otlp_url_is_a_usage_error() -> None:
    proc = subprocess.run([COREFRAME, "run", "execsnoop", "--otlp", "localhost:4318"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "is not an http:// or https:// URL" in proc.stderr


def test_port_in_use_is_one_line_exit_2() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = subprocess.run([COREFRAME, "run", "execsnoop", "--prometheus",
                               f"127.0.0.1:{port}"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.splitlines() == [
        f"coreframe: error: --prometheus 127.0.0.1:{port}: cannot listen: Address already in "
        "use (pick another port)"]


def _scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        return resp.read().decode()


def test_readhist_metrics_current_without_interval(tmp_path: Path) -> None:
    """No --interval: the first scrape after the reads already holds them exactly."""
    parser = pytest.importorskip("prometheus_client.parser")
    port = _free_port()
    name = f"cfm{os.getpid() % 100000}"[:15]
    with ReadLoop(tmp_path, name, [WORKLOAD]) as wl, \
            ToolProcess(["readhist", "-p", str(wl.pid), "--prometheus", f"127.0.0.1:{port}",
                         "--prometheus-pid"]) as tr:
        assert f"Serving Prometheus metrics on http://127.0.0.1:{port}/metrics" in tr.stderr
        wl.go()
        text = _scrape(port)
        wl.finish()
        assert tr.stop() == 0, tr.stderr
    fams = {f.name: f for f in parser.text_string_to_metric_families(text)}
    samples = [s for s in fams["coreframe_vfs_read_bytes"].samples
               if s.labels.get("pid") == str(wl.pid)]
    by = {(s.name, s.labels.get("le")): s.value for s in samples}
    _, reads, nbytes = wl.expected()
    assert by[("coreframe_vfs_read_bytes_count", None)] == reads == 3000
    assert by[("coreframe_vfs_read_bytes_sum", None)] == nbytes
    assert by[("coreframe_vfs_read_bytes_bucket", "31.0")] == 1000
    assert by[("coreframe_vfs_read_bytes_bucket", "255.0")] == 2000
    assert all(s.labels["tool"] == "readhist" for s in samples)


def test_run_otlp_exports_metrics_and_events(tmp_path: Path) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "serve"))
    from otlp_receiver import Receiver
    from servekit import named_binary, run_execs, unique_comm, wait_for

    rx = Receiver()
    try:
        name = unique_comm("otr")
        binary = named_binary(tmp_path, name)
        env = dict(os.environ, OTEL_METRIC_EXPORT_INTERVAL="300")
        with ToolProcess(["execsnoop", "--json", "--otlp", rx.url], env=env) as tr:
            assert any("Exporting metrics and events over OTLP/HTTP" in x for x in tr.stderr)
            run_execs(binary, 6)

            def six() -> bool:
                dp = rx.value("coreframe_execsnoop_execs", comm=name)
                return dp is not None and getattr(dp, dp.WhichOneof("value")) == 6

            assert wait_for(six, timeout=60)
            assert wait_for(lambda: sum(1 for a, b in rx.log_bodies()
                                        if b.get("comm") == name) == 6, timeout=30)
            assert tr.stop() == 0, tr.stderr
        # stdout unchanged: the same JSON lines as without --otlp
        mine = [r for r in tr.json_records() if r.get("comm") == name]
        assert [r["event"] for r in mine] == ["exec"] * 6
        # the log records are the events printed (exits are counted, printed only with -e)
        logs = [b for a, b in rx.log_bodies() if b.get("comm") == name]
        assert logs == [{k: v for k, v in r.items() if v is not None} for r in mine]
        assert num_exits(rx, name) == 6
    finally:
        rx.close()
        sys.path.remove(str(Path(__file__).resolve().parents[1] / "serve"))


def num_exits(rx: object, name: str) -> float:
    dp = rx.value("coreframe_execsnoop_exits", comm=name)  # type: ignore[attr-defined]
    return getattr(dp, dp.WhichOneof("value"))


def test_missing_otel_packages_is_one_line() -> None:
    hide = ("import sys; sys.modules['opentelemetry'] = None; "
            "from coreframe.cli import main; sys.argv[0] = 'coreframe'; main()")
    proc = subprocess.run([sys.executable, "-c", hide, "run", "execsnoop", "--otlp",
                           "http://127.0.0.1:1", "--duration", "5"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        "coreframe: error: --otlp needs the OpenTelemetry SDK"), proc.stderr
