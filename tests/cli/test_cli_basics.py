"""The CLI's own behaviour: version, listing, unknown tools, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys

from cli_helpers import run_cli

from coreframe import __version__


def test_version() -> None:
    r = run_cli("--version")
    assert r.returncode == 0
    assert __version__ in r.stdout


def test_list_json_has_first_party_tools(fresh_cache: dict[str, str]) -> None:
    r = run_cli("list", "--json", env=fresh_cache)
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    by_name = {row["name"]: row for row in rows}
    for name in ("execsnoop", "readhist"):
        assert name in by_name
        row = by_name[name]
        assert set(row) == {"name", "summary", "distribution", "version", "ready", "reason",
                            "shadowed_by"}
        assert row["shadowed_by"] is None
        assert row["distribution"] == "coreframe"
        assert row["version"] == __version__
        assert row["summary"]


def test_list_table_columns(fresh_cache: dict[str, str]) -> None:
    r = run_cli("list", env=fresh_cache)
    assert r.returncode == 0, r.stderr
    header = r.stdout.splitlines()[0].split()
    assert header == ["NAME", "SUMMARY", "FROM", "READY"]


def test_unknown_tool_is_one_line_exit_1() -> None:
    r = run_cli("run", "no-such-tool")
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "unknown tool 'no-such-tool'" in lines[0]
    assert "Traceback" not in r.stderr


def test_unknown_option_is_usage_error_exit_2() -> None:
    r = run_cli("list", "--bogus")
    assert r.returncode == 2
    assert "Traceback" not in r.stderr


def test_info_names_object_and_requirements() -> None:
    r = run_cli("info", "execsnoop")
    assert r.returncode == 0, r.stderr
    assert "execsnoop.bpf.o" in r.stdout
    assert "ready:" in r.stdout


def test_run_help_shows_tool_options() -> None:
    r = run_cli("run", "execsnoop", "--help")
    assert r.returncode == 0, r.stderr
    for opt in ("--uid", "--max-args", "--json", "--duration", "--exits"):
        assert opt in r.stdout


def test_list_stays_light() -> None:
    """`coreframe list` must not parse BTF, open objects or import pyroute2."""
    code = (
        "import sys\n"
        "from coreframe.cli import main\n"
        "try:\n"
        "    main(['list'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = [m for m in ('pyroute2', 'coreframe.btf.types', 'coreframe.object',"
        " 'elftools') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "HEAVY []" in r.stdout, r.stdout + r.stderr


def test_execsnoop_cgroup_must_be_cgroup_v2(tmp_path) -> None:
    r = run_cli("run", "execsnoop", "--cgroup", str(tmp_path), "--duration", "0")
    assert r.returncode == 1
    assert "not a cgroup v2 directory" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
