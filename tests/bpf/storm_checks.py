"""Ground-truth checks of execsnoop records against a bench/storm run (its JSON)."""

from __future__ import annotations

import errno
from typing import Any

EXEC_F_ARGS_TRUNCATED = 1
ARGSIZE = 128
DEFAULT_MAX_ARGS = 20


def wanted(run: dict[str, Any]) -> tuple[set[int], set[int]]:
    """(pids that must have an exec event, pids that must have an exit event)."""
    kids = run["children"]
    return {c["pid"] for c in kids}, {c["pid"] for c in kids if c["kind"] != "fail"}


def seen(events: list[dict[str, Any]], run: dict[str, Any], kind: str) -> set[int]:
    pids = wanted(run)[0]
    return {e["pid"] for e in events if e["type"] == kind and e["pid"] in pids}


def complete(events: list[dict[str, Any]], run: dict[str, Any], drops: tuple[int, int]) -> bool:
    execs, exits = wanted(run)
    return (len(seen(events, run, "exec")) + drops[0] >= len(execs)
            and len(seen(events, run, "exit")) + drops[1] >= len(exits))


def check_storm(events: list[dict[str, Any]], run: dict[str, Any],
                drops: tuple[int, int]) -> None:
    """Every storm exec/exit is delivered once with the right fields, or counted as dropped.

    Expects max_args at its default and ignore_failed off.
    """
    execs, exits = wanted(run)
    got_exec, got_exit = seen(events, run, "exec"), seen(events, run, "exit")
    assert len(got_exec) + drops[0] == len(execs)
    assert len(got_exit) + drops[1] == len(exits)
    assert got_exit <= exits and got_exec
    kids = {c["pid"]: c for c in run["children"]}
    per_pid: dict[tuple[int, str], int] = {}
    for ev in events:
        kid = kids.get(ev["pid"])
        if kid is None:
            continue
        per_pid[ev["pid"], ev["type"]] = per_pid.get((ev["pid"], ev["type"]), 0) + 1
        i = kid["i"]
        assert ev["ppid"] == run["ppid"]
        assert run["start_ns"] <= ev["ts"] <= run["end_ns"]
        if ev["type"] == "exit":
            assert ev["exit_code"] == kid["exit_code"] == 0 and ev["sig"] == 0
            # exec entry -> exit lies inside the storm's fork -> reap interval
            assert 0 < ev["duration_ns"] <= kid["lifetime_ns"]
            continue
        assert ev["filename"] == kid["path"]
        if kid["kind"] == "fail":
            assert ev["retval"] == -errno.ENOENT == -kid["exec_errno"]
            assert ev["args"] == [kid["path"]] and ev["flags"] == 0
        elif kid["kind"] == "short":
            assert ev["retval"] == 0 and ev["comm"] == "true"
            assert ev["args"] == [kid["path"], "storm", str(i)] and ev["flags"] == 0
        else:
            assert ev["retval"] == 0 and ev["comm"] == "true"
            assert ev["args_count"] == DEFAULT_MAX_ARGS
            assert ev["flags"] & EXEC_F_ARGS_TRUNCATED
            assert ev["args"][0] == kid["path"]
            for j in range(1, DEFAULT_MAX_ARGS):
                assert ev["args"][j] == f"{i}.{j}.".ljust(ARGSIZE - 1, "x")
    assert set(per_pid.values()) <= {1}, "an event was delivered twice"
