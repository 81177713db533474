"""Network devices: XDP and tc programs on an interface, through a BPF link (XDP
link, tcx) where the kernel has one and through netlink (:mod:`.netlink`) otherwise
(or where ``COREFRAME_DISABLE_LINKS`` names ``xdp`` / ``tcx``).
:func:`attach_netdev` attaches a program the way its SEC() name says."""

from __future__ import annotations

import errno

from ..errors import AttachError
from ..sys import consts as C
from ..sys.errors import ENOTSUPP
from .base import Link, attach_error, program_fd, program_name
from .netns import in_netns

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..programs import Program


def _use_link(kind: str, use_link: bool | None) -> bool:
    if use_link is not None:
        return use_link
    from ..features import link_disabled

    return not link_disabled(kind)


def _ifindex(iface: str | int, netns: str | None) -> int:
    if isinstance(iface, int):
        return iface
    try:
        import socket  # only XDP/tc by interface name need it

        return socket.if_nametoindex(iface)
    except OSError:
        where = f" in netns '{netns}'" if netns else ""
        raise AttachError(f"no network interface '{iface}'{where}") from None


_XDP_MODES = {None: 0, "skb": C.XDP_FLAGS_SKB_MODE, "generic": C.XDP_FLAGS_SKB_MODE,
              "native": C.XDP_FLAGS_DRV_MODE, "drv": C.XDP_FLAGS_DRV_MODE,
              "hw": C.XDP_FLAGS_HW_MODE}


def attach_xdp(prog: Program, iface: str | int, netns: str | None = None,
               mode: str | None = None, *, use_link: bool | None = None) -> Link:
    """Attach an XDP program to ``iface`` (name or ifindex), optionally inside ``netns``.

    ``mode``: None (kernel picks), ``"skb"``/``"generic"``, ``"native"``, ``"hw"``.
    Uses an XDP BPF link; falls back to netlink IFLA_XDP (removed on close).
    ``use_link`` False goes to netlink at once (None: unless COREFRAME_DISABLE_LINKS
    names ``xdp``).
    """
    from ..sys.bpf import link_create

    if mode not in _XDP_MODES:
        raise AttachError(f"unknown XDP mode {mode!r} (skb, native, hw)")
    flags = _XDP_MODES[mode]
    with in_netns(netns):
        idx = _ifindex(iface, netns)
        target = f"{iface}" + (f" (netns {netns})" if netns else "")
        if _use_link("xdp", use_link):
            try:
                lfd = link_create(program_fd(prog), idx, C.BPF_XDP, flags=flags)
                return Link("xdp", target, lfd)
            except OSError as e:
                if e.errno not in (errno.EINVAL, errno.EOPNOTSUPP, ENOTSUPP):
                    raise attach_error(e, f"attaching XDP program {program_name(prog)} to "
                                        f"{target}") from None
        from . import netlink

        undo = netlink.xdp_attach(program_fd(prog), idx, flags, netns)
    return Link("xdp (netlink)", target, None, resources=[undo])


def attach_tc(prog: Program, iface: str | int, direction: str = "ingress",
              netns: str | None = None, *, use_link: bool | None = None, priority: int = 1,
              handle: int = 1) -> Link:
    """Attach a tc (sched_cls) program to ``iface`` ingress or egress.

    Uses a tcx link where the kernel has one (6.6+); otherwise a clsact qdisc and a
    direct-action bpf filter at ``priority``/``handle``, removed on close.
    ``use_link`` False goes to netlink at once (None: unless COREFRAME_DISABLE_LINKS
    names ``tcx``).
    """
    from ..sys.bpf import link_create

    if direction not in ("ingress", "egress"):
        raise AttachError(f"tc direction must be 'ingress' or 'egress', not {direction!r}")
    at = C.BPF_TCX_INGRESS if direction == "ingress" else C.BPF_TCX_EGRESS
    with in_netns(netns):
        idx = _ifindex(iface, netns)
        target = f"{iface} {direction}" + (f" (netns {netns})" if netns else "")
        if _use_link("tcx", use_link):
            try:
                lfd = link_create(program_fd(prog), idx, at)
                return Link("tcx", target, lfd)
            except OSError as e:
                if e.errno not in (errno.EINVAL, errno.EOPNOTSUPP, ENOTSUPP):
                    raise attach_error(e, f"attaching tc program {program_name(prog)} to "
                                        f"{target}") from None
        from . import netlink

        undo = netlink.tc_attach(program_fd(prog), idx, direction, netns, priority=priority,
                                handle=handle, name=program_name(prog))
    return Link("tc (netlink)", target, None, resources=[undo])


def netdev_direction(prog: Program) -> str | None:
    """Where a program goes on an interface by its SEC() name: ``"xdp"``, ``"ingress"``,
    ``"egress"``, or None when it is no interface program (``xdp/devmap`` and
    ``xdp/cpumap`` run from maps, not on a device). ``SEC("tc")`` and
    ``SEC("classifier")`` name no direction: ingress."""
    from .base import section_def_of

    sd = section_def_of(prog)
    if sd is None:
        return None
    if sd.attach_kind == "xdp":
        return "xdp" if sd.expected_attach_type == C.BPF_XDP else None
    if sd.attach_kind == "tcx":
        return "egress" if sd.expected_attach_type == C.BPF_TCX_EGRESS else "ingress"
    if sd.attach_kind == "tc":
        return "ingress"
    return None


def attach_netdev(prog: Program, iface: str | int, netns: str | None = None, *,
                  priority: int = 1) -> Link:
    """Attach an XDP or tc program to ``iface`` as its SEC() name says (see
    :func:`netdev_direction`); ``priority`` is the tc filter's where netlink is used."""
    where = netdev_direction(prog)
    if where is None:
        raise AttachError(f"program {program_name(prog)} is not an XDP or tc program")
    if where == "xdp":
        return attach_xdp(prog, iface, netns)
    return attach_tc(prog, iface, where, netns, priority=priority, handle=priority)
