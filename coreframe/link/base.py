"""What every link shares: :class:`Link`, which owns one attachment, and the helpers
the per-hook modules use to name a program and turn an attach errno into an error.

Every attach function returns a ``Link`` whose ``close()`` detaches: it closes
the BPF link fd (and the perf event fd behind it), or undoes the netlink change
for the XDP/tc fallbacks. Links garbage collected without being closed are
detached too: their fds close themselves, and a ``weakref.finalize`` backstop
(which also runs at exit) undoes netlink attachments.
"""

from __future__ import annotations

import errno
import os

from ..errors import AttachError, Error, FeatureMissing, LinkError, PermissionDenied
from ..sys import consts as C
from ..sys.errors import ENOTSUPP
from ..sys.fd import FD

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from ..object.sections import SectionDef
    from ..programs import Program

    Resource = FD | Callable[[], None]


def release(resources: list[Resource]) -> None:
    """Close link fds / run undo callbacks in order; never raise from a finalizer."""
    while resources:
        r = resources.pop(0)
        try:
            if isinstance(r, FD):
                r.close()
            else:
                r()
        except Exception:  # noqa: BLE001 - detaching must go on for the remaining resources
            pass


class Link:
    """One attachment of a program; ``close()`` (or leaving ``with``) detaches it.

    ``kind`` says how it was attached (``"perf_event"``, ``"raw_tracepoint"``,
    ``"xdp"``, ``"tc (netlink)"``, ...), ``target`` what it is attached to.
    """

    def __init__(self, kind: str, target: str, fd: FD | None = None, *,
                 resources: list[Resource] | None = None,
                 children: list[Link] | None = None) -> None:
        self.kind = kind
        self.target = target
        self._fd = fd
        self.children: list[Link] = list(children or [])
        # Link fd first (detaches), then what it pointed at (perf event fd), then undo hooks.
        self._resources: list[Resource] = ([fd] if fd is not None else []) + list(resources or [])
        self._closed = False
        # Plain fds close themselves when collected (see FD); undo callbacks (netlink
        # XDP/tc detach) must also run at exit, which weakref.finalize guarantees.
        self._finalizer: Any = None
        if not all(isinstance(r, FD) for r in self._resources):
            import weakref

            self._finalizer = weakref.finalize(self, release, self._resources)

    @property
    def fd(self) -> int:
        """The BPF link fd; AttachError for links that have none (netlink, ioctl fallback)."""
        if self._fd is None:
            raise LinkError(f"{self.kind} link to {self.target} has no BPF link fd")
        return self._fd.fd

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def fds_only(self) -> bool:
        """Whether closing this link only closes file descriptors (no undo callbacks),
        so it can be done from another thread alongside other links."""
        return all(c.fds_only for c in self.children) and all(
            isinstance(r, FD) for r in self._resources)

    def info(self) -> dict[str, Any]:
        """Kernel view of the link (type, id, prog_id), or our own for fd-less links."""
        out: dict[str, Any] = {"kind": self.kind, "target": self.target}
        if self.children:
            out["links"] = [c.info() for c in self.children]
            return out
        if self._fd is None or self._fd.closed:
            out.update(type=None, id=None, prog_id=None)
            return out
        from ..sys.bpf import link_info

        try:
            li = link_info(self._fd)
        except OSError as e:
            raise LinkError(f"cannot query {self.kind} link: {os.strerror(e.errno or 0)}"
                            ).with_cause(e.errno, f"query {self.kind} link") from None
        out.update(type=C.LINK_TYPE_NAMES.get(li.type, str(li.type)), id=li.id,
                   prog_id=li.prog_id)
        return out

    def pin(self, path: str) -> None:
        """Pin the link in bpffs so it outlives this process."""
        from ..sys.bpf import obj_pin

        try:
            obj_pin(self.fd, path)
        except OSError as e:
            raise LinkError(f"pinning link at {path}: {os.strerror(e.errno or 0)}"
                            ).with_cause(e.errno, f"pin {self.kind} link at {path}") from None

    def close(self) -> None:
        """Detach (idempotent)."""
        for c in self.children:
            c.close()
        self._closed = True
        if self._finalizer is not None:
            self._finalizer()
        else:
            release(self._resources)

    def __enter__(self) -> Link:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "attached"
        return f"<Link {self.kind} {self.target} {state}>"


# ---- what the per-hook modules share --------------------------------------------------


def program_fd(prog: Program) -> int:
    fd = getattr(prog, "fd", prog)
    fd = getattr(fd, "fd", fd)
    if not isinstance(fd, int):
        raise AttachError(f"expected a loaded program, got {type(prog).__name__}")
    return fd


def program_name(prog: Program) -> str:
    return str(getattr(prog, "name", None) or f"fd {program_fd(prog)}")


def section_def_of(prog: Program) -> SectionDef | None:
    sd = getattr(prog, "section_def", None)
    if sd is None:
        spec = getattr(prog, "spec", None)
        sd = getattr(spec, "section_def", None)
    return sd


def attach_error(e: OSError, what: str, *, feature: str | None = None,
                  hint: str = "") -> Error:
    """Map an errno from an attach syscall onto our error tree."""
    from ..sys.errors import has_capability

    code = e.errno
    text = f"{os.strerror(code)} ({errno.errorcode.get(code or 0, code)})" if code != ENOTSUPP \
        else "not supported (ENOTSUPP)"
    exc: Error
    if code in (errno.EPERM, errno.EACCES) and not has_capability("CAP_BPF"):
        exc = PermissionDenied(what, "CAP_BPF")
    elif feature is not None and code in (errno.EINVAL, errno.EOPNOTSUPP, ENOTSUPP, errno.ENOENT,
                                          errno.EPERM):
        exc = FeatureMissing(feature, hint or f"{what}: {text}")
    else:
        exc = AttachError(f"{what}: {text}")
    return exc.with_cause(code, what)


def glob_matcher(pattern: str) -> Callable[[str], bool]:
    """A test for names matching ``pattern`` as libbpf's glob_match does for the multi
    probes: ``*`` any run of characters, ``?`` any one character, nothing else special
    (no ``[...]`` classes, unlike fnmatch)."""
    if "*" not in pattern and "?" not in pattern:
        return pattern.__eq__
    import re

    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(regex, re.DOTALL).fullmatch  # type: ignore[return-value]


def has_wildcard(pattern: str) -> bool:
    return "*" in pattern or "?" in pattern
