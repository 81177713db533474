"""The obj_typed object and how to make its program fire."""

from __future__ import annotations

import os
from pathlib import Path

OBJ = str(Path(__file__).resolve().parents[1] / "objects" / "obj_typed.bpf.o")


def trigger(*values: int) -> None:
    """getpgid(N) for each N: the object's tracepoint program turns N into map entries
    and buffer records (no such process: the syscall fails, the tracepoint still fires)."""
    for n in values:
        try:
            os.getpgid(n)
        except OSError:
            pass
