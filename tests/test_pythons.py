"""tools/pythons.py: which interpreters the test matrix (noxfile.py) and the start-up bench
use, and what they say about the ones they skip."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import pythons  # noqa: E402


def _fake(root: Path, build: str, script: str) -> Path:
    exe = root / "versions" / build / "bin" / f"python{build.rsplit('.', 1)[0]}"
    exe.parent.mkdir(parents=True)
    exe.write_text("#!/bin/sh\n" + script)
    exe.chmod(0o755)
    return exe


def test_newest_pyenv_build_first_and_broken_ones_named(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path))
    monkeypatch.setenv("PATH", "")
    monkeypatch.setattr(pythons, "SYSTEM_DIRS", ())
    good = _fake(tmp_path, "3.9.7", "echo 3.9 3.9.7\n")
    broken = _fake(tmp_path, "3.9.18", "echo 'No module named ensurepip' >&2; exit 1\n")
    assert pythons.candidates("3.9") == [str(broken), str(good)]
    assert pythons.find("3.9") == (str(good), "3.9.7")
    good.unlink()
    path, why = pythons.find("3.9")
    assert path is None and str(broken) in why and "ensurepip" in why


def test_missing_version_says_where_it_looked(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path))
    monkeypatch.setenv("PATH", "")
    monkeypatch.setattr(pythons, "SYSTEM_DIRS", ())
    path, why = pythons.find("3.12")
    assert path is None
    assert why.startswith("no Python 3.12 here") and str(tmp_path) in why


def test_the_running_interpreter_is_found() -> None:
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    if version not in pythons.SUPPORTED:
        pytest.skip(f"{version} is not a supported version")
    path, info = pythons.find(version)
    assert path is not None, info
    assert info.startswith(version + ".")
