"""An owned file descriptor.

Every kernel object (map, program, link, BTF, perf event) is an fd; leaking one keeps
the object alive in the kernel, so each lives in an ``FD`` that closes it exactly
once: explicitly, via ``with``, or from ``__del__`` when the FD is garbage collected
(a process's fds all close at exit anyway; ``weakref.finalize``, which would also run
at exit, costs its module's import on every start).
"""

from __future__ import annotations

import errno
import os

from ..errors import Error

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from types import TracebackType
    from typing import Self


def _close(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass


class Closing:
    """``with x:`` closes ``x`` on the way out (the context manager of every owner of a
    kernel object: FD, Map, Program)."""

    __slots__ = ()

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class FD(Closing):
    """Owns one file descriptor; ``int(fd)`` / ``fd.fileno()`` give the number."""

    __slots__ = ("_fd", "__weakref__")

    def __init__(self, fd: int) -> None:
        if fd < 0:
            raise ValueError(f"invalid file descriptor {fd}")
        self._fd = fd

    def __del__(self, _close: Callable[[int], None] = _close) -> None:
        # the backstop for an FD nobody closed (the default argument keeps the helper
        # reachable while the interpreter tears modules down at exit)
        fd = getattr(self, "_fd", -1)
        if fd >= 0:
            self._fd = -1
            _close(fd)

    @property
    def fd(self) -> int:
        """The descriptor number; ValueError once closed (a stale number may be reused)."""
        if self._fd < 0:
            raise ValueError("file descriptor is closed")
        return self._fd

    @property
    def closed(self) -> bool:
        return self._fd < 0

    def fileno(self) -> int:
        return self.fd

    def __int__(self) -> int:
        return self.fd

    def __index__(self) -> int:
        return self.fd

    def close(self) -> None:
        """Close now; idempotent."""
        fd = self._fd
        if fd >= 0:
            self._fd = -1
            _close(fd)

    def detach(self) -> int:
        """Give up ownership and return the raw number (the caller must close it)."""
        fd = self.fd
        self._fd = -1
        return fd

    def dup(self) -> FD:
        """A new FD referring to the same kernel object (close-on-exec like the original)."""
        return FD(os.dup(self.fd))

    def __repr__(self) -> str:
        return f"FD({self._fd})" if self._fd >= 0 else "FD(closed)"


class FDOwner(Closing):
    """Base of a wrapper owning one kernel object's :class:`FD` (``Map``, ``Program``):
    ``.fd`` the number, ``.handle`` the FD, ``fileno()``, ``closed``, ``close()``.

    Subclasses set ``_fd``, ``name``, ``what`` ("map", "program") and ``error``,
    the error class of that kind of object.
    """

    __slots__ = ()
    _fd: FD
    name: str
    what = "object"
    error: type[Error] = Error

    @classmethod
    def get_fd(cls, get: Callable[[], FD], operation: str, missing: str, *,
               capability: str = "CAP_BPF") -> FD:
        """``get()`` (BPF_OBJ_GET, BPF_*_GET_FD_BY_ID) for ``operation``: ENOENT raises
        ``error(missing)``, other errnos what :func:`~coreframe.sys.errors.raise_for` says."""
        from .errors import raise_for

        try:
            return get()
        except OSError as e:
            if e.errno == errno.ENOENT:
                raise cls.error(missing).with_cause(e.errno, operation) from e
            raise_for(e, operation, capability=capability, error=cls.error)

    @property
    def fd(self) -> int:
        """The fd number (e.g. for ld_imm64 patching or map-in-map values)."""
        try:
            return self._fd.fd
        except ValueError:
            raise self.error(f"{self.what} {self.name!r} is closed") from None

    @property
    def handle(self) -> FD:
        """The owned FD object."""
        return self._fd

    def fileno(self) -> int:
        return self.fd

    @property
    def closed(self) -> bool:
        return self._fd.closed

    def close(self) -> None:
        self._fd.close()
