"""Fixtures for the CLI tool tests: root, the console script, the exec storm driver."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from tool_proc import COREFRAME, ROOT


@pytest.fixture
def need_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to load BPF programs")
    if not Path(COREFRAME).exists():
        pytest.skip(f"console script {COREFRAME} is not installed")


@pytest.fixture(scope="session")
def storm_exe(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """bench/storm.c compiled for this test session (never committed as a binary)."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler to build bench/storm.c")
    out = tmp_path_factory.mktemp("tools-storm") / "storm"
    subprocess.run([cc, "-O2", "-o", str(out), str(ROOT / "bench" / "storm.c")], check=True)
    return out
