"""`coreframe serve` over its life: SIGTERM leaves nothing in the kernel, SIGHUP reloads,
a tool that fails is reported and restarted without taking the others down."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest
from servekit import (
    bpf_alive,
    bpf_fd_ids,
    bpffs_entries,
    free_port,
    http_get,
    named_binary,
    pinned_id,
    prog_and_link_ids,
    run_execs,
    serve,
    unique_comm,
    wait_for,
    write_config,
)

pytestmark = pytest.mark.usefixtures("need_root")


def _metric(port: int, prefix: str) -> float | None:
    text = http_get(f"http://127.0.0.1:{port}/metrics")[1]
    for line in text.splitlines():
        if line.startswith(prefix + " "):
            return float(line.rsplit(" ", 1)[1])
    return None


def test_sigterm_leaves_no_program_link_or_pin(tmp_path: Path) -> None:
    port = free_port()
    cfg = write_config(tmp_path / "agent.toml", f"""
[serve]
listen = "127.0.0.1:{port}"
events = "none"

[tools.execsnoop]
exits = true

[tools.readhist]
""")
    pins_before = bpffs_entries()
    with serve(cfg) as proc:
        assert proc.err.wait(lambda ls: any("readhist: Tracing" in x for x in ls)), proc.stderr
        progs, links = prog_and_link_ids(proc.proc.pid)
        ours = bpf_fd_ids(proc.proc.pid)
        # execsnoop's 5 programs (exits on) and readhist's tracepoint pair, each attached
        assert len(progs) >= 7 and len(links) >= 7, (progs, links)
        assert bpf_alive("prog", progs) == progs and bpf_alive("link", links) == links
        assert proc.stop(signal.SIGTERM) == 0, proc.stderr
    assert proc.stderr[-1] == "coreframe serve: stopped", proc.stderr
    assert not bpf_alive("prog", progs), "programs left in the kernel"
    assert not bpf_alive("link", links), "links left in the kernel"
    # other processes on the machine may pin and unpin meanwhile: a new pin must not be ours
    for name in bpffs_entries() - pins_before:
        got = pinned_id(Path("/sys/fs/bpf") / name)
        assert got is None or got[1] not in ours[got[0]], f"left pinned: /sys/fs/bpf/{name}"
    assert not {"events", "execs", "start", "drops", "hists", "dropped"} & bpffs_entries()


def test_sighup_reloads_and_a_bad_reload_keeps_running(tmp_path: Path) -> None:
    port = free_port()
    events = tmp_path / "events.jsonl"
    head = f'[serve]\nlisten = "127.0.0.1:{port}"\nevents = "{events}"\n\n[tools.execsnoop]\n'
    cfg = write_config(tmp_path / "agent.toml", head)
    with serve(cfg) as proc:
        cfg.write_text(head + "\n[tools.reads]\ntool = \"readhist\"\nper_comm = true\n")
        proc.proc.send_signal(signal.SIGHUP)
        assert proc.err.wait(lambda ls: any("reads: Tracing" in x for x in ls)), proc.stderr
        assert any("reloaded" in x and "started reads" in x for x in proc.stderr), proc.stderr
        code, body = http_get(f"http://127.0.0.1:{port}/readyz")
        assert code == 200 and set(json.loads(body)["tools"]) == {"execsnoop", "reads"}

        cfg.write_text(head + "exits = 3\n")
        proc.proc.send_signal(signal.SIGHUP)
        assert proc.err.wait(lambda ls: any("reload failed" in x for x in ls)), proc.stderr
        [line] = [x for x in proc.stderr if "reload failed" in x]
        assert f"{cfg}:6: [tools.execsnoop] exits = 3: want true or false" in line, line
        # the running configuration is kept: both tools still run and count
        name = unique_comm("hup")
        run_execs(named_binary(tmp_path, name), 3)
        assert wait_for(lambda: _metric(
            port, f'coreframe_execsnoop_execs_total{{comm="{name}",tool="execsnoop"}}') == 3)
        assert _metric(port, 'coreframe_serve_reloads_total{result="error"}') == 1
        assert _metric(port, 'coreframe_serve_reloads_total{result="ok"}') == 1
        assert http_get(f"http://127.0.0.1:{port}/readyz")[0] == 200
        assert proc.stop(signal.SIGTERM) == 0, proc.stderr


def test_a_failing_tool_is_reported_and_the_others_keep_running(tmp_path: Path) -> None:
    port = free_port()
    not_a_cgroup = tmp_path / "plain-dir"
    not_a_cgroup.mkdir()
    cfg = write_config(tmp_path / "agent.toml", f"""
[serve]
listen = "127.0.0.1:{port}"
events = "none"
restart_delay = 0.5

[tools.execsnoop]

[tools.broken]
tool = "execsnoop"
cgroup = "{not_a_cgroup}"
""")
    with serve(cfg) as proc:
        assert proc.err.wait(lambda ls: sum("broken: failed:" in x for x in ls) >= 2), \
            proc.stderr
        line = next(x for x in proc.stderr if "broken: failed:" in x)
        assert "not a cgroup v2 directory" in line and "restarting in 0.5 s" in line, line
        assert wait_for(lambda: (_metric(
            port, 'coreframe_serve_tool_failures_total{tool="broken"}') or 0) >= 2)
        assert _metric(port, 'coreframe_serve_tool_up{tool="broken"}') == 0
        assert _metric(port, 'coreframe_serve_tool_up{tool="execsnoop"}') == 1
        code, body = http_get(f"http://127.0.0.1:{port}/readyz")
        doc = json.loads(body)
        assert code == 503 and doc["tools"]["broken"]["state"] in ("failed", "running")
        assert doc["tools"]["execsnoop"]["state"] == "running"
        assert http_get(f"http://127.0.0.1:{port}/healthz")[0] == 200
        name = unique_comm("iso")
        run_execs(named_binary(tmp_path, name), 4)
        assert wait_for(lambda: _metric(
            port, f'coreframe_execsnoop_execs_total{{comm="{name}",tool="execsnoop"}}') == 4)
        time.sleep(0.2)
        assert proc.stop(signal.SIGTERM) == 0, proc.stderr
