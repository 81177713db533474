"""Fixtures for the CLI tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def fresh_cache(tmp_path: Path) -> dict[str, str]:
    """A private XDG cache so stevedore's entry-point cache starts empty."""
    return {"XDG_CACHE_HOME": str(tmp_path / "cache")}
