"""What several first-party tools share: the run's prologue and tail, record reading,
cgroup checks.

Kept free of heavy imports: ``coreframe list`` imports every tool's module.
"""

from __future__ import annotations

import os

from coreframe.errors import ToolError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from coreframe import ObjectSpec
    from coreframe.metrics import MetricSet
    from coreframe.tool import RunContext, Tool


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


def metered(ctx: RunContext, count: Callable[[MetricSet, dict[str, Any]], None]
            ) -> Callable[[dict[str, Any]], None]:
    """``ctx.emit``, counting each record into the run's metrics first when it exports
    them (``count(metric_set, record)``); plain ``ctx.emit`` otherwise."""
    emit = ctx.emit
    ms = ctx.metrics
    if ms is None:
        return emit

    def emit_counted(record: dict[str, Any]) -> None:
        count(ms, record)
        emit(record)

    return emit_counted


def errno_name(number: int) -> str:
    """``ENOENT`` for 2: a bounded label value (the number when it has no name)."""
    import errno

    return errno.errorcode.get(number, str(number))


def signal_name(sig: int) -> str:
    """SIGKILL, SIGRTMIN+3, ...; the number when it names no signal."""
    import signal

    try:
        return signal.Signals(sig).name
    except ValueError:
        low, high = signal.SIGRTMIN, signal.SIGRTMAX
        if low <= sig <= high:
            return f"SIGRTMIN+{sig - low}" if sig > low else "SIGRTMIN"
        return str(sig)


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


def attach_option(programs: Any) -> Any:
    """``--attach auto|METHOD``: which attach method to use, by default the first this
    kernel offers (``coreframe info NAME`` says which and why)."""
    from coreframe.options import Choice, Option

    return Option("--attach", type=Choice(["auto", *programs]), default="auto",
                  show_default=True,
                  help="Attach method (auto: the first this kernel offers, see info).")


def open_object(tool: Tool, programs: dict[str, str | tuple[str, ...]] | None = None,
                **rodata: Any) -> tuple[ObjectSpec, str | None]:
    """The run's prologue: the tool's object opened with ``rodata`` set, and its attach
    method.

    With ``programs`` (attach method -> program names), the method is picked among
    ``tool.attach_choices`` (limited by ``--attach``) and only its programs stay
    autoloaded; without, the method is None."""
    import coreframe

    method = None
    if programs is not None:
        method = pick(tool.name, tool.attach_choices, tool.options.get("attach", "auto"))
    spec = coreframe.open(tool.object_path())
    for name, value in rodata.items():
        setattr(spec.rodata, name, value)
    if method is not None:
        load_only(spec, method, programs)  # type: ignore[arg-type]
    return spec, method


def trace(ctx: RunContext, spec: ObjectSpec, status: str, *,
          handle: Callable[[memoryview], None] | None = None,
          read: Callable[[Any], None] | None = None, cgroup: str | None = None,
          lost: str = "events (ring buffer full)") -> int:
    """The run's tail: load, fill the cgroup filter (``-c``), attach, say ``status``,
    then ``read(obj)`` until the run stops (default: stream the ``events`` ring to
    ``handle``), and report what the programs counted in ``dropped`` as ``lost``.

    The cgroup directory is checked and opened before anything is loaded. While the
    run exports metrics, the kernel's drop count is in ``coreframe_lost_records`` at
    every scrape, not only at the end."""
    from coreframe.metrics import LOST

    cg = cgroup_fd(cgroup) if cgroup else None
    seen = [0]

    def count_drops(ms: Any, bss: Any) -> None:
        now = int(bss.dropped)
        if now > seen[0]:
            ms.inc(LOST.name, ("lost",), now - seen[0])
            seen[0] = now

    try:
        with spec.load() as obj:
            if cg is not None:
                obj.maps.cgroup_map.update(0, cg)
            obj.attach()
            ctx.status(status)
            if read is None:
                def read(o: Any) -> None:
                    stream(ctx, o.maps.events, handle)  # type: ignore[arg-type]
            if ctx.metrics is not None:
                bss = obj.bss
                with ctx.metrics.collecting(lambda ms: count_drops(ms, bss)):
                    read(obj)
            else:
                read(obj)
            dropped = int(obj.bss.dropped)
            ctx.lost(dropped, message=f"Lost {dropped} {lost}.", counted=seen[0])
    finally:
        if cg is not None:
            os.close(cg)
    return 0
