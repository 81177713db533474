"""errno -> coreframe exception, with the capability or kernel feature named.

The same errno means different things per command (EPERM is "not root" for most
calls but "no BPF trampolines" for fentry loads even as root), so callers say what
they were doing and which capability it needs; we check the caps we actually hold
to tell "you lack a privilege" from "the kernel refuses this".
"""

from __future__ import annotations

import errno
import os

from ..errors import Error, FeatureMissing, PermissionDenied
from ..runtime.startup import memoize

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import NoReturn

ENOTSUPP = 524  # kernel-internal errno that leaks to userspace (e.g. trampolines)

CAPABILITIES = {
    "CAP_NET_ADMIN": 12,
    "CAP_SYS_ADMIN": 21,
    "CAP_PERFMON": 38,
    "CAP_BPF": 39,
}

_UNSUPPORTED = {errno.EINVAL, errno.E2BIG, errno.EOPNOTSUPP, ENOTSUPP}


@memoize
def effective_caps() -> int:
    """CapEff of this process as a bit mask (0 when /proc is unreadable)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("CapEff:"):
                    return int(line.split()[1], 16)
    except OSError:
        pass
    return 0


# Which capability each kind of operation needs (for ``raise_for(capability=...)``).
CAPABILITY_FOR = {
    "map": "CAP_BPF",
    "prog": "CAP_BPF",
    "btf": "CAP_BPF",
    "perf_event": "CAP_PERFMON",
    "tracing": "CAP_BPF and CAP_PERFMON",
    "xdp": "CAP_NET_ADMIN",
    "tc": "CAP_NET_ADMIN",
    "stats": "CAP_SYS_ADMIN",
    "get_by_id": "CAP_SYS_ADMIN",
}


def has_capability(name: str) -> bool:
    """True if we hold ``name`` ("CAP_X and CAP_Y" needs both; CAP_SYS_ADMIN implies
    CAP_BPF and CAP_PERFMON, as in the kernel's bpf_capable()/perfmon_capable())."""
    if " and " in name:
        return all(has_capability(part.strip()) for part in name.split(" and "))
    caps = effective_caps()
    bit = CAPABILITIES.get(name)
    if bit is not None and caps & (1 << bit):
        return True
    if name in ("CAP_BPF", "CAP_PERFMON"):
        return bool(caps & (1 << CAPABILITIES["CAP_SYS_ADMIN"]))
    return False


def errno_name(err: int | None) -> str:
    if err == ENOTSUPP:
        return "ENOTSUPP"
    return errno.errorcode.get(err or 0, str(err))


def describe(err: OSError) -> str:
    """'Invalid argument (EINVAL)'-style text for one-line messages."""
    text = os.strerror(err.errno) if err.errno and err.errno != ENOTSUPP else "not supported"
    return f"{text} ({errno_name(err.errno)})"


def raise_for(
    err: OSError,
    operation: str,
    *,
    capability: str = "CAP_BPF",
    feature: str | None = None,
    hint: str = "",
    error: type[Error] = Error,
) -> NoReturn:
    """Re-raise ``err`` from ``operation`` as the coreframe error it means.

    - EPERM/EACCES without ``capability`` -> PermissionDenied(operation, capability);
      with it (root) and a ``feature`` named -> FeatureMissing(feature): the kernel
      itself refuses (e.g. trampolines on this VM).
    - EINVAL/E2BIG/EOPNOTSUPP/ENOTSUPP with ``feature`` -> FeatureMissing(feature, hint).
    - anything else -> ``error`` (default Error) with the errno spelled out.
    """
    code = err.errno
    exc: Error
    if code in (errno.EPERM, errno.EACCES) and not has_capability(capability):
        exc = PermissionDenied(operation, capability)
    elif code in (errno.EPERM, errno.EACCES) and feature is not None:
        exc = FeatureMissing(
            feature, hint or f"{operation} refused with {errno_name(code)} despite {capability}")
    elif code in _UNSUPPORTED and feature is not None:
        exc = FeatureMissing(feature, hint)
    else:
        exc = error(f"{operation}: {describe(err)}")
    raise exc.with_cause(code, operation) from err
