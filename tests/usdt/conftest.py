"""Fixtures of the USDT tests: root, Debian's python3.11 with its probes, the C target."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import usdtkit


@pytest.fixture
def need_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to load and attach BPF programs")


@pytest.fixture
def py_probes(need_root: None) -> None:
    if not usdtkit.python_has_probes():
        pytest.skip(f"{usdtkit.PYTHON} is missing or has no python:function__entry probe")


@pytest.fixture(scope="session")
def sdt_bins(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(PIE executable, shared library) built from sdt_target.c / sdt_lib.c."""
    try:
        return usdtkit.build_sdt_target(tmp_path_factory.mktemp("sdt"))
    except RuntimeError as e:
        pytest.skip(str(e))


@pytest.fixture
def cookie_modes(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Steer the loader's choice between the three ways usdt.bpf.h finds its spec id.

    ``multi``: uprobe_multi link, cookies (what this kernel picks); ``perf``: one
    perf-event uprobe per call site, cookies (kernels 5.15-6.5); ``ipmap``: perf
    uprobes and the address-to-spec-id map (kernels without BPF cookies). The
    kernel calls stay real: only the feature probes' answers are overridden, the
    same seam a kernel without the feature would present.
    """
    from coreframe import features

    mode = request.param
    if mode in ("perf", "ipmap"):
        monkeypatch.setattr(features, "has_uprobe_multi", lambda: False)
    if mode == "ipmap":
        monkeypatch.setattr(features, "has_bpf_cookie", lambda: False)
    if mode == "multi" and not features.has_uprobe_multi():
        pytest.skip("this kernel has no uprobe_multi links")
    yield mode
