"""Attaching loaded programs to their hooks; a ``Link`` owns the attachment.

Every attach function returns a ``Link`` whose ``close()`` detaches: it closes
the BPF link fd (and the perf event fd behind it), or undoes the netlink change
for the XDP/tc fallbacks. Links garbage collected without being closed are
detached too: their fds close themselves, and a ``weakref.finalize`` backstop
(which also runs at exit) undoes netlink attachments.

Where the kernel offers BPF links we use them (BPF_LINK_CREATE) and fall back to
the older mechanism only when links are missing: PERF_EVENT_IOC_SET_BPF for perf
events, IFLA_XDP / clsact+bpf filters over netlink (pyroute2) for XDP and tc.
"""

from __future__ import annotations

import errno
import os

from . import tracefs
from .errors import AttachError, Error, FeatureMissing, PermissionDenied
from .sys import cdata
from .sys import consts as C
from .sys.fd import FD

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    Resource = FD | Callable[[], None]

_EVENT_SOURCES = "/sys/bus/event_source/devices"
ENOTSUPP = 524
CLONE_NEWNET = 0x40000000


def _release(resources: list[Resource]) -> None:
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

            self._finalizer = weakref.finalize(self, _release, self._resources)

    @property
    def fd(self) -> int:
        """The BPF link fd; AttachError for links that have none (netlink, ioctl fallback)."""
        if self._fd is None:
            raise AttachError(f"{self.kind} link to {self.target} has no BPF link fd")
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
        from .sys.bpf import link_info

        try:
            li = link_info(self._fd)
        except OSError as e:
            raise AttachError(f"cannot query {self.kind} link: {os.strerror(e.errno or 0)}"
                              ) from None
        out.update(type=C.LINK_TYPE_NAMES.get(li.type, str(li.type)), id=li.id,
                   prog_id=li.prog_id)
        return out

    def pin(self, path: str) -> None:
        """Pin the link in bpffs so it outlives this process."""
        from .sys.bpf import obj_pin

        try:
            obj_pin(self.fd, path)
        except OSError as e:
            raise AttachError(f"pinning link at {path}: {os.strerror(e.errno or 0)}") from None

    def close(self) -> None:
        """Detach (idempotent)."""
        for c in self.children:
            c.close()
        self._closed = True
        if self._finalizer is not None:
            self._finalizer()
        else:
            _release(self._resources)

    def __enter__(self) -> Link:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "attached"
        return f"<Link {self.kind} {self.target} {state}>"


# ---- helpers ------------------------------------------------------------------------


def _prog_fd(prog: Any) -> int:
    fd = getattr(prog, "fd", prog)
    fd = getattr(fd, "fd", fd)
    if not isinstance(fd, int):
        raise AttachError(f"expected a loaded program, got {type(prog).__name__}")
    return fd


def _prog_name(prog: Any) -> str:
    return str(getattr(prog, "name", None) or f"fd {_prog_fd(prog)}")


def _section_def(prog: Any) -> Any:
    sd = getattr(prog, "section_def", None)
    if sd is None:
        spec = getattr(prog, "spec", None)
        sd = getattr(spec, "section_def", None)
    return sd


def _attach_error(e: OSError, what: str, *, feature: str | None = None,
                  hint: str = "") -> Error:
    """Map an errno from an attach syscall onto our error tree."""
    from .sys.errors import has_capability

    code = e.errno
    text = f"{os.strerror(code)} ({errno.errorcode.get(code or 0, code)})" if code != ENOTSUPP \
        else "not supported (ENOTSUPP)"
    if code in (errno.EPERM, errno.EACCES) and not has_capability("CAP_BPF"):
        return PermissionDenied(what, "CAP_BPF")
    if feature is not None and code in (errno.EINVAL, errno.EOPNOTSUPP, ENOTSUPP, errno.ENOENT,
                                        errno.EPERM):
        return FeatureMissing(feature, hint or f"{what}: {text}")
    return AttachError(f"{what}: {text}")


def _pmu_type(name: str) -> int | None:
    try:
        with open(f"{_EVENT_SOURCES}/{name}/type") as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def _pmu_retprobe_bit(name: str) -> int:
    """Bit of ``config`` that selects a return probe (format/retprobe: ``config:0``)."""
    try:
        with open(f"{_EVENT_SOURCES}/{name}/format/retprobe") as f:
            text = f.read().strip()
        return int(text.split(":", 1)[1].split("-")[0])
    except (OSError, ValueError, IndexError):
        return 0


def _perf_event_open(attr: Any, pid: int, cpu: int, what: str) -> FD:
    from .sys.syscall import perf_event_open

    try:
        return FD(perf_event_open(attr, pid, cpu, -1, C.PERF_FLAG_FD_CLOEXEC))
    except OSError as e:
        if e.errno in (errno.EPERM, errno.EACCES):
            raise PermissionDenied(f"perf_event_open for {what}", "CAP_PERFMON") from None
        if e.errno == errno.ENOENT:
            raise AttachError(f"perf_event_open for {what}: no such event (ENOENT)") from None
        raise AttachError(f"perf_event_open for {what}: {os.strerror(e.errno or 0)}") from None


_perf_link_works: bool | None = None


def _attach_perf_fd(prog: Any, pfd: FD, kind: str, target: str, cookie: int = 0,
                    extra: list[Resource] | None = None) -> Link:
    """Attach ``prog`` to an open perf event: perf link, else PERF_EVENT_IOC_SET_BPF."""
    global _perf_link_works
    from .sys.bpf import link_create
    from .sys.syscall import ioctl

    resources: list[Resource] = [pfd] + list(extra or [])
    what = f"attaching {_prog_name(prog)} to {kind} {target}"
    link_err: OSError | None = None
    if _perf_link_works is not False:
        try:
            lfd = link_create(_prog_fd(prog), pfd, C.BPF_PERF_EVENT, bpf_cookie=cookie)
        except OSError as e:
            if e.errno not in (errno.EINVAL, errno.EOPNOTSUPP, ENOTSUPP) or _perf_link_works:
                _release(resources)
                raise _attach_error(e, what) from None
            link_err = e  # maybe no perf links on this kernel: try the ioctl below
        else:
            _perf_link_works = True
            return Link(kind, target, lfd, resources=resources)
    if cookie:
        _release(resources)
        raise FeatureMissing("BPF perf links", "needed for a BPF cookie on perf events")
    try:
        ioctl(pfd.fd, C.PERF_EVENT_IOC_SET_BPF, _prog_fd(prog))
        ioctl(pfd.fd, C.PERF_EVENT_IOC_ENABLE, 0)
    except OSError as e:
        _release(resources)
        # Both ways failed: the program does not fit this event; report the first error.
        raise _attach_error(link_err or e, what) from None
    if link_err is not None:
        _perf_link_works = False  # the ioctl worked where the link did not: remember
    pfdnum = pfd.fd

    def disable() -> None:
        try:
            ioctl(pfdnum, C.PERF_EVENT_IOC_DISABLE, 0)
        except OSError:
            pass

    # Disable before the perf fd closes; closing it drops the program.
    return Link(kind + " (ioctl)", target, None, resources=[disable, *resources])


# ---- tracepoints ----------------------------------------------------------------------


def attach_tracepoint(prog: Any, category: str, name: str, *, cookie: int = 0) -> Link:
    """Attach to tracepoint CATEGORY:NAME through a perf event."""
    from .sys.attr import PerfEventAttr

    tp_id = tracefs.tracepoint_id(category, name)
    attr = PerfEventAttr(type=C.PERF_TYPE_TRACEPOINT, config=tp_id)
    attr.sample_period = 1
    attr.wakeup_events = 1
    pfd = _perf_event_open(attr, -1, 0, f"tracepoint {category}:{name}")
    return _attach_perf_fd(prog, pfd, "tracepoint", f"{category}:{name}", cookie)


def attach_raw_tracepoint(prog: Any, name: str, *, cookie: int = 0) -> Link:
    """Attach to raw tracepoint ``name`` (BPF_RAW_TRACEPOINT_OPEN)."""
    from .sys.bpf import raw_tracepoint_open

    try:
        lfd = raw_tracepoint_open(name, _prog_fd(prog), cookie)
    except OSError as e:
        if e.errno == errno.ENOENT:
            raise AttachError(f"no raw tracepoint '{name}'") from None
        raise _attach_error(e, f"attaching {_prog_name(prog)} to raw tracepoint {name}"
                            ) from None
    return Link("raw_tracepoint", name, lfd)


_TRACING_TYPES = {
    C.BPF_TRACE_RAW_TP: "tp_btf", C.BPF_TRACE_FENTRY: "fentry", C.BPF_TRACE_FEXIT: "fexit",
    C.BPF_MODIFY_RETURN: "fmod_ret", C.BPF_LSM_MAC: "lsm", C.BPF_TRACE_ITER: "iter",
}


def _expected_attach_type(prog: Any) -> int | None:
    for obj in (prog, _section_def(prog)):
        v = getattr(obj, "expected_attach_type", None)
        if isinstance(v, int):
            return v
    return None


def attach_tracing(prog: Any, *, cookie: int = 0, attach_type: int | None = None) -> Link:
    """Attach a BTF-targeted program (tp_btf, fentry, fexit, fmod_ret, lsm, iter).

    The target was fixed at load time (attach_btf_id); this only creates the link:
    BPF_LINK_CREATE with the program's attach type, or raw_tracepoint_open(NULL) on
    kernels without tracing links.
    """
    from .sys.bpf import link_create, raw_tracepoint_open

    at = attach_type if attach_type is not None else _expected_attach_type(prog)
    if at is None:
        raise AttachError(f"program {_prog_name(prog)} has no expected attach type; "
                          "pass attach_type=")
    kind = _TRACING_TYPES.get(at, "tracing")
    sd = _section_def(prog)
    target = getattr(sd, "attach_target", "") or _prog_name(prog)
    what = f"attaching {kind} program {_prog_name(prog)}"
    trampoline = kind in ("fentry", "fexit", "fmod_ret", "lsm")
    feature = "BPF trampolines" if trampoline else None
    try:
        lfd = link_create(_prog_fd(prog), 0, at, tracing_cookie=cookie)
    except OSError as e:
        if e.errno not in (errno.EINVAL, errno.EOPNOTSUPP) or cookie or at == C.BPF_TRACE_ITER:
            raise _attach_error(e, what, feature=feature,
                                hint=_trampoline_hint(trampoline)) from None
        try:
            lfd = raw_tracepoint_open(None, _prog_fd(prog))
        except OSError as e2:
            raise _attach_error(e2, what, feature=feature,
                                hint=_trampoline_hint(trampoline)) from None
    return Link(kind, target, lfd)


# ---- kprobes ------------------------------------------------------------------------


def _trampoline_hint(trampoline: bool) -> str:
    """For a refused fentry/fexit/LSM attach: the other hooks this kernel offers."""
    if not trampoline:
        return ""
    from .features import hook_hint

    return f"this kernel refuses fentry/fexit/LSM (no BPF trampoline); {hook_hint('fentry/fexit')}"


def _kprobes_missing() -> FeatureMissing:
    from .features import hook_hint

    return FeatureMissing("kprobes", "kernel built without CONFIG_KPROBE_EVENTS; "
                          + hook_hint("kprobes"))

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


def _legacy_probe(kind: str, definition_fmt: str, target: str) -> tuple[int, Callable[[], None]]:
    """Create a tracefs kprobe/uprobe event; returns (tracepoint id, remover)."""
    events_file = tracefs.tracefs_file(f"{kind}_events")
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
        tp_id = tracefs.tracepoint_id(group, name)
    except Error:
        remove()
        raise
    return tp_id, remove


def attach_kprobe(prog: Any, func: str, retprobe: bool = False, offset: int = 0,
                  cookie: int = 0) -> Link:
    """Attach to kernel function ``func`` (+offset) via the kprobe PMU or kprobe_events."""
    from .sys.attr import PerfEventAttr

    what = f"{'kretprobe' if retprobe else 'kprobe'} {func}" + (f"+{offset}" if offset else "")
    pmu = _pmu_type("kprobe")
    if pmu is not None:
        name = cdata.create_string_buffer(func.encode())
        attr = PerfEventAttr(type=pmu)
        if retprobe:
            attr.config |= 1 << _pmu_retprobe_bit("kprobe")
        attr.kprobe_func = cdata.addressof(name)
        attr.probe_offset = offset
        attr.sample_period = 1
        attr.wakeup_events = 1
        pfd = _perf_event_open(attr, -1, 0, what)
        return _attach_perf_fd(prog, pfd, "kprobe", what, cookie)
    try:
        has_events = os.path.exists(tracefs.tracefs_file("kprobe_events"))
    except Error:
        has_events = False
    if not has_events:
        raise _kprobes_missing()
    probe = f"{func}+{offset}" if offset else func
    tp_id, remove = _legacy_probe("kprobe", f"{'r' if retprobe else 'p'}:kprobes/{{name}} {probe}",
                                  what)
    attr2 = PerfEventAttr(type=C.PERF_TYPE_TRACEPOINT, config=tp_id)
    attr2.sample_period = 1
    try:
        pfd = _perf_event_open(attr2, -1, 0, what)
    except Error:
        remove()
        raise
    return _attach_perf_fd(prog, pfd, "kprobe", what, cookie, extra=[remove])


# ---- uprobes ------------------------------------------------------------------------


def attach_uprobe(prog: Any, path: str, symbol: str | None = None, offset: int = 0,
                  pid: int = -1, retprobe: bool = False, cookie: int = 0,
                  ref_ctr_offset: int = 0) -> Link:
    """Attach to ``symbol``+``offset`` (or a raw file ``offset``) in ``path``.

    ``path`` may be a bare library name (``libc.so.6``) or program name; ``pid`` -1
    traces every process mapping the file.
    """
    from . import uprobes
    from .sys.attr import PerfEventAttr

    real, off = uprobes.resolve(path, symbol, offset, pid)
    what = (f"{'uretprobe' if retprobe else 'uprobe'} {real}:"
            f"{symbol if symbol else hex(offset)}" + (f"+{offset}" if symbol and offset else ""))
    cpu = 0 if pid == -1 else -1
    pmu = _pmu_type("uprobe")
    if pmu is not None:
        pbuf = cdata.create_string_buffer(real.encode())
        attr = PerfEventAttr(type=pmu)
        if retprobe:
            attr.config |= 1 << _pmu_retprobe_bit("uprobe")
        if ref_ctr_offset:
            attr.config |= ref_ctr_offset << 32
        attr.uprobe_path = cdata.addressof(pbuf)
        attr.probe_offset = off
        attr.sample_period = 1
        attr.wakeup_events = 1
        pfd = _perf_event_open(attr, pid, cpu, what)
        return _attach_perf_fd(prog, pfd, "uprobe", what, cookie)
    try:
        has_events = os.path.exists(tracefs.tracefs_file("uprobe_events"))
    except Error:
        has_events = False
    if not has_events:
        raise FeatureMissing("uprobes", "kernel built without CONFIG_UPROBE_EVENTS")
    # uprobe_events takes the reference counter (USDT semaphore) as PATH:OFFSET(REF_CTR)
    ref = f"({ref_ctr_offset:#x})" if ref_ctr_offset else ""
    tp_id, remove = _legacy_probe(
        "uprobe", f"{'r' if retprobe else 'p'}:uprobes/{{name}} {real}:{off:#x}{ref}", what)
    attr2 = PerfEventAttr(type=C.PERF_TYPE_TRACEPOINT, config=tp_id)
    attr2.sample_period = 1
    try:
        pfd = _perf_event_open(attr2, pid, cpu, what)
    except Error:
        remove()
        raise
    return _attach_perf_fd(prog, pfd, "uprobe", what, cookie, extra=[remove])


def attach_usdt(prog: Any, path: str, provider: str, name: str, pid: int = -1,
                cookie: int = 0) -> Link:
    """Attach a program built with <bpf/usdt.bpf.h> to USDT ``provider:name`` in
    ``path`` (see ``coreframe.usdt``); ``pid`` -1 traces every process."""
    from . import usdt

    return usdt.attach_usdt(prog, path, provider, name, pid=pid, cookie=cookie)


# ---- perf event sampling ------------------------------------------------------------


def attach_perf_event(prog: Any, frequency: int | None = None, period: int | None = None, *,
                      type: int = C.PERF_TYPE_SOFTWARE,  # noqa: A002 - perf's own name
                      config: int = C.PERF_COUNT_SW_CPU_CLOCK, pid: int = -1,
                      cpus: list[int] | None = None, cookie: int = 0) -> Link:
    """Run ``prog`` on a sampling perf event on every CPU (one child link per CPU)."""
    from .perf import online_cpus
    from .sys.attr import PerfEventAttr

    if (frequency is None) == (period is None):
        raise AttachError("attach_perf_event needs exactly one of frequency= or period=")
    attr = PerfEventAttr(type=type, config=config)
    if frequency is not None:
        attr.freq = 1
        attr.sample_freq = frequency
    else:
        attr.sample_period = period or 1
    children: list[Link] = []
    try:
        for cpu in cpus if cpus is not None else online_cpus():
            what = f"perf event type {type} config {config} on cpu {cpu}"
            try:
                pfd = _perf_event_open(attr, pid, cpu, what)
            except AttachError as e:
                if "ENOENT" in str(e) or "No such" in str(e):
                    raise FeatureMissing(f"perf event type {type} config {config}",
                                         "no such PMU event on this machine") from None
                raise
            children.append(_attach_perf_fd(prog, pfd, "perf_event", f"cpu {cpu}", cookie))
    except BaseException:
        for c in children:
            c.close()
        raise
    desc = f"{frequency} Hz" if frequency is not None else f"every {period} events"
    return Link("perf_event", f"{len(children)} CPUs, {desc}", None, children=children)


# ---- network: XDP and tc ------------------------------------------------------------


class in_netns:  # noqa: N801 - used as ``with in_netns(name):``
    """Run the body with this thread in network namespace ``netns`` (/var/run/netns/NAME).

    A class rather than a generator context manager: contextlib is not worth its
    import on every tool's start-up for the XDP/tc paths alone.
    """

    def __init__(self, netns: str | None) -> None:
        self.netns = netns
        self._here = self._target = -1
        self._setns: Any = None

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


def attach_xdp(prog: Any, iface: str | int, netns: str | None = None,
               mode: str | None = None, *, use_link: bool = True) -> Link:
    """Attach an XDP program to ``iface`` (name or ifindex), optionally inside ``netns``.

    ``mode``: None (kernel picks), ``"skb"``/``"generic"``, ``"native"``, ``"hw"``.
    Uses an XDP BPF link; falls back to netlink IFLA_XDP (removed on close).
    """
    from .sys.bpf import link_create

    if mode not in _XDP_MODES:
        raise AttachError(f"unknown XDP mode {mode!r} (skb, native, hw)")
    flags = _XDP_MODES[mode]
    with in_netns(netns):
        idx = _ifindex(iface, netns)
        target = f"{iface}" + (f" (netns {netns})" if netns else "")
        if use_link:
            try:
                lfd = link_create(_prog_fd(prog), idx, C.BPF_XDP, flags=flags)
                return Link("xdp", target, lfd)
            except OSError as e:
                if e.errno not in (errno.EINVAL, errno.EOPNOTSUPP, ENOTSUPP):
                    raise _attach_error(e, f"attaching XDP program {_prog_name(prog)} to "
                                        f"{target}") from None
        from . import netdev

        undo = netdev.xdp_attach(_prog_fd(prog), idx, flags, netns)
    return Link("xdp (netlink)", target, None, resources=[undo])


def attach_tc(prog: Any, iface: str | int, direction: str = "ingress",
              netns: str | None = None, *, use_link: bool = True, priority: int = 1,
              handle: int = 1) -> Link:
    """Attach a tc (sched_cls) program to ``iface`` ingress or egress.

    Uses a tcx link where the kernel has one (6.6+); otherwise a clsact qdisc and a
    direct-action bpf filter at ``priority``/``handle``, removed on close.
    """
    from .sys.bpf import link_create

    if direction not in ("ingress", "egress"):
        raise AttachError(f"tc direction must be 'ingress' or 'egress', not {direction!r}")
    at = C.BPF_TCX_INGRESS if direction == "ingress" else C.BPF_TCX_EGRESS
    with in_netns(netns):
        idx = _ifindex(iface, netns)
        target = f"{iface} {direction}" + (f" (netns {netns})" if netns else "")
        if use_link:
            try:
                lfd = link_create(_prog_fd(prog), idx, at)
                return Link("tcx", target, lfd)
            except OSError as e:
                if e.errno not in (errno.EINVAL, errno.EOPNOTSUPP, ENOTSUPP):
                    raise _attach_error(e, f"attaching tc program {_prog_name(prog)} to "
                                        f"{target}") from None
        from . import netdev

        undo = netdev.tc_attach(_prog_fd(prog), idx, direction, netns, priority=priority,
                                handle=handle, name=_prog_name(prog))
    return Link("tc (netlink)", target, None, resources=[undo])


# ---- SEC()-driven dispatch -------------------------------------------------------------


_KSYSCALL_PREFIX = {"x86_64": "__x64_sys_", "aarch64": "__arm64_sys_"}


def attach_program(prog: Any) -> Link:
    """Attach ``prog`` the way its SEC() name says, like libbpf's auto-attach."""
    sd = _section_def(prog)
    name = _prog_name(prog)
    if sd is None:
        raise AttachError(f"program {name} has no SEC() information; attach it explicitly")
    kind = sd.attach_kind
    target = sd.attach_target or ""
    sec = getattr(sd, "name", kind)
    if kind == "tracepoint":
        if target.count("/") != 1:
            raise AttachError(f"program {name}: SEC('{sec}') needs tracepoint/CATEGORY/NAME")
        cat, tp = target.split("/")
        return attach_tracepoint(prog, cat, tp)
    if kind == "raw_tracepoint":
        if not target:
            raise AttachError(f"program {name}: SEC('{sec}') has no tracepoint name; "
                              "call attach_raw_tracepoint(prog, name)")
        return attach_raw_tracepoint(prog, target)
    if kind in ("tp_btf", "fentry", "fexit", "fmod_ret", "lsm", "iter"):
        return attach_tracing(prog)
    if kind == "kprobe":
        if not target:
            raise AttachError(f"program {name}: SEC('{sec}') has no function; "
                              "call attach_kprobe(prog, func)")
        func, _, off = target.partition("+")
        return attach_kprobe(prog, func, retprobe=bool(sd.is_return),
                             offset=int(off, 0) if off else 0)
    if kind == "ksyscall":
        import platform

        prefix = _KSYSCALL_PREFIX.get(platform.machine(), "sys_")
        return attach_kprobe(prog, prefix + target, retprobe=bool(sd.is_return))
    if kind == "uprobe":
        if not target:
            raise AttachError(f"program {name}: SEC('{sec}') has no target; call "
                              "attach_uprobe(prog, path, symbol)")
        from . import uprobes

        path, sym, off = uprobes.parse_target(target)
        return attach_uprobe(prog, path, sym, off, retprobe=bool(sd.is_return))
    if kind == "usdt":
        if not target:
            raise AttachError(f"program {name}: SEC('{sec}') has no target; call "
                              "attach_usdt(prog, path, provider, name)")
        from . import usdt

        return attach_usdt(prog, *usdt.parse_sec_target(target))
    if kind == "xdp":
        raise AttachError(f"program {name}: XDP programs need an interface; call "
                          "attach_xdp(prog, ifname)")
    if kind in ("tc", "tcx"):
        raise AttachError(f"program {name}: tc programs need an interface; call "
                          "attach_tc(prog, ifname, direction)")
    if kind == "perf_event":
        raise AttachError(f"program {name}: perf_event programs need a sampling rate; call "
                          "attach_perf_event(prog, frequency=N)")
    raise AttachError(f"program {name}: SEC('{sec}') ({kind}) cannot be auto-attached")
