"""coreframe.sys.cdata: the loader's C types match ctypes' and its libc calls keep errno."""

from __future__ import annotations

import ctypes
import errno
import os

import pytest

from coreframe.sys import cdata

SCALARS = ["c_uint8", "c_uint16", "c_int32", "c_uint32", "c_long", "c_ulong", "c_uint64",
           "c_char", "c_char_p", "c_void_p", "c_int"]


@pytest.mark.parametrize("name", SCALARS)
def test_scalar_types_match_ctypes(name: str) -> None:
    ours, theirs = getattr(cdata, name), getattr(ctypes, name)
    assert ours._type_ == theirs._type_
    assert ctypes.sizeof(ours) == ctypes.sizeof(theirs)
    assert ctypes.alignment(ours) == ctypes.alignment(theirs)


def test_base_classes_are_ctypes_own() -> None:
    for name in ("Structure", "Union", "Array", "_SimpleCData", "POINTER", "sizeof",
                 "addressof", "byref", "get_errno"):
        assert getattr(cdata, name) is getattr(ctypes, name), name


def test_structures_lay_out_like_ctypes() -> None:
    def layout(ns: object) -> list[tuple[str, int, int]]:
        class S(ns.Structure):  # type: ignore[name-defined,misc]
            _fields_ = [("a", ns.c_uint8), ("b", ns.c_uint64), ("c", ns.c_uint16),
                        ("d", ns.c_char * 5), ("e", ns.c_uint32), ("f", ns.c_void_p)]
        return [(n, getattr(S, n).offset, getattr(S, n).size) for n, _ in S._fields_] + [
            ("sizeof", ctypes.sizeof(S), 0)]

    assert layout(cdata) == layout(ctypes)


@pytest.mark.parametrize("args", [(b"abc",), (b"abc", 8), (b"", None), (16,), (0,)])
def test_create_string_buffer_like_ctypes(args: tuple[object, ...]) -> None:
    ours = cdata.create_string_buffer(*args)  # type: ignore[arg-type]
    theirs = ctypes.create_string_buffer(*args)  # type: ignore[arg-type]
    assert ours.raw == theirs.raw and ctypes.sizeof(ours) == ctypes.sizeof(theirs)


def test_create_string_buffer_refuses_str() -> None:
    with pytest.raises(TypeError):
        cdata.create_string_buffer("text")  # type: ignore[arg-type]


def test_libc_function_returns_and_keeps_errno() -> None:
    getppid = cdata.libc_function("getppid", cdata.c_int)
    assert getppid() == os.getppid()
    close = cdata.libc_function("close", cdata.c_int, (cdata.c_int,))
    assert close(-1) == -1
    assert cdata.get_errno() == errno.EBADF
    with pytest.raises(ctypes.ArgumentError):
        close("not an int")


def test_values_mix_with_ctypes() -> None:
    class Pair(ctypes.Structure):
        _fields_ = [("a", cdata.c_uint32), ("b", ctypes.c_uint32)]

    p = Pair(1, 2)
    assert bytes(p) == bytes(cdata.c_uint32(1)) + bytes(ctypes.c_uint32(2))
    assert isinstance(cdata.c_uint32(5), ctypes._SimpleCData)


def test_memlock_rlimit_is_raised_as_far_as_allowed() -> None:
    import subprocess
    import sys

    code = ("import resource\n"
            "soft, hard = resource.getrlimit(resource.RLIMIT_MEMLOCK)\n"
            "resource.setrlimit(resource.RLIMIT_MEMLOCK, (min(hard, 1 << 16), hard))\n"
            "from coreframe.sys import syscall\n"
            "syscall.raise_memlock_rlimit()\n"
            "print(*resource.getrlimit(resource.RLIMIT_MEMLOCK), hard)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    soft, now_hard, hard = (int(x) for x in out)
    import resource

    assert soft == now_hard and now_hard in (hard, resource.RLIM_INFINITY)
