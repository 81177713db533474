"""Links: attaching loaded programs to kernel hooks, one module per hook family."""

from __future__ import annotations
