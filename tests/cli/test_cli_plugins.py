"""Third-party plugins through pip: the example package and a broken fixture."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator

import pytest
from cli_helpers import REPO, run_cli

EXAMPLE = REPO / "examples" / "coreframe-syscount"
BROKEN = REPO / "tests" / "fixtures" / "coreframe-broken"


def _pip(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check", "-q", *args],
                   check=True, timeout=300)


@pytest.fixture(scope="module")
def installed_plugins() -> Iterator[None]:
    _pip("install", "--no-deps", "--no-build-isolation", str(EXAMPLE), str(BROKEN))
    try:
        yield
    finally:
        _pip("uninstall", "-y", "coreframe-syscount", "coreframe-broken-fixture")


def test_example_and_broken_plugins_listed(installed_plugins: None,
                                           fresh_cache: dict[str, str]) -> None:
    r = run_cli("list", "--json", env=fresh_cache)
    assert r.returncode == 0, r.stderr
    rows = {row["name"]: row for row in json.loads(r.stdout)}
    # coreframe ships a syscount of its own since issue 22: the example's is shadowed,
    # listed under its distribution's name
    assert rows["coreframe-syscount:syscount"]["distribution"] == "coreframe-syscount"
    assert rows["coreframe-syscount:syscount"]["version"] == "0.1.0"
    assert rows["syscount"]["distribution"] == "coreframe"
    assert rows["broken"]["ready"] is False
    assert "broken on purpose" in rows["broken"]["reason"]
    assert rows["notatool"]["ready"] is False
    assert "not a coreframe.tool.Tool subclass" in rows["notatool"]["reason"]
    # The others are unaffected.
    assert rows["execsnoop"]["distribution"] == "coreframe"


def test_direct_entry_point_lookup_matches_importlib_metadata(installed_plugins: None) -> None:
    """`coreframe run` reads entry_points.txt itself; it must see what stevedore sees."""
    code = (
        "import json\n"
        "from coreframe.cli.registry import NAMESPACE, entry_point_targets, find_tool_direct\n"
        "from coreframe.runtime.compat import entry_points_in\n"  # entry_points(group=) on 3.10+
        "eps = {}\n"
        "for ep, _ in entry_points_in(NAMESPACE):\n"
        "    eps.setdefault(ep.name, ep.value)\n"
        "print(json.dumps({n: [v, entry_point_targets(n)[:1], find_tool_direct(n) is not None]\n"
        "                  for n, v in eps.items()}))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                       timeout=60)
    seen = json.loads(r.stdout)
    assert {"execsnoop", "readhist", "syscount", "broken", "notatool"} <= set(seen)
    for name, (value, direct, loads) in seen.items():
        assert direct == [value], name
        assert loads is (name not in {"broken", "notatool"}), name
    r = run_cli("run", "nosuchtool")
    assert r.returncode == 1 and "unknown tool 'nosuchtool'" in r.stderr


def test_new_plugin_seen_despite_warm_stevedore_cache(fresh_cache: dict[str, str]) -> None:
    """List once (filling stevedore's cache), install, list again: the new tool shows."""
    _pip("uninstall", "-y", "-q", "coreframe-syscount")
    first = json.loads(run_cli("list", "--json", env=fresh_cache).stdout)
    shadowed = "coreframe-syscount:syscount"    # coreframe keeps the plain name
    assert shadowed not in {row["name"] for row in first}
    _pip("install", "--no-deps", "--no-build-isolation", str(EXAMPLE))
    try:
        second = json.loads(run_cli("list", "--json", env=fresh_cache).stdout)
        assert shadowed in {row["name"] for row in second}
    finally:
        _pip("uninstall", "-y", "coreframe-syscount")


def test_running_broken_plugin_is_one_line(installed_plugins: None) -> None:
    r = run_cli("run", "broken")
    assert r.returncode == 1
    assert r.stderr.strip().count("\n") == 0
    assert "is broken" in r.stderr


def test_broken_plugin_does_not_stop_others(installed_plugins: None) -> None:
    r = run_cli("run", "execsnoop", "--help")
    assert r.returncode == 0, r.stderr

