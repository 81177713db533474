"""Corrupted objects fail with coreframe errors, never with a stray Python exception."""

from __future__ import annotations

import random

import pytest
from objpaths import obj

import coreframe
from coreframe.errors import Error
from coreframe.object.inspect import inspect_object


@pytest.mark.parametrize("name", ["obj_maps", "obj_globals", "obj_kconfig", "core_task"])
def test_mutated_objects(name: str) -> None:
    with open(obj(name), "rb") as f:
        data = f.read()
    rng = random.Random(name)
    for _ in range(80):
        buf = bytearray(data)
        for _ in range(rng.randint(1, 8)):
            buf[rng.randrange(len(buf))] = rng.randrange(256)
        try:
            spec = coreframe.open(bytes(buf))
            for ds in spec.data_sections():
                ds.items()
            inspect_object(spec, target_btf=spec.btf)
        except Error:
            pass


@pytest.mark.parametrize("cut", [16, 64, 200, 1000, 3000])
def test_truncated_objects(cut: int) -> None:
    with open(obj("obj_calls"), "rb") as f:
        data = f.read()
    with pytest.raises(Error):
        coreframe.open(data[:cut])
