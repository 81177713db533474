"""Fixtures for the object tests: object paths, root/bpffs checks, a private pin dir."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

BPFFS = Path("/sys/fs/bpf")


@pytest.fixture
def need_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to load BPF programs")


@pytest.fixture
def pin_root(need_root: None, request: pytest.FixtureRequest) -> Iterator[Path]:
    """A private directory in bpffs, removed with everything pinned in it."""
    if not os.path.ismount(BPFFS):
        proc = subprocess.run(["mount", "-t", "bpf", "bpf", str(BPFFS)], capture_output=True)
        if proc.returncode != 0:
            pytest.skip(f"cannot mount bpffs: {proc.stderr.decode().strip()}")
    safe = re.sub(r"[^A-Za-z0-9_]", "_", request.node.name)[:50]
    path = BPFFS / f"cf_obj_{os.getpid()}_{safe}"
    path.mkdir()
    yield path
    shutil.rmtree(path, ignore_errors=True)
