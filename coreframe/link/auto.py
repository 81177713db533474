"""Attaching a program the way its SEC() name says (libbpf's auto-attach)."""

from __future__ import annotations

from ..errors import AttachError
from .base import program_name, section_def_of

# Each hook family's module is imported when a program of that family is attached:
# a tool pays only for its own hooks at start-up.

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..programs import Program
    from .base import Link


_KSYSCALL_PREFIX = {"x86_64": "__x64_sys_", "aarch64": "__arm64_sys_"}


def attach_program(prog: Program) -> Link:
    """Attach ``prog`` the way its SEC() name says, like libbpf's auto-attach."""
    sd = section_def_of(prog)
    name = program_name(prog)
    if sd is None:
        raise AttachError(f"program {name} has no SEC() information; attach it explicitly")
    kind = sd.attach_kind
    target = sd.attach_target or ""
    sec = getattr(sd, "name", kind)
    if kind == "tracepoint":
        from .tracepoint import attach_tracepoint

        if target.count("/") != 1:
            raise AttachError(f"program {name}: SEC('{sec}') needs tracepoint/CATEGORY/NAME")
        cat, tp = target.split("/")
        return attach_tracepoint(prog, cat, tp)
    if kind == "raw_tracepoint":
        from .tracepoint import attach_raw_tracepoint

        if not target:
            raise AttachError(f"program {name}: SEC('{sec}') has no tracepoint name; "
                              "call attach_raw_tracepoint(prog, name)")
        return attach_raw_tracepoint(prog, target)
    if kind in ("tp_btf", "fentry", "fexit", "fmod_ret", "lsm", "iter"):
        from .tracing import attach_tracing

        return attach_tracing(prog)
    if kind in ("kprobe", "ksyscall", "uprobe"):
        from .probe import attach_kprobe, attach_uprobe
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
        from . import symbols

        path, sym, off = symbols.parse_target(target)
        return attach_uprobe(prog, path, sym, off, retprobe=bool(sd.is_return))
    if kind == "kprobe_multi":
        from .kprobe_multi import attach_kprobe_multi

        if not target:
            raise AttachError(f"program {name}: SEC('{sec}') has no function pattern; "
                              "call attach_kprobe_multi(prog, pattern)")
        return attach_kprobe_multi(prog, target, retprobe=bool(sd.is_return))
    if kind == "uprobe_multi":
        from .uprobe_multi import attach_uprobe_multi, parse_sec_target

        if not target:
            raise AttachError(f"program {name}: SEC('{sec}') has no target; call "
                              "attach_uprobe_multi(prog, path, pattern)")
        path, pattern = parse_sec_target(target)
        return attach_uprobe_multi(prog, path, pattern, retprobe=bool(sd.is_return))
    if kind == "usdt":
        if not target:
            raise AttachError(f"program {name}: SEC('{sec}') has no target; call "
                              "attach_usdt(prog, path, provider, name)")
        from .usdt import attach_usdt, parse_sec_target

        return attach_usdt(prog, *parse_sec_target(target))
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
