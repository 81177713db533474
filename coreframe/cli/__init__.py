"""The ``coreframe`` command line: ``main`` (the console script), the click commands,
the tool registry and the ``object``/``btf`` subcommands."""

from __future__ import annotations

from .entry import main

__all__ = ["main"]
