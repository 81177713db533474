"""A real Prometheus server scrapes `coreframe serve` running execsnoop and readhist.

The workload is known exactly: N exec()s of a binary with a comm of our own, M
exec()s of another whose own exec() of a missing file fails (ENOENT), and a
process named by us reading 1000 x 16, 1000 x 128 and 1000 x 2048 bytes. The
series Prometheus stored (read back through its HTTP query API) must hold
exactly those counts, and `promtool check metrics` must find nothing to fix in
the exposition.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest
from read_loop import ReadLoop
from servekit import (
    free_port,
    http_get,
    named_binary,
    run_execs,
    serve,
    unique_comm,
    wait_for,
    write_config,
)

pytestmark = pytest.mark.usefixtures("need_root")

N_EXECS = 25
N_FAILS = 7
READS = [(16, 1000), (128, 1000), (2048, 1000)]


class Prometheus:
    """Debian's prometheus on 127.0.0.1, a generated config, a temporary storage dir."""

    def __init__(self, tmp: Path, target: str) -> None:
        exe = shutil.which("prometheus")
        if exe is None:
            pytest.skip("prometheus is not installed (./setup.sh --dev installs it)")
        self.port = free_port()
        cfg = tmp / "prometheus.yml"
        cfg.write_text(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
            "scrape_configs:\n  - job_name: coreframe\n"
            f"    static_configs:\n      - targets: ['{target}']\n")
        self.log = open(tmp / "prometheus.log", "w")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [exe, f"--config.file={cfg}", f"--storage.tsdb.path={tmp / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{self.port}"],
            stdout=self.log, stderr=subprocess.STDOUT)
        ready = wait_for(lambda: self._ready(), timeout=60)
        assert ready, (tmp / "prometheus.log").read_text()[-2000:]

    def _ready(self) -> bool:
        try:
            return http_get(f"http://127.0.0.1:{self.port}/-/ready", timeout=2)[0] == 200
        except OSError:
            return False

    def query(self, expr: str) -> dict[tuple[tuple[str, str], ...], float]:
        url = (f"http://127.0.0.1:{self.port}/api/v1/query?"
               + urllib.parse.urlencode({"query": expr}))
        code, body = http_get(url)
        assert code == 200, body
        doc = json.loads(body)
        assert doc["status"] == "success", doc
        out = {}
        for r in doc["data"]["result"]:
            labels = tuple(sorted((k, v) for k, v in r["metric"].items()
                                  if k not in ("job", "instance")))
            out[labels] = float(r["value"][1])
        return out

    def value(self, expr: str) -> float | None:
        got = self.query(expr)
        if not got:
            return None
        assert len(got) == 1, got
        return next(iter(got.values()))

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    port = free_port()
    cfg = write_config(tmp_path / "agent.toml", f"""
[serve]
listen = "127.0.0.1:{port}"
events = "{tmp_path / 'events.jsonl'}"

[tools.execsnoop]

[tools.readhist]
per_comm = true
""")
    with serve(cfg) as proc:
        assert proc.err.wait(lambda ls: any("readhist: Tracing" in x for x in ls)), proc.stderr
        yield f"127.0.0.1:{port}", tmp_path
        assert proc.stop(signal.SIGTERM) == 0, proc.stderr  # SIGTERM


def test_prometheus_scrapes_exact_counts(agent: tuple[str, Path], tmp_path: Path) -> None:
    target, _ = agent
    prom = Prometheus(tmp_path, target)
    try:
        ok = unique_comm("ok")
        bad = unique_comm("bad")
        reader = unique_comm("rd")
        run_execs(named_binary(tmp_path, ok), N_EXECS)
        # env exec()s its argument: a path that does not exist fails with ENOENT
        run_execs(named_binary(tmp_path, bad, "/usr/bin/env"), N_FAILS,
                  str(tmp_path / "does-not-exist"))
        with ReadLoop(tmp_path, reader, [READS]) as wl:
            wl.go()
            wl.finish()
        slots, reads, nbytes = wl.expected()

        want = {
            f'coreframe_execsnoop_execs_total{{comm="{ok}"}}': N_EXECS,
            f'coreframe_execsnoop_exits_total{{comm="{ok}"}}': N_EXECS,
            f'coreframe_execsnoop_execs_total{{comm="{bad}"}}': N_FAILS,
            f'coreframe_execsnoop_exec_failures_total{{comm="{bad}",errno="ENOENT"}}': N_FAILS,
            f'coreframe_vfs_read_bytes_count{{comm="{reader}"}}': reads,
            f'coreframe_vfs_read_bytes_sum{{comm="{reader}"}}': nbytes,
            f'coreframe_vfs_read_bytes_bucket{{comm="{reader}",le="15.0"}}': 0,
            f'coreframe_vfs_read_bytes_bucket{{comm="{reader}",le="31.0"}}': 1000,
            f'coreframe_vfs_read_bytes_bucket{{comm="{reader}",le="255.0"}}': 2000,
            f'coreframe_vfs_read_bytes_bucket{{comm="{reader}",le="4095.0"}}': 3000,
            f'coreframe_vfs_read_bytes_bucket{{comm="{reader}",le="+Inf"}}': 3000,
            f'coreframe_vfs_read_errors_total{{comm="{reader}"}}': 0,
        }

        def all_there() -> bool:
            return all(prom.value(q) == v for q, v in want.items())

        wait_for(all_there, timeout=60)
        time.sleep(2.5)  # two more scrapes: the counts must stay exactly there
        got = {q: prom.value(q) for q in want}
        assert got == want
        assert (slots, reads, nbytes) == ({5: 1000, 8: 1000, 12: 1000}, 3000,
                                          1000 * (16 + 128 + 2048))
        # every series carries the tool that made it
        tools = prom.query(f'coreframe_execsnoop_execs_total{{comm="{ok}"}}')
        assert list(tools) == [(("__name__", "coreframe_execsnoop_execs_total"), ("comm", ok),
                                ("tool", "execsnoop"))]
        assert prom.value('coreframe_serve_tool_up{tool="readhist"}') == 1
        assert prom.value('up{job="coreframe"}') == 1
    finally:
        prom.close()


def test_promtool_finds_nothing_to_fix(agent: tuple[str, Path]) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (./setup.sh --dev installs prometheus)")
    target, tmp = agent
    run_execs(named_binary(tmp, unique_comm("pt")), 1)
    # samples are read at scrape time: there as soon as the reader has seen the exec
    text = wait_for(lambda: (lambda t: t if "coreframe_execsnoop_execs_total{" in t else "")(
        http_get(f"http://{target}/metrics")[1]), timeout=30)
    assert "coreframe_execsnoop_execs_total{" in text
    assert "coreframe_vfs_read_bytes_bucket{" in text
    proc = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout == "" and proc.stderr == "", \
        (proc.returncode, proc.stdout, proc.stderr)
