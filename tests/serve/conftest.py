"""Fixtures for `coreframe serve`: root, the tools tests' helpers, the storm driver."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))

from tool_proc import COREFRAME  # noqa: E402


@pytest.fixture
def need_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to load BPF programs")
    if not Path(COREFRAME).exists():
        pytest.skip(f"console script {COREFRAME} is not installed")
