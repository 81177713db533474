"""Dynamic probes: kprobes on kernel functions and uprobes on user binaries.

Both go through the kprobe/uprobe PMU where the kernel has one, and through a
tracefs probe event (``kprobe_events`` / ``uprobe_events``) otherwise; either
way the program is attached to the resulting perf event."""

from __future__ import annotations

import os

from ..errors import Error, FeatureMissing
from ..sys import cdata
from ..sys import consts as C
from . import tracefs
from .base import Link
from .perf_event import attach_perf_fd, open_perf_event, pmu_retprobe_bit, pmu_type

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from ..programs import Program


def _attach_probe(prog: Program, kind: str, target: str, offset: int, *, retprobe: bool,
                  pid: int, cookie: int, what: str, legacy: str,
                  missing: Callable[[], FeatureMissing], config: int = 0) -> Link:
    """A ``kind`` ("kprobe" or "uprobe") probe on ``target`` (a kernel function or a file
    path) at ``offset``: through the PMU of that name, else a tracefs probe event
    defined by ``legacy`` (its ``{name}`` filled in)."""
    from ..sys.attr import PerfEventAttr

    cpu = 0 if pid == -1 else -1
    pmu = pmu_type(kind)
    if pmu is not None:
        target_buf = cdata.create_string_buffer(target.encode())  # read by perf_event_open
        attr = PerfEventAttr(type=pmu)
        if retprobe:
            attr.config |= 1 << pmu_retprobe_bit(kind)
        attr.config |= config
        setattr(attr, "kprobe_func" if kind == "kprobe" else "uprobe_path",
                cdata.addressof(target_buf))
        attr.probe_offset = offset
        attr.sample_period = 1
        attr.wakeup_events = 1
        pfd = open_perf_event(attr, pid, cpu, what)
        return attach_perf_fd(prog, pfd, kind, what, cookie)
    try:
        has_events = os.path.exists(tracefs.tracefs_file(f"{kind}_events"))
    except Error:
        has_events = False
    if not has_events:
        raise missing()
    tp_id, remove = tracefs.add_probe_event(kind, legacy, what)
    attr = PerfEventAttr(type=C.PERF_TYPE_TRACEPOINT, config=tp_id)
    attr.sample_period = 1
    try:
        pfd = open_perf_event(attr, pid, cpu, what)
    except Error:
        remove()
        raise
    return attach_perf_fd(prog, pfd, kind, what, cookie, extra=[remove])


def _kprobes_missing() -> FeatureMissing:
    from ..features import hook_hint

    return FeatureMissing("kprobes", "kernel built without CONFIG_KPROBE_EVENTS; "
                          + hook_hint("kprobes"))


def _uprobes_missing() -> FeatureMissing:
    return FeatureMissing("uprobes", "kernel built without CONFIG_UPROBE_EVENTS")


def attach_kprobe(prog: Program, func: str, retprobe: bool = False, offset: int = 0,
                  cookie: int = 0) -> Link:
    """Attach to kernel function ``func`` (+offset) via the kprobe PMU or kprobe_events."""
    what = f"{'kretprobe' if retprobe else 'kprobe'} {func}" + (f"+{offset}" if offset else "")
    probe = f"{func}+{offset}" if offset else func
    return _attach_probe(prog, "kprobe", func, offset, retprobe=retprobe, pid=-1,
                         cookie=cookie, what=what,
                         legacy=f"{'r' if retprobe else 'p'}:kprobes/{{name}} {probe}",
                         missing=_kprobes_missing)


def attach_uprobe(prog: Program, path: str, symbol: str | None = None, offset: int = 0,
                  pid: int = -1, retprobe: bool = False, cookie: int = 0,
                  ref_ctr_offset: int = 0) -> Link:
    """Attach to ``symbol``+``offset`` (or a raw file ``offset``) in ``path``.

    ``path`` may be a bare library name (``libc.so.6``) or program name; ``pid`` -1
    traces every process mapping the file.
    """
    from . import symbols  # pyelftools and re: only uprobes need them

    real, off = symbols.resolve(path, symbol, offset, pid)
    what = (f"{'uretprobe' if retprobe else 'uprobe'} {real}:"
            f"{symbol if symbol else hex(offset)}" + (f"+{offset}" if symbol and offset else ""))
    return _attach_probe(prog, "uprobe", real, off, retprobe=retprobe, pid=pid, cookie=cookie,
                         what=what, config=ref_ctr_offset << 32,
                         legacy=f"{'r' if retprobe else 'p'}:uprobes/{{name}} {real}:{off:#x}"
                         + (f"({ref_ctr_offset:#x})" if ref_ctr_offset else ""),
                         missing=_uprobes_missing)
