"""Short fuzz runs of the parsers and the CO-RE engine (the long runs use atheris).

The targets live in ``fuzz/fuzztargets.py``; each one lets only the loader's own
errors through for hostile input. Here hypothesis mutates the project's
objects (byte flips, 32/64-bit field overwrites with boundary values,
truncation, splices) for a bounded number of examples per target.
"""

from __future__ import annotations

import struct
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "fuzz"))

import fuzztargets as targets  # noqa: E402

BOUNDARY = [0, 1, 7, 8, 0xFF, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 1 << 40, (1 << 64) - 1]


@st.composite
def mutated(draw: st.DrawFn, seeds: tuple[bytes, ...]) -> bytes:
    buf = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 6))):
        if not buf:
            break
        pos = draw(st.integers(0, len(buf) - 1))
        op = draw(st.sampled_from(["byte", "u32", "u64", "truncate", "splice"]))
        if op == "byte":
            buf[pos] = draw(st.integers(0, 255))
        elif op == "u32" and pos + 4 <= len(buf):
            val = draw(st.sampled_from(BOUNDARY[:9]) | st.integers(0, 0xFFFFFFFF))
            struct.pack_into("<I", buf, pos & ~3, val)
        elif op == "u64" and pos + 8 <= len(buf):
            val = draw(st.sampled_from(BOUNDARY) | st.integers(0, (1 << 64) - 1))
            struct.pack_into("<Q", buf, pos & ~7, val)
        elif op == "truncate":
            del buf[pos:]
        else:
            src = draw(st.integers(0, len(buf) - 1))
            n = draw(st.integers(1, 64))
            buf[pos:pos + n] = buf[src:src + n]
    return bytes(buf)


def _fuzz(target: Callable[[bytes], None], seeds: tuple[bytes, ...], examples: int) -> None:
    @settings(max_examples=examples, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(mutated(seeds))
    def run(data: bytes) -> None:
        target(data)

    run()


def test_seeds_are_clean() -> None:
    """The unmodified corpus parses; otherwise the mutation runs prove little."""
    from coreframe.object import open as open_object

    assert len(targets.seed_objects()) >= 10
    for data in targets.seed_objects():
        open_object(data)


def test_fuzz_elf_reader() -> None:
    _fuzz(targets.run_elf, targets.seed_objects(), 500)


def test_fuzz_object_open() -> None:
    _fuzz(targets.run_object, targets.seed_objects(), 400)


def test_fuzz_btf() -> None:
    _fuzz(targets.run_btf, targets.seed_btfs(), 250)


def test_fuzz_btf_ext() -> None:
    _fuzz(targets.run_btf_ext, tuple(targets.ext_seeds()), 600)


def test_fuzz_core_relocations() -> None:
    _fuzz(targets.run_core, tuple(targets.core_seeds()), 150)


def test_fuzz_core_hostile_local_btf() -> None:
    _fuzz(targets.run_core_btf, targets.seed_btfs(), 100)


@pytest.mark.parametrize("name", ["object", "elf", "btf", "btf_ext", "core", "core_btf"])
def test_atheris_drivers_expose_targets(name: str) -> None:
    """Each fuzz/fuzz_<name>.py imports without atheris and names its target."""
    import importlib

    mod = importlib.import_module(f"fuzz_{name}")
    assert mod.TestOneInput is getattr(targets, f"run_{name}")
