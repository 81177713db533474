"""atheris entry point for ``targets.run_core`` (see fuzz/driver.py for usage)."""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import driver  # noqa: E402
import targets  # noqa: E402

TestOneInput = targets.run_core

if __name__ == "__main__":
    driver.main(targets.run_core, targets.core_seeds)
