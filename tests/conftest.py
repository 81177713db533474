"""Suite-wide: tests marked ``unprivileged`` run this interpreter as nobody (setpriv).

Under the test matrix an interpreter may live where nobody cannot load it (pyenv's
builds under /root, mode 0700: the dynamic loader fails on libpython before Python
starts), which says nothing about coreframe; those tests are skipped with that reason
rather than failed. Checked once, by running the interpreter as nobody."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

_nobody_runs: str | None = None  # "" when nobody can run sys.executable, else why not


def _why_nobody_cannot_run() -> str:
    global _nobody_runs
    if _nobody_runs is None:
        if shutil.which("setpriv") is None:
            _nobody_runs = "setpriv (util-linux) is not installed"
        else:
            r = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                                sys.executable, "-c", "pass"], capture_output=True, text=True,
                               timeout=60, cwd="/")
            last = (r.stderr.strip().splitlines() or [""])[-1]
            _nobody_runs = "" if r.returncode == 0 else (
                f"nobody cannot run {sys.executable} here ({last})")
    return _nobody_runs


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("unprivileged") is not None:
        why = _why_nobody_cannot_run()
        if why:
            pytest.skip(why)
