"""`coreframe object inspect|load` and `coreframe features` through the console script."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest
from cli_helpers import COREFRAME, REPO, run_cli

EXECSNOOP = REPO / "plugins" / "objects" / "execsnoop.bpf.o"
READHIST = REPO / "plugins" / "objects" / "readhist.bpf.o"


def test_inspect_json_lists_programs_maps_variables_relocations() -> None:
    r = run_cli("object", "inspect", str(READHIST), "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    names = {p["name"] for p in doc["programs"]}
    assert {"vfs_read_fexit", "vfs_read_kret", "sys_exit_read", "sys_exit_pread64"} <= names
    assert any(m["name"] == "hists" for m in doc["maps"])
    assert any(v["name"] == "targ_pid" for v in doc["variables"])
    assert doc["core_relocations"], "readhist has CO-RE relocations"


def test_load_reports_every_program_and_exits_0() -> None:
    r = run_cli("object", "load", str(EXECSNOOP), "--json", "--set", "max_args=5")
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)["programs"]
    assert {row["name"] for row in rows} == {
        "handle_execve", "handle_execveat", "handle_execve_exit", "handle_execveat_exit",
        "handle_exit"}
    assert all(row["loaded"] and row["xlated_insns"] > 0 for row in rows)


def test_load_with_unloadable_program_reports_it_and_exits_1() -> None:
    # fexit needs BPF trampolines; on kernels that have them this object loads whole.
    r = run_cli("object", "load", str(READHIST), "--json")
    rows = {row["name"]: row for row in json.loads(r.stdout)["programs"]}
    assert rows["sys_exit_read"]["loaded"]
    if not rows["vfs_read_fexit"]["loaded"]:
        assert r.returncode == 1
        assert "trampoline" in rows["vfs_read_fexit"]["error"]


def test_bad_set_values_are_one_line_errors() -> None:
    for item, needle in [("max_argz=3", "no global variable 'max_argz'"),
                         ("max_args=abc", "not an integer"),
                         ("max_args=99999999999", "out of range"),
                         ("max_args", "NAME=VALUE")]:
        r = run_cli("object", "load", str(EXECSNOOP), "--set", item)
        assert r.returncode in (1, 2), (item, r.stderr)
        assert needle in r.stderr, (item, r.stderr)
        assert "Traceback" not in r.stderr
        # exit 1: one line; exit 2 (no '='): click's usage block, the cause on one line
        errors = [line for line in r.stderr.splitlines() if line.strip() and
                  not line.startswith(("Usage: ", "Try '"))]
        assert len(errors) == 1, (item, r.stderr)


def test_attach_with_stats_shows_programs_ran() -> None:
    proc = subprocess.Popen([str(COREFRAME), "object", "load", str(EXECSNOOP), "--attach",
                             "--stats", "--json"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        line = ""
        while "Attached" not in line and time.monotonic() < deadline:
            line = proc.stderr.readline()
        assert "Attached 5 programs" in line, line
        for _ in range(5):
            subprocess.run(["/bin/true"], check=True)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    stats = {s["name"]: s for s in json.loads(out)["stats"]}
    assert stats["handle_execve"]["run_cnt"] >= 5
    assert stats["handle_execve"]["run_time_ns"] > 0


def test_features_json() -> None:
    r = run_cli("features", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert isinstance(doc, dict) and doc
    flat = json.dumps(doc)
    assert "ringbuf" in flat


@pytest.mark.unprivileged
def test_object_commands_need_no_privileges_to_inspect() -> None:
    r = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                        "--inh-caps=-all", str(COREFRAME), "object", "inspect", str(EXECSNOOP)],
                       capture_output=True, text=True, timeout=60,
                       env={**os.environ, "COREFRAME_CACHE_DIR": "/nonexistent-cf-cache"})
    assert r.returncode == 0, r.stderr
    assert "handle_execve" in r.stdout
