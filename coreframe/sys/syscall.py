"""Raw system calls through libc's ``syscall()``.

glibc has no wrapper for bpf(2) or perf_event_open(2), so we call them by number.
Failures raise ``OSError`` with the errno; turning that into a user-facing error is
the caller's job (see ``coreframe.sys.errors``), because only it knows what was asked.
"""

from __future__ import annotations

import os

from ..runtime.startup import index
from . import cdata

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

_NR = {
    "x86_64": {"bpf": 321, "perf_event_open": 298},
    "aarch64": {"bpf": 280, "perf_event_open": 241},
    "arm64": {"bpf": 280, "perf_event_open": 241},
}

_machine = os.uname().machine
if _machine not in _NR:
    raise ImportError(f"coreframe: unsupported architecture {_machine!r} (x86_64, aarch64)")
NR_bpf: int = _NR[_machine]["bpf"]
NR_perf_event_open: int = _NR[_machine]["perf_event_open"]

_NR_BPF = cdata.c_long(NR_bpf)

_syscall = cdata.libc_function("syscall", cdata.c_long)
_ioctl = cdata.libc_function("ioctl", cdata.c_int, (cdata.c_int, cdata.c_ulong, cdata.c_void_p))

_memlock_done = False
RLIMIT_MEMLOCK = 8  # asm-generic/resource.h, shared by x86_64 and arm64
RLIM_INFINITY = (1 << 64) - 1


def raise_memlock_rlimit() -> None:
    """Try once to lift RLIMIT_MEMLOCK; failure is fine (kernels >= 5.11 use memcg)."""
    global _memlock_done
    if _memlock_done:
        return
    _memlock_done = True

    # libc's setrlimit, not the resource module, which is one more import at every start
    class Rlimit(cdata.Structure):
        _fields_ = [("cur", cdata.c_uint64), ("max", cdata.c_uint64)]

    setrlimit = cdata.libc_function("setrlimit", cdata.c_int, (cdata.c_int, cdata.c_void_p))
    unlimited = Rlimit(RLIM_INFINITY, RLIM_INFINITY)
    if setrlimit(RLIMIT_MEMLOCK, cdata.addressof(unlimited)) == 0:
        return
    # not allowed to raise the hard limit: take the soft limit up to it
    getrlimit = cdata.libc_function("getrlimit", cdata.c_int, (cdata.c_int, cdata.c_void_p))
    now = Rlimit()
    if getrlimit(RLIMIT_MEMLOCK, cdata.addressof(now)) == 0 and now.cur < now.max:
        now.cur = now.max
        setrlimit(RLIMIT_MEMLOCK, cdata.addressof(now))


def _check(ret: int) -> int:
    if ret < 0:
        err = cdata.get_errno()
        raise OSError(err, os.strerror(err))
    return ret


def bpf(cmd: int, attr: Any) -> int:
    """bpf(cmd, &attr, sizeof(attr)); ``attr`` is a ctypes Structure, updated in place."""
    raise_memlock_rlimit()
    ret: int = _syscall(_NR_BPF, cdata.c_long(cmd), cdata.byref(attr),
                        cdata.c_long(cdata.sizeof(attr)))
    if ret < 0:
        err = cdata.get_errno()
        raise OSError(err, os.strerror(err))
    return ret


def perf_event_open(attr: Any, pid: int, cpu: int, group_fd: int, flags: int) -> int:
    """perf_event_open(&attr, pid, cpu, group_fd, flags) -> new fd."""
    ret = _syscall(
        cdata.c_long(NR_perf_event_open), cdata.byref(attr), cdata.c_long(pid),
        cdata.c_long(cpu), cdata.c_long(group_fd), cdata.c_ulong(flags),
    )
    return _check(ret)


def ioctl(fd: Any, request: int, arg: Any = 0) -> int:
    """ioctl(fd, request, arg).

    ``fd`` is an int or anything with ``__index__`` (an ``FD``); ``arg`` an int or an
    object with ``__index__`` (passed by value, e.g. a program fd for
    PERF_EVENT_IOC_SET_BPF), a bytes string (passed as a pointer, e.g. a filter), or a
    ctypes object (passed by reference).
    """
    if isinstance(arg, bytes):
        buf = cdata.create_string_buffer(arg)
        ptr = cdata.c_void_p(cdata.addressof(buf))
    elif hasattr(arg, "__index__"):
        ptr = cdata.c_void_p(index(arg))
    else:
        ptr = cdata.c_void_p(cdata.addressof(arg))
    return _check(_ioctl(index(fd), request, ptr))
