"""Fixtures of the typed-data tests: the obj_typed spec and its loaded form."""

from __future__ import annotations

import os

import pytest
from typedkit import OBJ


@pytest.fixture
def spec():
    import coreframe

    s = coreframe.open(OBJ)
    s.rodata.targ_tgid = os.getpid()
    return s


@pytest.fixture
def loaded(spec):
    if os.geteuid() != 0:
        pytest.skip("needs root")
    with spec.load() as obj:
        yield obj
