"""OTLP/HTTP export of `coreframe serve`, received locally and decoded with opentelemetry-proto.

The same known workload as the Prometheus test: the metric points and the log
records (one per event) must hold exactly its counts. An endpoint nobody listens
on is retried with back-off and counted, and events keep flowing meanwhile.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from otlp_receiver import Receiver
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

N_EXECS = 20
N_FAILS = 5
READS = [(16, 1000), (128, 1000), (2048, 1000)]


def num(dp: Any) -> float | None:
    """A NumberDataPoint's value, whichever of as_int / as_double it uses."""
    if dp is None:
        return None
    return getattr(dp, dp.WhichOneof("value"))


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def test_otlp_metrics_and_events_exact(tmp_path: Path, receiver: Receiver) -> None:
    cfg = write_config(tmp_path / "agent.toml", f"""
[serve]
events = "none"
otlp = "{receiver.url}"
otlp_interval = 0.5

[tools.execsnoop]

[tools.readhist]
per_comm = true
interval = 0.5
""")
    ok, bad, reader = unique_comm("ook"), unique_comm("obad"), unique_comm("ord")
    with serve(cfg) as proc:
        assert proc.err.wait(lambda ls: any("readhist: Tracing" in x for x in ls)), proc.stderr
        run_execs(named_binary(tmp_path, ok), N_EXECS)
        run_execs(named_binary(tmp_path, bad, "/usr/bin/env"), N_FAILS,
                  str(tmp_path / "does-not-exist"))
        with ReadLoop(tmp_path, reader, [READS]) as wl:
            wl.go()
            wl.finish()

        def execs() -> Any:
            dp = receiver.value("coreframe_execsnoop_execs", comm=ok, tool="execsnoop")
            return num(dp) == N_EXECS

        def reads() -> Any:
            dp = receiver.value("coreframe_vfs_read_bytes", comm=reader, tool="readhist")
            return dp is not None and dp.count == 3000

        assert wait_for(execs, timeout=60), receiver.last_points("coreframe_execsnoop_execs")
        assert wait_for(reads, timeout=60)
        assert wait_for(lambda: sum(1 for a, b in receiver.log_bodies()
                                    if b.get("comm") == reader) >= 1, timeout=30)
        assert proc.stop(signal.SIGTERM) == 0, proc.stderr

    # metrics: counters are cumulative sums, the histogram has the kernel's slots as bounds
    assert num(receiver.value("coreframe_execsnoop_execs", comm=ok)) == N_EXECS
    assert num(receiver.value("coreframe_execsnoop_exits", comm=ok)) == N_EXECS
    assert num(receiver.value("coreframe_execsnoop_exec_failures", comm=bad,
                              errno="ENOENT")) == N_FAILS
    h = receiver.value("coreframe_vfs_read_bytes", comm=reader)
    assert h.count == 3000 and h.sum == 1000 * (16 + 128 + 2048)
    bounds = list(h.explicit_bounds)
    counts = dict(zip(bounds, h.bucket_counts))
    assert len(h.bucket_counts) == len(bounds) + 1 == 65
    assert counts[31.0] == 1000 and counts[255.0] == 1000 and counts[4095.0] == 1000
    assert sum(h.bucket_counts) == 3000

    # events: one log record per exec, tagged with the tool, the event as the body
    logs = receiver.log_bodies()
    ok_execs = [b for a, b in logs if a.get("coreframe.tool") == "execsnoop"
                and b.get("event") == "exec" and b.get("comm") == ok]
    assert len(ok_execs) == N_EXECS
    failed = [b for a, b in logs if b.get("event") == "exec" and b.get("comm") == bad
              and b.get("retval") == -2]
    assert failed == []  # failures are counted, not printed without fails = true
    rows = [b for a, b in logs if a.get("coreframe.tool") == "readhist"
            and b.get("comm") == reader]
    assert sum(r["reads"] for r in rows) == 3000
    assert sum(r["bytes"] for r in rows) == 1000 * (16 + 128 + 2048)


def test_unreachable_endpoint_is_retried_and_counted(tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    port = free_port()
    events = tmp_path / "events.jsonl"
    cfg = write_config(tmp_path / "agent.toml", f"""
[serve]
listen = "127.0.0.1:{port}"
events = "{events}"
otlp = "{dead}"
otlp_interval = 0.2

[tools.execsnoop]
""")
    name = unique_comm("dead")
    with serve(cfg) as proc:
        run_execs(named_binary(tmp_path, name), 10)

        def lines() -> list[dict]:
            return [json.loads(x) for x in events.read_text().splitlines()
                    if f'"comm":"{name}"' in x]

        # events keep being read and written while every export fails
        assert wait_for(lambda: len([d for d in lines() if d["event"] == "exec"]) == 10)

        def failures() -> float:
            text = http_get(f"http://127.0.0.1:{port}/metrics")[1]
            for line in text.splitlines():
                if line.startswith('coreframe_otlp_export_failures_total{signal="metrics"}'):
                    return float(line.split()[-1])
            return 0.0

        assert wait_for(lambda: failures() >= 2, timeout=30)
        n1 = failures()
        # back-off (1 s doubling): at most a few attempts in 4 s, not one per 0.2 s
        # interval; and it keeps trying
        time.sleep(4)
        assert failures() - n1 <= 4, (n1, failures())
        assert wait_for(lambda: failures() > n1, timeout=40)
        assert sum(1 for x in proc.stderr if "OTLP metrics export" in x and "failed" in x) == 1
        assert proc.stop(signal.SIGTERM) == 0, proc.stderr
