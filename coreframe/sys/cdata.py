"""The C types and libc functions the syscall layer uses, built on ``_ctypes``.

``import ctypes`` is a measurable part of a tool's start: it builds some forty
types, function prototypes, ``pythonapi`` and the byte-order structure helpers,
nearly all unused here. This module takes what the loader needs from
``_ctypes``, the C half of ctypes, and defines the few scalar types it uses.
``Structure``, ``Union``, ``Array`` and ``_SimpleCData`` are ctypes' own base
classes, so values built here and values built with ``ctypes`` mix freely
(a map key may be a ``ctypes.c_uint32`` or a ``cdata.c_uint32``); the scalar
classes are separate classes with the same C layout as ctypes' namesakes.
"""

from __future__ import annotations

import sys

from ..runtime.startup import ctypes_core

_ctypes = ctypes_core()  # the C half of ctypes (see coreframe.runtime.startup)
FUNCFLAG_CDECL = _ctypes.FUNCFLAG_CDECL
FUNCFLAG_USE_ERRNO = _ctypes.FUNCFLAG_USE_ERRNO
POINTER = _ctypes.POINTER
RTLD_LOCAL = _ctypes.RTLD_LOCAL
Array = _ctypes.Array
CFuncPtr = _ctypes.CFuncPtr
Structure = _ctypes.Structure
Union = _ctypes.Union
_SimpleCData = _ctypes._SimpleCData
addressof = _ctypes.addressof
byref = _ctypes.byref
dlopen = _ctypes.dlopen
get_errno = _ctypes.get_errno
sizeof = _ctypes.sizeof

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

SimpleCData = _SimpleCData  # the base of every scalar C type (ctypes' own)

__all__ = [
    "POINTER", "Array", "SimpleCData", "Structure", "Union", "addressof", "byref", "get_errno",
    "sizeof",
    "c_char", "c_char_p", "c_int", "c_int32", "c_long", "c_uint8", "c_uint16", "c_uint32",
    "c_uint64", "c_ulong", "c_void_p", "create_string_buffer", "libc_function",
]


class c_uint8(_SimpleCData):
    _type_ = "B"


class c_uint16(_SimpleCData):
    _type_ = "H"


class c_int32(_SimpleCData):
    _type_ = "i"


class c_uint32(_SimpleCData):
    _type_ = "I"


class c_long(_SimpleCData):
    _type_ = "l"


class c_ulong(_SimpleCData):
    _type_ = "L"


class c_char(_SimpleCData):
    _type_ = "c"


class c_char_p(_SimpleCData):
    _type_ = "z"


class c_void_p(_SimpleCData):
    _type_ = "P"


c_int = c_int32


class c_ulonglong(_SimpleCData):
    _type_ = "Q"


# as in ctypes: the 64-bit type is unsigned long where that is 64 bits wide (LP64)
c_uint64 = c_ulong if sizeof(c_ulong) == 8 else c_ulonglong


def create_string_buffer(init: bytes | int, size: int | None = None) -> Array:
    """A zeroed ``char[size]``; given bytes, holding them NUL-terminated (as ctypes')."""
    if isinstance(init, bytes):
        if size is None:
            size = len(init) + 1
        sys.audit("ctypes.create_string_buffer", init, size)
        buf = (c_char * size)()
        buf.value = init
        return buf
    if isinstance(init, int):
        sys.audit("ctypes.create_string_buffer", None, init)
        return (c_char * init)()
    raise TypeError(init)


class _Process:
    """The running program's symbol scope (``dlopen(NULL)``), where libc's functions are."""

    _handle = dlopen(None, RTLD_LOCAL)


def libc_function(name: str, restype: type, argtypes: Sequence[type] | None = None) -> Any:
    """A libc function as ``ctypes.CDLL(None, use_errno=True)`` would give it: the GIL
    is released during the call and errno is kept for :func:`get_errno`."""

    class _Function(CFuncPtr):
        _flags_ = FUNCFLAG_CDECL | FUNCFLAG_USE_ERRNO
        _restype_ = restype

    func = _Function((name, _Process))
    if argtypes is not None:
        func.argtypes = list(argtypes)
    return func
