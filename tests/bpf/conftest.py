"""Shared fixtures for the BPF object tests: root, bpffs, the storm driver."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OBJECTS = ROOT / "plugins" / "objects"
BPFFS = Path("/sys/fs/bpf")


@pytest.fixture
def need_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to load BPF programs")


@pytest.fixture
def bpffs(need_root: None) -> Path:
    """A mounted bpffs (mounted here if the machine did not do it at boot)."""
    if not os.path.ismount(BPFFS):
        proc = subprocess.run(["mount", "-t", "bpf", "bpf", str(BPFFS)], capture_output=True)
        if proc.returncode != 0:
            pytest.skip(f"cannot mount bpffs: {proc.stderr.decode().strip()}")
    return BPFFS


@pytest.fixture
def pin_dir(bpffs: Path, request: pytest.FixtureRequest) -> Iterator[Path]:
    """A private directory in bpffs, removed with everything pinned in it."""
    safe = re.sub(r"[^A-Za-z0-9_]", "_", request.node.name)[:60]
    path = bpffs / f"cf_test_{os.getpid()}_{safe}"
    yield path
    if path.exists():
        shutil.rmtree(path)


@pytest.fixture(scope="session")
def storm_bin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """bench/storm.c compiled for this run (never committed as a binary)."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler to build bench/storm.c")
    out = tmp_path_factory.mktemp("storm") / "storm"
    subprocess.run([cc, "-O2", "-o", str(out), str(ROOT / "bench" / "storm.c")], check=True)
    return out
