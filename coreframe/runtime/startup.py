"""Start-up measures, in one place: CPython's C modules in place of slower stdlib
ones, and pausing the cyclic GC while the loader allocates.

``coreframe run`` is benchmarked against C tools (bench/execsnoop_bench.py), and
what a tool's first event waits for is mostly Python importing and allocating.
Two measures earned their cost there; everything in coreframe gets them from
this module rather than spelling CPython's private modules itself:

- C modules instead of their Python wrappers, which import more (``threading``
  imports ``collections``, ``signal`` builds ``enum`` classes, ``json`` imports
  ``re``, ``operator.py`` is a Python module over ``_operator``, ``ctypes``
  builds some forty types and ``pythonapi``). The names below are the C
  functions themselves; ``_ctypes`` and ``_json`` are extension modules, loaded
  only by :func:`ctypes_core` and :func:`json_string_encoder`. A Python without
  them (not CPython) falls back to the stdlib module.
- The cyclic GC paused during bursts of allocation that create no garbage
  cycles (imports, decoding a cached spec or the kernel BTF index, CO-RE):
  :func:`gc_paused` for a call, :func:`pause_gc`/:func:`resume_gc` for the CLI,
  which pauses for a tool's whole start-up and resumes once it is attached.

``tests/cli/test_cli_options.py`` checks that ``coreframe run`` imports none of
the slow modules; bench/ measures what these save.
"""

from __future__ import annotations

import gc

try:
    from _operator import and_, getitem, index, itemgetter, rshift
    from _signal import SIGINT, SIGTERM
    from _signal import signal as set_signal_handler
    from _thread import allocate_lock, start_new_thread
except ImportError:  # not CPython: the public modules have the same functions
    from _thread import start_new_thread
    from operator import and_, getitem, index, itemgetter, rshift
    from signal import SIGINT, SIGTERM
    from signal import signal as set_signal_handler
    from threading import _allocate_lock as allocate_lock  # type: ignore[attr-defined]

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from types import ModuleType
    from typing import Any

__all__ = [
    "SIGINT", "SIGTERM", "allocate_lock", "and_", "ctypes_core", "gc_paused", "getitem",
    "index", "itemgetter", "json_string_encoder", "pause_gc", "resume_gc", "rshift",
    "set_signal_handler", "start_new_thread",
]


def ctypes_core() -> ModuleType:
    """``_ctypes``, the C half of ctypes (what :mod:`coreframe.sys.cdata` builds on)."""
    import _ctypes

    return _ctypes


def json_string_encoder() -> Callable[[str], str]:
    """The function ``json.dumps(ensure_ascii=False)`` quotes a str with, without
    importing json (and re)."""
    try:
        from _json import encode_basestring
    except ImportError:  # not CPython
        from json.encoder import py_encode_basestring as encode_basestring
    return encode_basestring


def pause_gc() -> bool:
    """Turn the cyclic GC off; returns whether it was on (pass that to :func:`resume_gc`)."""
    was_enabled = gc.isenabled()
    gc.disable()
    return was_enabled


def resume_gc(was_enabled: bool = True) -> None:
    """Turn the cyclic GC back on if it was on before :func:`pause_gc`."""
    if was_enabled:
        gc.enable()


def gc_paused(func: Callable[..., Any]) -> Callable[..., Any]:
    """Run ``func`` with the cyclic GC off, and turn it back on after if it was on.

    For the loader's bursts of allocation (imports, decoding a spec or the kernel
    BTF index, resolving CO-RE): tens of thousands of objects and no garbage
    cycles, yet the collections they trigger are a measurable part of a warm
    open. A caller that turned the GC off itself keeps it off.
    """

    def paused(*args: Any, **kwargs: Any) -> Any:
        if not gc.isenabled():
            return func(*args, **kwargs)
        gc.disable()
        try:
            return func(*args, **kwargs)
        finally:
            gc.enable()

    paused.__wrapped__ = func  # type: ignore[attr-defined]
    for name in ("__module__", "__name__", "__qualname__", "__doc__"):
        setattr(paused, name, getattr(func, name))
    return paused
