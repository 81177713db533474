"""Constants and helpers shared by the kernel-matrix tests (tests/kernel/).

A uniquely named module (not conftest) so that ``from kernkit import ...`` works
whichever other test folders' conftest modules pytest imported first.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OBJECTS = ROOT / "tests" / "objects"
IN_GUEST = os.environ.get("CF_GUEST") == "1"
# The features this guest's kernel may lack (test-kernels.sh, per series, comma-separated):
# a test that needs one skips (or asserts its FeatureMissing) instead of failing there.
GUEST_MAY_LACK = frozenset(filter(None, (
    f.strip() for f in os.environ.get("CF_GUEST_MAY_LACK", "").split(","))))

# expect_feature(available, name) -> whether to exercise the feature
Expect = Callable[[bool, str], bool]


def dump_features(path: str) -> None:
    """Leave this kernel's feature table for test-kernels.sh (kernels/report.py)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("cf_kernels_report",
                                                  ROOT / "kernels" / "report.py")
    if spec is None or spec.loader is None:
        return
    report = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(report)
    with open(path, "w") as f:
        json.dump(report.flat(), f, indent=1, sort_keys=True, default=str)
