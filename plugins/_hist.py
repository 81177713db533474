"""The interval loop of first-party histogram tools (runqlat, cpudist, biolatency).

Each interval: drain the tool's hash map of histograms (each key read and deleted
in one step, so a count that lands meanwhile goes to the next interval), then
print them as libbpf-tools does, or one JSON object per histogram.
"""

from __future__ import annotations

import struct
import time

from coreframe.options import IntRange, Option

from ._common import comm

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from coreframe.tool import RunContext

MAX_SLOTS = 26                      # bpf/hist.h
_HIST = struct.Struct(f"<{MAX_SLOTS}I16s")


def interval_options() -> list[Option]:
    """libbpf-tools' positional [interval [count]], as options, and -T."""
    return [
        Option("-i", "--interval", type=IntRange(min=1), default=None,
               help="Print every INTERVAL seconds (default: once, at the end)."),
        Option("-n", "--count", "times", type=IntRange(min=1), default=None,
               help="Stop after COUNT intervals."),
        Option("-T", "--timestamp", "print_time", is_flag=True,
               help="Print the time of each interval."),
    ]


def drain(hists: Any) -> list[tuple[int, list[int], str]]:
    """(key, slots, comm) of every histogram in the map, taken out of it; the key as
    an int (little-endian: a struct key's first member is its low bits)."""
    m = getattr(hists, "raw", hists)
    out = []
    for key, raw in m.take_all():
        *slots, raw_comm = _HIST.unpack_from(bytes(raw))
        out.append((int.from_bytes(bytes(key), "little"), slots, comm(raw_comm)))
    out.sort(key=lambda h: h[0])
    return out


def run_intervals(ctx: RunContext, options: dict[str, Any], hists: Any, unit: str,
                  label: Callable[[int, str], tuple[str | None, dict[str, Any]]]) -> None:
    """Print the map's histograms every interval until stopped (and once at the end).

    ``label(key, comm)`` gives each histogram its title line (None: none) and its
    JSON labels."""
    interval = options.get("interval")
    times = options.get("times")
    printed = 0
    while True:
        ctx.sleep(interval or 365 * 86400)
        stopping = ctx.should_stop()
        if not ctx.output.as_json:
            ctx.out.write("\n")
            if options.get("print_time"):
                ctx.out.write(f"{time.strftime('%H:%M:%S'):<8}\n")
        for key, slots, c in drain(hists):
            title, labels = label(key, c)
            if title is not None and not ctx.output.as_json:
                ctx.out.write(title + "\n")   # "" is a line too (biolatency's)
            ctx.hist(slots, unit, labels=labels)
        ctx.out.flush()
        printed += 1
        if stopping or (times and printed >= times):
            return
