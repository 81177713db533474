"""Netlink fallbacks for XDP and tc attachment (kernels without XDP/tcx BPF links).

pyroute2 is slow to import (more than a whole tool start), so only the XDP/tc code
imports this module,
and only when a BPF link cannot be used. Each attach returns an undo callable that
the owning ``Link`` runs on close; it re-enters the network namespace because the
link may be closed from a different one.
"""

from __future__ import annotations

from collections.abc import Callable

from ..errors import AttachError, PermissionDenied

TC_H_CLSACT = 0xFFFFFFF1
TC_H_MIN_INGRESS = 0xFFF2
TC_H_MIN_EGRESS = 0xFFF3
_CLSACT_PARENT = {"ingress": 0xFFFF0000 | TC_H_MIN_INGRESS,
                  "egress": 0xFFFF0000 | TC_H_MIN_EGRESS}


def _netlink_error(e: Exception, what: str) -> Exception:
    code = getattr(e, "code", None) or getattr(e, "errno", None)
    if code in (1, 13):
        return PermissionDenied(what, "CAP_NET_ADMIN")
    return AttachError(f"{what}: {e}")


def xdp_attach(prog_fd: int, ifindex: int, flags: int, netns: str | None) -> Callable[[], None]:
    """Set IFLA_XDP on ``ifindex`` (caller is already inside ``netns``)."""
    from pyroute2 import IPRoute

    what = f"attaching XDP to ifindex {ifindex} over netlink"
    try:
        with IPRoute() as ipr:
            ipr.link("set", index=ifindex,
                     xdp={"attrs": [["IFLA_XDP_FD", prog_fd], ["IFLA_XDP_FLAGS", flags]]})
    except Exception as e:  # noqa: BLE001 - pyroute2 raises NetlinkError/OSError variants
        raise _netlink_error(e, what) from None

    def undo() -> None:
        from .netns import in_netns

        with in_netns(netns), IPRoute() as ipr:
            ipr.link("set", index=ifindex,
                     xdp={"attrs": [["IFLA_XDP_FD", -1], ["IFLA_XDP_FLAGS", flags]]})

    return undo


def tc_attach(prog_fd: int, ifindex: int, direction: str, netns: str | None, *,
              priority: int = 1, handle: int = 1, name: str = "coreframe"
              ) -> Callable[[], None]:
    """clsact qdisc (created if absent) plus a direct-action bpf filter."""
    from pyroute2 import IPRoute
    from pyroute2.netlink.exceptions import NetlinkError

    parent = _CLSACT_PARENT[direction]
    what = f"attaching tc {direction} filter to ifindex {ifindex} over netlink"
    created_qdisc = False
    try:
        with IPRoute() as ipr:
            try:
                ipr.tc("add", "clsact", ifindex)
                created_qdisc = True
            except NetlinkError as e:
                if e.code != 17:  # EEXIST: a clsact qdisc is already there, share it
                    raise
            try:
                ipr.tc("add-filter", "bpf", ifindex, handle, fd=prog_fd, name=name[:31],
                       parent=parent, classid=1, direct_action=True, prio=priority)
            except Exception:
                if created_qdisc:
                    ipr.tc("del", "clsact", ifindex)
                raise
    except Exception as e:  # noqa: BLE001
        raise _netlink_error(e, what) from None

    def undo() -> None:
        from .netns import in_netns

        with in_netns(netns), IPRoute() as ipr:
            try:
                ipr.tc("del-filter", "bpf", ifindex, handle, parent=parent, prio=priority)
            finally:
                if created_qdisc:
                    ipr.tc("del", "clsact", ifindex)

    return undo
