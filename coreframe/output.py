"""Output helpers shared by tools: JSON lines and bcc-style log2 histograms."""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import Any, TextIO


def json_line(obj: dict[str, Any], out: TextIO) -> None:
    """Write one JSON object per line; flushed so pipes like ``| jq`` see it at once."""
    import json  # imports re: only tools that write JSON pay for it

    out.write(json.dumps(obj, separators=(",", ":"), ensure_ascii=False))
    out.write("\n")
    out.flush()


def json_string_encoder() -> Callable[[str], str]:
    """The function ``json.dumps(ensure_ascii=False)`` quotes one str with (quotes
    included), for tools that write JSON lines by hand; json itself is not imported."""
    from .runtime.startup import json_string_encoder as encoder

    return encoder()


def log2_bounds(slot: int) -> tuple[int, int]:
    """Inclusive [lo, hi] of log2 slot ``slot``: slot 0 holds 0, slot i holds 2^(i-1)..2^i-1.

    This is bcc's slot numbering (``bpf_log2l(v)`` = floor(log2 v) + 1), kept
    exact so text, JSON and Prometheus show the same bounds.
    """
    if slot == 0:
        return 0, 0
    return 1 << (slot - 1), (1 << slot) - 1


def _stars(count: int, max_count: int, width: int) -> str:
    if max_count <= 0:
        return ""
    n = min(width, count * width // max_count)
    text = "*" * n
    if count > max_count:
        text = text[:-1] + "+"
    return text


def format_log2_hist(slots: Sequence[int], unit: str = "value", width: int = 40) -> str:
    """Render a log2 histogram the way bcc/libbpf-tools print it.

    Trailing empty slots are dropped; leading ones are kept so the scale
    starts at zero as users expect.
    """
    last = max((i for i, v in enumerate(slots) if v), default=-1)
    if last < 0:
        return ""
    rows = [log2_bounds(i) for i in range(last + 1)]
    max_count = max(slots[: last + 1])
    lo_w = max(len(str(lo)) for lo, _ in rows)
    hi_w = max(len(str(hi)) for _, hi in rows)
    head_w = lo_w + hi_w + 5
    lines = [f"{unit:>{head_w}} : count    distribution"]
    for i, (lo, hi) in enumerate(rows):
        count = slots[i]
        bar = _stars(count, max_count, width)
        lines.append(f"{lo:>{lo_w}} -> {hi:<{hi_w}} : {count:<8} |{bar:<{width}}|")
    return "\n".join(lines)
