"""What several first-party tools share: record reading by struct layout, cgroup checks.

Kept free of heavy imports: ``coreframe list`` imports every tool's module.
"""

from __future__ import annotations

import os

from coreframe.errors import ToolError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from coreframe.tool import RunContext


def comm(raw: bytes) -> str:
    """A kernel char[16] comm up to its first NUL."""
    return raw.partition(b"\0")[0].decode("utf-8", "replace")


def stream(ctx: RunContext, ring: Any, handle: Callable[[memoryview], None]) -> None:
    """Read ``ring`` until the run should stop, handing each record to ``handle``.

    The reader's callback API: each record is decoded in place, no copy; the
    header is printed first (after attach, so a header means tracing)."""
    from coreframe.ringbuf import RingBuffer

    with RingBuffer(ring, handle) as rb:
        ctx.header()
        out = ctx.out
        while not ctx.should_stop():
            rb.poll(ctx.poll_timeout())
            out.flush()
        rb.consume()
        out.flush()


def lookup_sum(m: Any, key: Any) -> int:
    """A map value as an int, whatever view the maps layer gives (bytes or typed)."""
    raw = getattr(m, "raw", m)
    v = raw.lookup(key)
    if v is None:
        return 0
    return int.from_bytes(bytes(v)[:8], "little")


def cgroup_fd(path: str) -> int:
    """An fd on a cgroup v2 directory, for a cgroup-array map (-c)."""
    if not os.path.exists(os.path.join(path, "cgroup.controllers")):
        raise ToolError(f"--cgroup {path}: not a cgroup v2 directory (no cgroup.controllers; "
                        "give a path under the cgroup2 mount)")
    return os.open(path, os.O_RDONLY | os.O_DIRECTORY)


def load_only(spec: Any, method: str, programs: dict[str, str | tuple[str, ...]]) -> None:
    """Keep autoload on for ``method``'s programs only (``programs``: method -> names)."""
    for m, names in programs.items():
        for name in (names,) if isinstance(names, str) else names:
            spec.programs[name].autoload = m == method


def pick(tool: str, choices: Any, wanted: str = "auto") -> str:
    """The attach method to use (see ``coreframe.tool.choose_attach``), or a ToolError.

    ``wanted`` (the tool's --attach) other than "auto" limits the choice to that one."""
    from coreframe.tool import choose_attach

    if wanted != "auto":
        choices = [c for c in choices if c[0] == wanted]
    choice = choose_attach(choices)
    if choice.method is None:
        raise ToolError(f"{tool}: no way to attach on this kernel ({choice.detail})")
    return choice.method
