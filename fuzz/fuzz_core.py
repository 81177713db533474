"""atheris entry point for ``fuzztargets.run_core`` (see fuzz/fuzzdriver.py for usage)."""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import fuzzdriver  # noqa: E402
import fuzztargets  # noqa: E402

TestOneInput = fuzztargets.run_core

if __name__ == "__main__":
    fuzzdriver.main(fuzztargets.run_core, fuzztargets.core_seeds)
