"""Tracepoints: through a perf event (``tracepoint/CATEGORY/NAME``) and raw
tracepoints (BPF_RAW_TRACEPOINT_OPEN)."""

from __future__ import annotations

import errno

from ..errors import AttachError
from ..sys import consts as C
from . import tracefs
from .base import Link, attach_error, program_fd, program_name
from .perf_event import attach_perf_fd, open_perf_event

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..programs import Program


def attach_tracepoint(prog: Program, category: str, name: str, *, cookie: int = 0) -> Link:
    """Attach to tracepoint CATEGORY:NAME through a perf event."""
    from ..sys.attr import PerfEventAttr

    tp_id = tracefs.tracepoint_id(category, name)
    attr = PerfEventAttr(type=C.PERF_TYPE_TRACEPOINT, config=tp_id)
    attr.sample_period = 1
    attr.wakeup_events = 1
    pfd = open_perf_event(attr, -1, 0, f"tracepoint {category}:{name}")
    return attach_perf_fd(prog, pfd, "tracepoint", f"{category}:{name}", cookie)


def attach_raw_tracepoint(prog: Program, name: str, *, cookie: int = 0) -> Link:
    """Attach to raw tracepoint ``name`` (BPF_RAW_TRACEPOINT_OPEN)."""
    from ..sys.bpf import raw_tracepoint_open

    try:
        lfd = raw_tracepoint_open(name, program_fd(prog), cookie)
    except OSError as e:
        if e.errno == errno.ENOENT:
            raise AttachError(f"no raw tracepoint '{name}'") from None
        raise attach_error(e, f"attaching {program_name(prog)} to raw tracepoint {name}"
                            ) from None
    return Link("raw_tracepoint", name, lfd)
