"""The entry-point walk `coreframe run` starts with is cached, and the cache follows
installs, removals and in-place rewrites of the declaring files."""

from __future__ import annotations

import itertools
import os
import sys
import time
import zlib  # noqa: F401 - the cache's checksum, imported before sys.path is narrowed
from pathlib import Path

import pytest

import coreframe.runtime.cache  # noqa: F401 - imported by the walk, before sys.path is narrowed
from coreframe.cli import registry


def _dist(site: Path, name: str, body: str) -> Path:
    info = site / f"{name}-1.0.dist-info"
    info.mkdir(exist_ok=True)
    (info / "entry_points.txt").write_text(f"[coreframe.tools]\n{body}\n")
    return info


_AGES = itertools.count(1000, -10)


def _age(*paths: Path) -> None:
    """Back-date mtimes by a distinct amount each time (past the racy window), as if
    the change had been made seconds before the run."""
    when = time.time() - next(_AGES)
    for p in paths:
        os.utime(p, (when, when))


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.setenv("COREFRAME_CACHE_DIR", str(tmp_path / "cache"))
    # only this directory: the walk must not depend on what else is installed (or
    # being installed by another test right now)
    monkeypatch.setattr(sys, "path", [str(site)])
    return site


def test_walk_is_reused_and_follows_changes(site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a = _dist(site, "tool_a", "foo = mod_a:Foo")
    _age(a / "entry_points.txt", a, site)
    assert registry.entry_point_claims("foo") == [("tool-a", "mod_a:Foo")]
    cache = Path(os.environ["COREFRAME_CACHE_DIR"]) / "entry-points-coreframe.tools.bin"
    assert cache.is_file()

    # nothing changed: answered from the cache, no walk
    walk = registry._walk_group

    def no_walk(group: str) -> object:
        raise AssertionError("walked sys.path although nothing changed")

    monkeypatch.setattr(registry, "_walk_group", no_walk)
    assert registry.entry_point_claims("foo") == [("tool-a", "mod_a:Foo")]
    monkeypatch.setattr(registry, "_walk_group", walk)

    # a second distribution installed: the directory changed
    b = _dist(site, "tool_b", "foo = mod_b:Foo\nbar = mod_b:Bar")
    _age(b / "entry_points.txt", b, site)
    assert sorted(registry.entry_point_claims("foo")) == [("tool-a", "mod_a:Foo"),
                                                          ("tool-b", "mod_b:Foo")]
    assert registry.entry_point_claims("bar") == [("tool-b", "mod_b:Bar")]

    # a declaring file rewritten in place (the directory unchanged)
    (a / "entry_points.txt").write_text("[coreframe.tools]\nfoo = mod_a:Other\n")
    _age(a / "entry_points.txt")
    assert ("tool-a", "mod_a:Other") in registry.entry_point_claims("foo")

    # uninstalled
    for f in b.iterdir():
        f.unlink()
    b.rmdir()
    _age(site)
    assert registry.entry_point_claims("bar") == []
    assert registry.entry_point_claims("foo") == [("tool-a", "mod_a:Other")]


def test_recent_change_is_not_cached(site: Path) -> None:
    """A directory changed within the clock tick of the walk could change again
    without its mtime moving: that walk is not stored."""
    _dist(site, "tool_c", "baz = mod_c:Baz")
    assert registry.entry_point_claims("baz") == [("tool-c", "mod_c:Baz")]
    cache = Path(os.environ["COREFRAME_CACHE_DIR"]) / "entry-points-coreframe.tools.bin"
    assert not cache.exists()
