"""Running a piece of code inside a named network namespace (setns on this thread)."""

from __future__ import annotations

import errno
import os

from ..errors import AttachError, PermissionDenied
from ..sys import cdata

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

CLONE_NEWNET = 0x40000000  # linux/sched.h



class in_netns:  # noqa: N801 - used as ``with in_netns(name):``
    """Run the body with this thread in network namespace ``netns`` (/var/run/netns/NAME).

    A class rather than a generator context manager: contextlib is not worth its
    import on every tool's start-up for the XDP/tc paths alone.
    """

    def __init__(self, netns: str | None) -> None:
        self.netns = netns
        self._here = self._target = -1
        self._setns: Callable[[int, int], int] | None = None

    def __enter__(self) -> None:
        netns = self.netns
        if not netns:
            return
        setns = cdata.libc_function("setns", cdata.c_int, (cdata.c_int, cdata.c_int))
        path = netns if "/" in netns else f"/var/run/netns/{netns}"
        try:
            target = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise AttachError(f"no network namespace '{netns}'") from None
        except PermissionError:
            raise PermissionDenied(f"open netns {netns}", "CAP_SYS_ADMIN") from None
        try:
            here = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            os.close(target)
            raise
        if setns(target, CLONE_NEWNET) != 0:
            err = cdata.get_errno()
            os.close(target)
            os.close(here)
            if err == errno.EPERM:
                raise PermissionDenied(f"setns into {netns}", "CAP_SYS_ADMIN")
            raise AttachError(f"setns into {netns}: {os.strerror(err)}")
        self._setns, self._target, self._here = setns, target, here

    def __exit__(self, *exc: object) -> None:
        if self._setns is None:
            return
        try:
            self._setns(self._here, CLONE_NEWNET)
        finally:
            os.close(self._target)
            os.close(self._here)
            self._setns = None
