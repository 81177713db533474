"""The ``coreframe`` entry point: error policy, and ``run`` without click.

Errors from ``coreframe.errors`` become one line on stderr and exit 1;
``--debug`` shows the traceback instead. ``coreframe run NAME [options]`` is
what users type most and its start-up time is measured against C tools, so
when the tool's options are plain (see ``coreframe.options``) it is served
here without importing click or stevedore, and so is the plain ``btf dump
FILE`` (timed against bpftool). Every other command line, help and usage
errors included, goes to the click commands in ``coreframe.cli.commands``.
"""

from __future__ import annotations

import sys

from ..runtime.startup import pause_gc, resume_gc

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any


def _fast_run(args: list[str], gc_paused: bool) -> Callable[[], Any] | None:
    """The tool run for ``run NAME OPTIONS``, or None to let click parse."""
    if len(args) < 2 or args[0] != "run" or args[1].startswith("-"):
        return None
    from ..options import parse
    from ..tool import run_params, run_tool, usage_error
    from .registry import find_tool_direct

    entry = find_tool_direct(args[1])
    if entry is None or entry.cls is None:
        return None
    cls = entry.cls
    params = run_params(cls)
    tool_args = args[2:]
    if not any("--debug" in getattr(p, "opts", ()) for p in params):
        # `run NAME --debug`: main() already saw it; the tool's own options do not include it
        tool_args = [a for a in tool_args if a != "--debug"]
    options = parse(params, tool_args)
    if options is None or usage_error(cls, options):
        return None  # click reports usage errors (exit 2, with the usage line)
    return lambda: run_tool(cls, options, gc_paused=gc_paused)


def _run_btf(args: list[str]) -> list[str]:
    """``run --btf FILE NAME ...``: point CO-RE at FILE (btf.locate) and return the
    command line without it; unchanged unless FILE exists (click then says why)."""
    import os

    if len(args) < 3 or args[0] != "run":
        return args
    if args[1] == "--btf":
        path, rest = args[2], args[3:]
    elif args[1].startswith("--btf="):
        path, rest = args[1].partition("=")[2], args[2:]
    else:
        return args
    if not os.path.isfile(path):
        return args
    from ..btf.locate import set_default

    set_default(path, "--btf")
    return ["run", *rest]


def _fast_btf_dump(args: list[str]) -> Callable[[], Any] | None:
    """``btf dump FILE [--format raw|json|c]`` with an existing file, or None for click."""
    import os

    if len(args) < 3 or args[:2] != ["btf", "dump"]:
        return None
    rest = args[2:]
    fmt = "raw"
    if len(rest) == 3 and rest[1] == "--format" and rest[2] in ("raw", "json", "c"):
        fmt = rest[2]
    elif len(rest) == 2 and rest[1] in ("--format=raw", "--format=json", "--format=c"):
        fmt = rest[1].partition("=")[2]
    elif len(rest) != 1:
        return None
    path = rest[0]
    if path.startswith("-") or not os.path.isfile(path):
        return None
    from ..btf.dump import dump_btf_file

    return lambda: dump_btf_file(path, fmt)


def _debug_logging() -> None:
    """``--debug``: coreframe's loggers (the loader's BTF log, ...) print to stderr."""
    import logging

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("coreframe: debug: %(name)s: %(message)s"))
    logger = logging.getLogger("coreframe")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: one line per error unless --debug."""
    # No cyclic GC during start-up (see runtime.startup): the objects imports and the
    # loader allocate trigger collections that find no garbage; a tool run turns it
    # back on once attached (see run_tool), a btf dump is a short batch job.
    gc_was_enabled = pause_gc()
    args = sys.argv[1:] if argv is None else list(argv)
    debug = "--debug" in args  # before the command, after `run` or after `run NAME`
    try:
        if debug:
            _debug_logging()
        rest = args[1:] if args[:1] == ["--debug"] else args
        run = _fast_run(_run_btf(rest), gc_was_enabled) or _fast_btf_dump(rest)
        if run is not None:
            sys.exit(run())
        resume_gc(gc_was_enabled)
        from .commands import invoke

        invoke(args)
    except KeyboardInterrupt:
        sys.exit(130)
    except BrokenPipeError:
        sys.stderr.close()
        sys.exit(0)
    except Exception as exc:
        from ..errors import Error
        from .report import fail

        if debug:
            import traceback

            traceback.print_exc()
        if isinstance(exc, Error):
            # a kernel without BTF is fixed by an argument (--btf): exit 2, like usage
            fail(str(exc), getattr(exc, "exit_code", 1))
        # a bug, not a user error: still one line unless --debug
        if not debug:
            fail(f"internal error: {type(exc).__name__}: {exc} (rerun with --debug)")
        sys.exit(1)
    finally:
        resume_gc(gc_was_enabled)  # for callers that run main() in-process (tests)


if __name__ == "__main__":
    main()
