"""Paths of the BPF objects the object tests read."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TEST_OBJECTS = ROOT / "tests" / "objects"
PLUGIN_OBJECTS = ROOT / "plugins" / "objects"


def all_objects() -> list[Path]:
    return sorted(PLUGIN_OBJECTS.glob("*.bpf.o")) + sorted(TEST_OBJECTS.glob("*.bpf.o"))


def obj(name: str) -> str:
    return str(TEST_OBJECTS / f"{name}.bpf.o")
