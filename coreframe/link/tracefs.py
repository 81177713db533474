"""Locating tracefs and reading tracepoint ids from it.

Tracepoint attachment needs the numeric event id the kernel exposes under
``events/CATEGORY/NAME/id``. tracefs is not always mounted (this project's VMs
boot without it), so when we are root we mount it ourselves rather than fail.
"""

from __future__ import annotations

import os

from ..errors import AttachError, Error, FeatureMissing, PermissionDenied
from ..sys.host import TRACEFS_MOUNTS

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

TRACEFS_MAGIC = 0x74726163
DEBUGFS_MAGIC = 0x64626720
_CANDIDATES = TRACEFS_MOUNTS
_DEFAULT_MOUNT = TRACEFS_MOUNTS[0]

_root_cache: str | None = None


def _is_tracefs(path: str) -> bool:
    """A tracefs root always carries ``available_events``; checking it avoids statfs ctypes."""
    return os.path.exists(os.path.join(path, "available_events"))


def _mount_tracefs(target: str) -> None:
    # ctypes.util drags in subprocess: import it only on this rare path
    import ctypes
    import ctypes.util

    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p,
                           ctypes.c_ulong, ctypes.c_void_p]
    rc = libc.mount(b"tracefs", target.encode(), b"tracefs", 0, None)
    if rc != 0:
        err = ctypes.get_errno()
        if err in (1, 13):  # EPERM, EACCES
            raise PermissionDenied(f"mount tracefs at {target}", "CAP_SYS_ADMIN")
        if err == 19:  # ENODEV
            raise FeatureMissing("tracefs", "kernel built without CONFIG_TRACING")
        raise FeatureMissing("tracefs", f"mounting it at {target} failed: {os.strerror(err)}")


def find_root() -> str | None:
    """The tracefs mount point if tracefs is mounted and readable, else None; never mounts
    (for cheap checks such as ``coreframe list``'s)."""
    for path in _CANDIDATES:
        if _is_tracefs(path):
            return path
    return None


def has_file(name: str) -> bool:
    """Whether a tracefs mount point has ``name`` (``kprobe_events``, ``events``, ...)."""
    return any(os.path.exists(os.path.join(root, name)) for root in _CANDIDATES)


def tracefs_root(mount: bool = True) -> str:
    """Return the tracefs mount point, mounting it at /sys/kernel/tracing if we may."""
    global _root_cache
    if _root_cache is not None and _is_tracefs(_root_cache):
        return _root_cache
    for path in _CANDIDATES:
        if _is_tracefs(path):
            _root_cache = path
            return path
        if os.path.ismount(path) and not os.access(path, os.R_OK | os.X_OK):
            # Mounted but root-only (mode 0700): mounting again would not help.
            raise PermissionDenied(f"read tracefs at {path}", "CAP_DAC_OVERRIDE")
    if not mount:
        raise FeatureMissing("tracefs", "not mounted; mount -t tracefs tracefs /sys/kernel/tracing")
    if os.geteuid() != 0:
        raise PermissionDenied("mount tracefs (not mounted)", "CAP_SYS_ADMIN")
    if not os.path.isdir(_DEFAULT_MOUNT):
        raise FeatureMissing("tracefs", f"{_DEFAULT_MOUNT} does not exist")
    _mount_tracefs(_DEFAULT_MOUNT)
    if not _is_tracefs(_DEFAULT_MOUNT):
        raise FeatureMissing("tracefs", f"mounted at {_DEFAULT_MOUNT} but has no events")
    _root_cache = _DEFAULT_MOUNT
    return _DEFAULT_MOUNT


def tracepoint_id(category: str, name: str) -> int:
    """Return the perf event id of tracepoint CATEGORY:NAME; unknown -> AttachError."""
    if not category or not name or "/" in category or "/" in name or ".." in (category, name):
        raise AttachError(f"invalid tracepoint name {category!r}:{name!r}")
    path = os.path.join(tracefs_root(), "events", category, name, "id")
    try:
        with open(path) as f:
            return int(f.read().strip())
    except FileNotFoundError:
        raise AttachError(f"no tracepoint '{category}:{name}' in {tracefs_root()}/events") from None
    except PermissionError:
        raise PermissionDenied(f"read {path}", "CAP_SYS_ADMIN") from None
    except ValueError:
        raise AttachError(f"tracepoint '{category}:{name}' has a malformed id file") from None


def event_format(category: str, name: str) -> str:
    """Raw text of the event's ``format`` file (field layout of the tracepoint context)."""
    path = os.path.join(tracefs_root(), "events", category, name, "format")
    try:
        with open(path) as f:
            return f.read()
    except FileNotFoundError:
        raise AttachError(f"no tracepoint '{category}:{name}'") from None


def tracefs_file(relpath: str) -> str:
    """Absolute path of a file under tracefs (e.g. ``kprobe_events``)."""
    return os.path.join(tracefs_root(), relpath)


_probe_seq = 0


def _next_probe_name(prefix: str, target: str) -> str:
    global _probe_seq
    _probe_seq += 1
    clean = "".join(c if c.isalnum() else "_" for c in target)[:40]
    return f"{prefix}_{os.getpid()}_{_probe_seq}_{clean}"


def _append(path: str, text: str) -> None:
    """One write(2) to a tracefs control file opened O_APPEND; Python's "a" mode would
    also lseek(SEEK_END), which kprobe_events/uprobe_events refuse with EINVAL."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def add_probe_event(kind: str, definition_fmt: str, target: str) -> tuple[int, Callable[[], None]]:
    """Create a ``kprobe_events``/``uprobe_events`` probe; returns (tracepoint id, remover).

    ``definition_fmt`` is the line to write with ``{name}`` in place of the event
    name (unique to this process), e.g. ``p:kprobes/{name} do_sys_open``.
    """
    events_file = tracefs_file(f"{kind}_events")
    name = _next_probe_name("cf", target)
    try:
        _append(events_file, definition_fmt.format(name=name) + "\n")
    except OSError as e:
        raise AttachError(f"creating {kind} event for {target}: {e.strerror}") from None
    group = "kprobes" if kind == "kprobe" else "uprobes"

    def remove() -> None:
        try:
            _append(events_file, f"-:{group}/{name}\n")
        except OSError:
            pass

    try:
        tp_id = tracepoint_id(group, name)
    except Error:
        remove()
        raise
    return tp_id, remove
