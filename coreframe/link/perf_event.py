"""Perf events: opening them, attaching a program to one (a BPF perf link, or
PERF_EVENT_IOC_SET_BPF where the kernel has no perf links), and sampling events.

Tracepoints, kprobes and uprobes attach through a perf event too (see
:mod:`.tracepoint` and :mod:`.probe`)."""

from __future__ import annotations

import errno
import os

from ..errors import AttachError, FeatureMissing, PermissionDenied
from ..sys import consts as C
from ..sys.fd import FD
from ..sys.host import EVENT_SOURCES
from .base import Link, attach_error, program_fd, program_name, release

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..programs import Program
    from ..sys.attr import PerfEventAttr
    from .base import Resource



def pmu_type(name: str) -> int | None:
    try:
        with open(f"{EVENT_SOURCES}/{name}/type") as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def pmu_retprobe_bit(name: str) -> int:
    """Bit of ``config`` that selects a return probe (format/retprobe: ``config:0``)."""
    try:
        with open(f"{EVENT_SOURCES}/{name}/format/retprobe") as f:
            text = f.read().strip()
        return int(text.split(":", 1)[1].split("-")[0])
    except (OSError, ValueError, IndexError):
        return 0


def open_perf_event(attr: PerfEventAttr, pid: int, cpu: int, what: str) -> FD:
    from ..sys.syscall import perf_event_open

    try:
        return FD(perf_event_open(attr, pid, cpu, -1, C.PERF_FLAG_FD_CLOEXEC))
    except OSError as e:
        if e.errno in (errno.EPERM, errno.EACCES):
            raise PermissionDenied(f"perf_event_open for {what}", "CAP_PERFMON") from None
        if e.errno == errno.ENOENT:
            raise AttachError(f"perf_event_open for {what}: no such event (ENOENT)") from None
        raise AttachError(f"perf_event_open for {what}: {os.strerror(e.errno or 0)}") from None


# What the ioctl fallback is recorded as (features.fallbacks_taken), and why.
IOCTL_FALLBACK = "perf-event attach by PERF_EVENT_IOC_SET_BPF + PERF_EVENT_IOC_ENABLE"
IOCTL_WHY = ("no BPF perf links (BPF_LINK_CREATE with BPF_PERF_EVENT, Linux 5.15+; "
             "probe: features.has_bpf_link, or COREFRAME_DISABLE_LINKS=perf_event)")


def attach_perf_fd(prog: Program, pfd: FD, kind: str, target: str, cookie: int = 0,
                    extra: list[Resource] | None = None) -> Link:
    """Attach ``prog`` to an open perf event: a BPF perf link where the kernel has them
    (:func:`coreframe.features.has_bpf_link`), else the perf event's own ioctls, as
    libbpf does on kernels before 5.15. The ioctl way has no link fd (nothing to pin or
    query) and no BPF cookie: asking for a cookie there is FeatureMissing."""
    from ..features import has_bpf_link, link_disabled, note_fallback
    from ..sys.bpf import link_create
    from ..sys.syscall import ioctl

    resources: list[Resource] = [pfd] + list(extra or [])
    what = f"attaching {program_name(prog)} to {kind} {target}"
    # The link is tried first and the probe (two program loads and a link_create)
    # runs only when it fails: on 5.15+ every start then attaches with the one
    # syscall, and a failure there is told from a kernel without perf links by it.
    if not link_disabled("perf_event"):
        try:
            lfd = link_create(program_fd(prog), pfd, C.BPF_PERF_EVENT, bpf_cookie=cookie)
            return Link(kind, target, lfd, resources=resources)
        except OSError as e:
            failed = e
        try:
            links = has_bpf_link()
        except BaseException:
            release(resources)
            raise
        if links:
            release(resources)
            raise attach_error(failed, what) from None
    if cookie:
        release(resources)
        raise FeatureMissing("BPF perf links (Linux 5.15+)",
                             f"{what}: a BPF cookie on a perf event needs one")
    try:
        ioctl(pfd.fd, C.PERF_EVENT_IOC_SET_BPF, program_fd(prog))
        ioctl(pfd.fd, C.PERF_EVENT_IOC_ENABLE, 0)
    except OSError as e:
        release(resources)
        raise attach_error(e, what) from None
    note_fallback(IOCTL_FALLBACK, IOCTL_WHY)
    pfdnum = pfd.fd

    def disable() -> None:
        try:
            ioctl(pfdnum, C.PERF_EVENT_IOC_DISABLE, 0)
        except OSError:
            pass

    # Disable before the perf fd closes; closing it drops the program.
    return Link(kind + " (ioctl)", target, None, resources=[disable, *resources])


def attach_perf_event(prog: Program, frequency: int | None = None, period: int | None = None, *,
                      type: int = C.PERF_TYPE_SOFTWARE,  # noqa: A002 - perf's own name
                      config: int = C.PERF_COUNT_SW_CPU_CLOCK, pid: int = -1,
                      cpus: list[int] | None = None, cookie: int = 0) -> Link:
    """Run ``prog`` on a sampling perf event on every CPU (one child link per CPU)."""
    from ..sys.attr import PerfEventAttr
    from ..sys.host import online_cpus

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
                pfd = open_perf_event(attr, pid, cpu, what)
            except AttachError as e:
                if "ENOENT" in str(e) or "No such" in str(e):
                    raise FeatureMissing(f"perf event type {type} config {config}",
                                         "no such PMU event on this machine") from None
                raise
            children.append(attach_perf_fd(prog, pfd, "perf_event", f"cpu {cpu}", cookie))
    except BaseException:
        for c in children:
            c.close()
        raise
    desc = f"{frequency} Hz" if frequency is not None else f"every {period} events"
    return Link("perf_event", f"{len(children)} CPUs, {desc}", None, children=children)
