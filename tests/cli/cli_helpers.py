"""Helpers for running the real `coreframe` console script in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
COREFRAME = Path(sys.executable).with_name("coreframe")


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 60,
            **kwargs) -> subprocess.CompletedProcess[str]:
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    return subprocess.run([str(COREFRAME), *args], capture_output=True, text=True,
                          env=full_env, timeout=timeout, **kwargs)
