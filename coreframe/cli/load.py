"""``coreframe object load``: load (and optionally attach) every program of an object.

Like ``bpftool prog loadall`` but reporting each program on its own: when the
whole object does not load, each autoload program is tried alone so the user
sees which ones the verifier accepts and why the others were refused.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable

from ..errors import Error
from ..tool import RunContext

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from ..btf.types import BTF


def _open(path: str, sets: tuple[str, ...], apply_sets: Callable[[Any, tuple[str, ...]], None],
          only: str | None = None) -> Any:
    from ..object import open as open_object

    spec = open_object(path)
    apply_sets(spec, sets)
    if only is not None:
        for name, prog in spec.programs.items():
            prog.autoload = name == only
    return spec


def _report_row(prog: Any, spec_prog: Any) -> dict[str, Any]:
    from ..programs import prog_type_name

    info = prog.info()
    return {"name": spec_prog.name, "section": spec_prog.section,
            "type": prog_type_name(spec_prog.prog_type), "insns": spec_prog.insn_cnt,
            "xlated_insns": info.xlated_size // 8, "id": info.id, "loaded": True, "error": ""}


def _failed_row(spec_prog: Any, exc: Exception) -> dict[str, Any]:
    from ..programs import prog_type_name

    return {"name": spec_prog.name, "section": spec_prog.section,
            "type": prog_type_name(spec_prog.prog_type), "insns": spec_prog.insn_cnt,
            "loaded": False, "error": str(exc)}


def _print_rows(rows: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        return
    for r in rows:
        if r["loaded"]:
            print(f"{r['name']:<24} {r['type']:<16} {r['insns']:>6} insns  loaded (id {r['id']})")
        else:
            print(f"{r['name']:<24} {r['type']:<16} {r['insns']:>6} insns  FAILED: {r['error']}")


def load_command(path: str, *, sets: tuple[str, ...], btf_path: BTF | str | None, attach: bool,
                 duration: float | None, stats: bool, as_json: bool,
                 apply_sets: Callable[[Any, tuple[str, ...]], None],
                 install_handlers: Callable[[RunContext], None],
                 ifname: str | None = None) -> int:
    """Returns the process exit code: 0 only when every autoload program loaded.

    ``btf_path``: the target BTF (already read, or a path) CO-RE relocates against.
    ``ifname``: with ``attach``, the interface the XDP and tc programs go on.
    """
    from ..errors import PermissionDenied

    spec = _open(path, sets, apply_sets)
    target = btf_path
    autoload = [p for p in spec.programs.values() if p.autoload]
    try:
        obj = spec.load(target_btf=target)
    except Error as whole_error:
        if getattr(whole_error, "exit_code", 1) == 2:
            raise  # no target BTF (btf.locate): said once, before anything was loaded
        rows = []
        # Lacking a privilege is never one program's fault: trying each alone
        # would only repeat the same refusal once per program.
        if not isinstance(whole_error, PermissionDenied):
            for p in autoload:
                single = _open(path, sets, apply_sets, only=p.name)
                try:
                    with single.load(target_btf=target) as one:
                        rows.append(_report_row(one.programs[p.name], p))
                except Error as exc:
                    rows.append(_failed_row(p, exc))
        if not rows or all(r["loaded"] for r in rows) or _shared_cause(rows):
            # Each loads alone but not together (maps, pins), or every one failed for
            # the same reason: that is the object's error, said once.
            return _fail_whole(autoload, rows, whole_error, as_json)
        _emit(rows, [], as_json)
        return 1

    with obj:
        rows = [_report_row(obj.programs[p.name], p) for p in autoload]
        run_stats: list[dict[str, Any]] = []
        if attach:
            run_stats = _attach_and_hold(obj, duration, stats, install_handlers, as_json, rows,
                                         ifname)
        _emit(rows, run_stats, as_json)
    return 0


def _shared_cause(rows: list[dict[str, Any]]) -> bool:
    """True when several programs all failed with one and the same error."""
    return len(rows) > 1 and not any(r["loaded"] for r in rows) and len(
        {r["error"] for r in rows}) == 1


def _fail_whole(autoload: list[Any], rows: list[dict[str, Any]], error: Error,
                as_json: bool) -> int:
    """The object did not load for a reason no single program owns: say it once."""
    cause = rows[0]["error"] if _shared_cause(rows) else str(error)
    if as_json:
        doc = {"programs": [_failed_row(p, error) | {"error": cause} for p in autoload],
               "error": cause}
        print(json.dumps(doc, indent=2))
        sys.stdout.flush()
    names = len(autoload)
    sys.stderr.write(f"coreframe: error: none of the {names} programs loaded: {cause}\n"
                     if names > 1 else f"coreframe: error: {cause}\n")
    sys.stderr.flush()
    return 1


def _attach_and_hold(obj: Any, duration: float | None, stats: bool,
                     install_handlers: Callable[[RunContext], None], as_json: bool,
                     rows: list[dict[str, Any]], ifname: str | None = None
                     ) -> list[dict[str, Any]]:
    from contextlib import ExitStack

    from ..programs import enable_stats

    ctx = RunContext(duration=duration)
    install_handlers(ctx)
    with ExitStack() as stack:
        if stats:
            stack.enter_context(enable_stats())
        links = obj.attach(ifname)
        if not as_json:
            _print_rows(rows, as_json=False)
            sys.stdout.flush()  # the program ids, readable while attached
            rows.clear()
        what = ", ".join(f"{link.kind} {link.target}" for link in links) or "nothing"
        ctx.status(f"Attached {len(links)} programs ({what}). Ctrl-C to detach.")
        while not ctx.should_stop():
            ctx.sleep(0.2)
        result = []
        if stats:
            for name, prog in obj.programs.items():
                info = prog.info()
                result.append({"name": name, "run_cnt": info.run_cnt,
                               "run_time_ns": info.run_time_ns})
        obj.detach()
    return result


def _emit(rows: list[dict[str, Any]], run_stats: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        doc: dict[str, Any] = {"programs": rows}
        if run_stats:
            doc["stats"] = run_stats
        print(json.dumps(doc, indent=2))
        return
    _print_rows(rows, as_json=False)
    for s in run_stats:
        avg = s["run_time_ns"] / s["run_cnt"] if s["run_cnt"] else 0
        print(f"{s['name']:<24} run_cnt {s['run_cnt']:<10} run_time_ns {s['run_time_ns']:<12} "
              f"avg {avg:.0f} ns")
    sys.stdout.flush()
