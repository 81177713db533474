"""Each kernel object has its error class, and an error from a failed syscall keeps the
errno and the operation."""

from __future__ import annotations

import errno
import os

import pytest

import coreframe
from coreframe.errors import (
    AttachError,
    BTFError,
    Error,
    LinkError,
    MapError,
    ObjectError,
    ProgramError,
    VerifierError,
)
from coreframe.sys import consts as C
from coreframe.sys.errors import raise_for

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to create maps")


def test_new_classes_extend_the_old_ones() -> None:
    """Existing ``except`` clauses keep catching what they caught."""
    assert issubclass(VerifierError, ProgramError) and issubclass(ProgramError, Error)
    assert issubclass(LinkError, AttachError)
    assert issubclass(BTFError, ObjectError)
    for name in ("ProgramError", "LinkError", "BTFError", "MapError"):
        assert getattr(coreframe, name) is getattr(coreframe.errors, name)


def test_raise_for_keeps_errno_and_operation() -> None:
    with pytest.raises(MapError) as info:
        raise_for(OSError(errno.EINVAL, "Invalid argument"), "create map 'm'", error=MapError)
    assert info.value.errno == errno.EINVAL
    assert info.value.operation == "create map 'm'"
    assert str(info.value) == "create map 'm': Invalid argument (EINVAL)"
    assert isinstance(info.value.__cause__, OSError)


def test_errors_without_a_syscall_have_no_errno() -> None:
    err = ObjectError("bad ELF")
    assert err.errno is None and err.operation is None


def test_malformed_btf_is_a_btf_error() -> None:
    from coreframe.btf.types import BTF

    with pytest.raises(BTFError):
        BTF.from_bytes(b"\x9f\xeb\x01\x00" + b"\x00" * 4)


@needs_root
def test_kernel_refusal_keeps_its_errno() -> None:
    """A real BPF_MAP_CREATE the kernel refuses (a hash map with a zero-size key)."""
    from coreframe.maps import Map

    with pytest.raises(MapError) as info:
        Map.create(C.BPF_MAP_TYPE_HASH, 0, 8, 4, name="bad")
    assert info.value.errno == errno.EINVAL
    assert info.value.operation is not None and "bad" in info.value.operation


@needs_root
def test_bad_program_is_a_program_error() -> None:
    """BPF_PROG_LOAD of a program the verifier rejects: a ProgramError with its errno."""
    from coreframe import asm
    from coreframe.programs import load_program

    insns = asm.exit_()  # r0 is never set: the verifier refuses to return it
    with pytest.raises(ProgramError) as info:
        load_program("bad", C.BPF_PROG_TYPE_SOCKET_FILTER, insns)
    assert info.value.errno == errno.EACCES
    assert info.value.operation
