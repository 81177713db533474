"""Links: attaching loaded programs to kernel hooks, one module per hook family.

``base`` (the :class:`Link` that owns an attachment), ``perf_event`` (perf events and
sampling), ``tracepoint`` (tracepoints, raw tracepoints), ``tracing`` (tp_btf, fentry,
fexit, fmod_ret, lsm, iter), ``probe`` (kprobes, uprobes), ``kprobe_multi`` and
``uprobe_multi`` (one link for many functions, or one probe each), ``usdt`` (USDT probes:
discovery from ELF notes and libbpf's usdt.bpf.h contract), ``netdev`` (XDP, tc) and
``auto`` (attach as SEC() says); ``tracefs``, ``symbols`` (uprobe targets), ``netns``
and ``netlink`` (XDP/tc without BPF links) serve them. Names below are importable from
here; each module is imported on first use, so a tool pays only for its own hooks.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

_EXPORTS = {
    "Link": "base", "attach_error": "base",
    "attach_perf_event": "perf_event",
    "attach_tracepoint": "tracepoint", "attach_raw_tracepoint": "tracepoint",
    "attach_tracing": "tracing",
    "attach_kprobe": "probe", "attach_uprobe": "probe", "attach_usdt": "usdt",
    "attach_kprobe_multi": "kprobe_multi", "attach_uprobe_multi": "uprobe_multi",
    "attach_xdp": "netdev", "attach_tc": "netdev",
    "in_netns": "netns",
    "attach_program": "auto",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'coreframe.link' has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
