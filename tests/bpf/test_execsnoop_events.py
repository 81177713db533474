"""execsnoop.bpf.o end to end through coreframe's own loader and buffer readers.

Same checks as the libbpf oracle tests (test_execsnoop_libbpf.py), so a failure
here and not there points at coreframe, not at the object.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import storm_checks
from event_layout import decode_event

import coreframe

OBJ = str(Path(__file__).resolve().parents[2] / "plugins" / "objects" / "execsnoop.bpf.o")
EXEC_F_ARGS_TRUNCATED = 1
ARGSIZE = 128


def _drain(poll: Callable[[], Any], done: Callable[[], bool], polls: int = 50) -> None:
    for _ in range(polls):
        poll()
        if done():
            return


def _run_children() -> tuple[int, int]:
    """A successful exec with a long, clipped argument list, and a failing one."""
    ok = subprocess.Popen(["/bin/sh", "-c", "exit 5", "A" * 200, "b", "c"])
    assert ok.wait() == 5
    with pytest.raises(FileNotFoundError):
        subprocess.run(["/nonexistent/cf-events-test", "x"])
    return ok.pid, os.getpid()


def _check(events: list[dict[str, Any]], sh_pid: int, ring: bool) -> None:
    mine = [e for e in events if e["pid"] == sh_pid]
    [ev] = [e for e in mine if e["type"] == "exec"]
    [ex] = [e for e in mine if e["type"] == "exit"]
    assert ev["tgid"] == sh_pid and ev["ppid"] == os.getpid() and ev["uid"] == os.getuid()
    assert ev["retval"] == 0 and ev["comm"] == "sh" and ev["filename"] == "/bin/sh"
    assert ev["args"] == ["/bin/sh", "-c", "exit 5", "A" * (ARGSIZE - 1)]
    assert ev["args_count"] == 4 and ev["flags"] & EXEC_F_ARGS_TRUNCATED
    used = 64 + ev["filename_len"] + ev["args_size"]
    assert ev["size"] == used if ring else used <= ev["size"] < used + 8
    assert ex["exit_code"] == 5 and ex["sig"] == 0 and ex["comm"] == "sh"
    assert ex["duration_ns"] == ex["ts"] - ev["ts"] > 0
    failed = [e for e in events
              if e["type"] == "exec" and e["filename"] == "/nonexistent/cf-events-test"]
    assert len(failed) == 1 and failed[0]["retval"] == -errno.ENOENT
    assert failed[0]["args"] == ["/nonexistent/cf-events-test", "x"]


def _load(perf: bool) -> Any:
    spec = coreframe.open(OBJ)
    spec.rodata.ignore_failed = False
    spec.rodata.max_args = 4
    spec.rodata.use_perfbuf = perf
    return spec.load()


def test_ringbuf_events(need_root: None) -> None:
    from coreframe.ringbuf import RingBuffer

    records: list[bytes] = []
    with _load(perf=False) as obj:
        obj.attach()
        with RingBuffer(obj.maps.events, lambda rec: records.append(bytes(rec))) as rb:
            sh_pid, _ = _run_children()

            def done() -> bool:
                evs = [decode_event(r) for r in records]
                return (sum(1 for e in evs if e["pid"] == sh_pid) >= 2
                        and any(e.get("filename") == "/nonexistent/cf-events-test" for e in evs))

            _drain(lambda: rb.poll(0.1), done)
    _check([decode_event(r) for r in records], sh_pid, ring=True)


def test_perfbuf_events(need_root: None) -> None:
    from coreframe.perf import PerfBuffer

    records: list[bytes] = []
    with _load(perf=True) as obj:
        obj.attach()
        with PerfBuffer(obj.maps.events_perf,
                        callback=lambda rec: records.append(bytes(rec))) as pb:
            sh_pid, _ = _run_children()

            def done() -> bool:
                evs = [decode_event(r) for r in records]
                return (sum(1 for e in evs if e["pid"] == sh_pid) >= 2
                        and any(e.get("filename") == "/nonexistent/cf-events-test" for e in evs))

            _drain(lambda: pb.poll(0.1), done)
            assert pb.lost == 0
    _check([decode_event(r) for r in records], sh_pid, ring=False)


def test_event_types_decode_from_object_btf() -> None:
    """Readers may decode by name from the object's BTF; the layout must match the header."""
    spec = coreframe.open(OBJ)
    exec_t = spec.btf.ctype("struct exec_event")
    exit_t = spec.btf.ctype("struct exit_event")
    assert exec_t.comm.offset == 48 and exec_t.data.offset == 64
    assert exit_t.duration_ns.offset == 24 and exit_t.ts.offset == 40
    assert ctypes.sizeof(exit_t) == 64


def test_storm_through_coreframe(need_root: None, storm_bin: Path, tmp_path: Path) -> None:
    """The libbpf storm check again, with coreframe loading and reading."""
    from coreframe.ringbuf import RingBuffer

    out = tmp_path / "storm.json"
    records: list[bytes] = []
    spec = coreframe.open(OBJ)
    spec.rodata.ignore_failed = False
    spec.maps.events.max_entries = 1 << 22
    with spec.load() as obj:
        obj.attach()

        def drops() -> tuple[int, int]:
            counts = [sum(int.from_bytes(bytes(v)[:8], "little")
                          for v in obj.maps.drops.lookup(i)) for i in (0, 1)]
            return counts[0], counts[1]

        with RingBuffer(obj.maps.events, lambda rec: records.append(bytes(rec))) as rb:
            storm = subprocess.Popen([str(storm_bin), "-n", "300", "-j", "2", "-o", str(out)])
            while storm.poll() is None:
                rb.poll(0.05)
            assert storm.returncode == 0
            run = json.loads(out.read_text())
            _drain(lambda: rb.poll(0.1),
                   lambda: storm_checks.complete([decode_event(r) for r in records], run,
                                                 drops()))
            dropped = drops()
    storm_checks.check_storm([decode_event(r) for r in records], run, dropped)
