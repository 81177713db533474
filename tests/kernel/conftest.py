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
from kernkit import IN_GUEST, Expect, dump_features

TRACEFS = Path("/sys/kernel/tracing")


@pytest.fixture
def expect_feature(record_property: Callable[[str, object], None]) -> Expect:
    """``expect_feature(available, name)``: exercise the feature (True) or assert its
    FeatureMissing (False). The junit report records each feature a test found
    missing, so test-kernels.sh can show that guests took the positive paths.
    """

    def check(available: bool, feature: str) -> bool:
        if not available:
            if IN_GUEST:
                pytest.fail(f"{feature} missing on guest kernel {os.uname().release}; "
                            "the matrix kernels are chosen to have it")
            record_property("feature_missing", feature)
        return available

    return check


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
