"""How the command line reports a failure: one line on stderr, and an exit code."""

from __future__ import annotations

import sys


def fail(message: str, code: int = 1) -> None:
    """Print ``coreframe: error: MESSAGE`` on stderr and exit (2 for usage errors)."""
    sys.stderr.write(f"coreframe: error: {message}\n")
    sys.stderr.flush()
    sys.exit(code)
