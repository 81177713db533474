"""Fixtures of the kernel-matrix subset (tests/kernel/).

These tests run on the host (``pytest``) and inside every QEMU guest of
``make test-kernels`` (kernels/run.sh sets ``CF_GUEST=1``). On the host a kernel
feature may be missing, and the test then asserts the clear ``FeatureMissing``;
in a guest every feature the subset covers must be present, so a missing one
fails instead of hiding behind a skip.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kernkit import GUEST_MAY_LACK, IN_GUEST, Expect, dump_features

TRACEFS = Path("/sys/kernel/tracing")


@pytest.fixture
def expect_feature(record_property: Callable[[str, object], None]) -> Expect:
    """``expect_feature(available, name)``: exercise the feature (True) or assert its
    FeatureMissing (False). The junit report records each feature a test found
    missing, so test-kernels.sh can show that guests took the positive paths.

    A guest kernel may lack only what test-kernels.sh lists for its series in
    ``CF_GUEST_MAY_LACK`` (5.10 predates BPF perf links, cookies, ...): those are
    recorded as ``feature_lacking_expected``; any other missing feature fails there.
    """

    def check(available: bool, feature: str) -> bool:
        if not available:
            if IN_GUEST and feature not in GUEST_MAY_LACK:
                pytest.fail(f"{feature} missing on guest kernel {os.uname().release}; "
                            "the matrix kernels are chosen to have it (or list it in "
                            "test-kernels.sh's may_lack for this series)")
            record_property("feature_lacking_expected" if IN_GUEST else "feature_missing",
                            feature)
        return available

    return check


@pytest.fixture(autouse=True)
def attach_paths(record_property: Callable[[str, object], None]) -> Iterator[None]:
    """Record, per test, the kind of every link it made (``attach``: ``"kprobe"``,
    ``"tracepoint (ioctl)"``, ...) and every fallback coreframe noted meanwhile
    (``fallback``: what it did instead, and why): test-kernels.sh summarizes them per
    kernel (kernels/report.py paths). Observes Link construction only."""
    from coreframe import features
    from coreframe.link import base

    before = {name: n for name, (_why, n) in features.fallbacks_taken().items()}
    kinds: list[str] = []
    init = base.Link.__init__

    def observed(self: base.Link, kind: str, *args: object, **kw: object) -> None:
        init(self, kind, *args, **kw)  # type: ignore[arg-type]
        if kind not in kinds:
            kinds.append(kind)

    base.Link.__init__ = observed  # type: ignore[method-assign]
    try:
        yield
    finally:
        base.Link.__init__ = init  # type: ignore[method-assign]
    for kind in kinds:
        record_property("attach", kind)
    for name, (why, n) in features.fallbacks_taken().items():
        if n > before.get(name, 0):
            record_property("fallback", f"{name} [{why}]")


@pytest.fixture(scope="session", autouse=True)
def kernel_env() -> Iterator[None]:
    """Root, and tracefs mounted (unmounted again if this session mounted it).

    With ``CF_FEATURES_OUT`` set (test-kernels.sh does), the session also writes
    this kernel's BPF feature table there, saving the slow guest a second
    interpreter start.
    """
    if os.geteuid() != 0:
        pytest.skip("kernel-matrix tests need root")
    mounted = False
    if not (TRACEFS / "events").exists():
        mounted = subprocess.run(["mount", "-t", "tracefs", "tracefs", str(TRACEFS)],
                                 capture_output=True, check=False).returncode == 0
    yield
    out = os.environ.get("CF_FEATURES_OUT")
    if out:
        dump_features(out)
    if mounted:
        subprocess.run(["umount", str(TRACEFS)], capture_output=True, check=False)
