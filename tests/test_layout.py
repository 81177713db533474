"""The package layout docs/architecture.md draws: no import circles, no private names
used across modules, the parser never reaching the loader, nothing importing the CLI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import importgraph  # noqa: E402


def _edges() -> dict[str, set[str]]:
    edges, _ = importgraph.graph(str(ROOT))
    return edges


def _reachable(edges: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        mod = todo.pop()
        for nxt in edges.get(mod, ()):
            if nxt not in seen and (mod, nxt) not in importgraph.ALLOWED:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def test_no_import_cycles() -> None:
    assert importgraph.cycles(_edges()) == []


def test_no_private_names_across_modules() -> None:
    _, private = importgraph.graph(str(ROOT))
    assert private == {}


def test_the_check_fails_on_a_cycle(tmp_path: Path) -> None:
    """The script itself notices a circle (so the tests above can fail)."""
    pkg = tmp_path / "coreframe"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from . import b\nfrom .b import _hidden\n")
    (pkg / "b.py").write_text("def f():\n    from . import a\n")
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "importgraph.py"),
                           str(tmp_path), "--check"], capture_output=True, text=True)
    assert proc.returncode == 1
    assert "cycle: coreframe.a <-> coreframe.b" in proc.stdout
    assert "private: coreframe.a" in proc.stdout


def test_parsing_never_imports_the_loader() -> None:
    edges = _edges()
    for parser in ("coreframe.object.reader", "coreframe.object.elf", "coreframe.object.parts",
                   "coreframe.object.sections", "coreframe.object.variables"):
        reach = _reachable(edges, parser)
        assert "coreframe.object.loader" not in reach, parser
        assert "coreframe.sys.bpf" not in reach and "coreframe.sys.syscall" not in reach, parser


def test_nothing_below_the_cli_imports_it() -> None:
    edges = _edges()
    for mod, targets in edges.items():
        if mod.startswith("coreframe.cli"):
            continue
        assert not {t for t in targets if t.startswith("coreframe.cli")}, mod


def test_syscall_layer_imports_nothing_above_it() -> None:
    edges = _edges()
    for mod, targets in edges.items():
        # the package, not every name that starts so (coreframe.syscalls is public)
        if mod == "coreframe.sys" or mod.startswith("coreframe.sys."):
            bad = {t for t in targets if t not in ("coreframe", "coreframe.errors",
                                                   "coreframe.sys", "coreframe.runtime")
                   and not t.startswith(("coreframe.sys.", "coreframe.runtime."))}
            assert not bad, mod
