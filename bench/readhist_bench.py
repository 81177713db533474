"""readhist benchmark: what tracing read() sizes costs a read() loop.

The loop is `dd if=/dev/zero of=/dev/null bs=1 count=N`: N one-byte read()s
(each followed by a one-byte write()), timed from spawn to exit. It runs with
nothing attached and under each tracer, one after the other in every round so
machine noise hits all of them alike; medians over --runs rounds. Tracers:
  - coreframe:  `coreframe run readhist --json` (the tool as users run it, every
                process; on kernels without trampolines/kprobes: the read/pread64
                exit tracepoints)
  - bpftrace:   `tracepoint:syscalls:sys_exit_read { @ = hist(args.ret); }`
                (one global log2 histogram: the same work in the kernel, less
                bookkeeping than readhist's per-process entries)
  - libbpf / coreframe-lib: the committed readhist.bpf.o loaded by libbpf
                (through ctypes, the C anchor) and by coreframe's loader as a
                library, without the CLI: load+attach time of each loader
Reported: reads/s, ns added per read against the untraced loop, and whether the
tracer counted all N reads (dd's pid in slot 1 for readhist; bpftrace's global
[1] bucket must hold at least N).
Needs root. Usage: .venv/bin/python bench/readhist_bench.py [--n 1000000] [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
OBJ = ROOT / "plugins" / "objects" / "readhist.bpf.o"
UNUSED = ("vfs_read_fexit", "vfs_read_kret")
MAX_SLOTS = 64
KEY = struct.Struct("<I16s")
VALUE = struct.Struct(f"<{MAX_SLOTS}QQQQ16s")
WAIT_S = 60.0


def dd(n: int) -> tuple[int, float]:
    """(pid, seconds) of one read loop."""
    t0 = time.monotonic()
    proc = subprocess.Popen(["dd", "if=/dev/zero", "of=/dev/null", "bs=1", f"count={n}"],
                            stderr=subprocess.DEVNULL)
    if proc.wait() != 0:
        raise RuntimeError(f"dd exited with {proc.returncode}")
    return proc.pid, time.monotonic() - t0


class Lines:
    """Every line of one stream of a child process, read on a thread."""

    def __init__(self, stream: IO[str] | None) -> None:
        self.lines: list[str] = []
        self.cond = threading.Condition()
        self.thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self.thread.start()

    def _read(self, stream: IO[str] | None) -> None:
        assert stream is not None
        for line in stream:
            with self.cond:
                self.lines.append(line)
                self.cond.notify_all()
        with self.cond:
            self.cond.notify_all()

    def wait_for(self, text: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self.cond:
            while not any(text in line for line in self.lines):
                left = deadline - time.monotonic()
                if left <= 0 or not self.thread.is_alive():
                    return False
                self.cond.wait(left)
        return True


def traced(argv: list[str], ready_stream: str, ready_text: str, n: int,
           settle_s: float = 0.0) -> tuple[int, float, list[str]]:
    """Start a tracer, wait until it says it is attached, run dd, stop it with SIGINT.

    Returns (dd pid, dd seconds, the tracer's stdout lines).
    """
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            errors="replace")
    out, err = Lines(proc.stdout), Lines(proc.stderr)
    try:
        ready = out if ready_stream == "stdout" else err
        if not ready.wait_for(ready_text, WAIT_S):
            raise RuntimeError(f"{argv[0]} never attached: {''.join(err.lines)[-300:]}")
        time.sleep(settle_s)
        pid, dd_s = dd(n)
        proc.send_signal(signal.SIGINT)
        code = proc.wait(WAIT_S)
        out.thread.join(WAIT_S)
        if code != 0:
            raise RuntimeError(f"{argv[0]} exited with {code}: {''.join(err.lines)[-300:]}")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return pid, dd_s, out.lines


def run_coreframe_tool(n: int) -> dict[str, Any]:
    coreframe = str(Path(sys.executable).with_name("coreframe"))
    pid, dd_s, lines = traced([coreframe, "run", "readhist", "--json"], "stderr", "Tracing", n)
    counted = 0
    for line in lines:
        rec = json.loads(line)
        if rec.get("pid") == pid:
            counted = sum(b["count"] for b in rec["hist"] if b["lo"] == b["hi"] == 1)
    return {"dd_s": dd_s, "counted": counted, "exact": True}


def bpftrace_program() -> str:
    """`args.ret` in bpftrace >= 0.18 spelling, `args->ret` before."""
    proc = subprocess.run(["bpftrace", "--version"], capture_output=True, text=True)
    m = re.search(r"v(\d+)\.(\d+)", proc.stdout)
    new = m is not None and (int(m[1]), int(m[2])) >= (0, 18)
    ret = "args.ret" if new else "args->ret"
    return f"tracepoint:syscalls:sys_exit_read {{ @ = hist({ret}); }}"


def run_bpftrace(n: int) -> dict[str, Any]:
    # bpftrace prints "Attaching 1 probe..." just before attaching: give it a moment,
    # and the [1] bucket check below tells whether every read was seen anyway
    pid, dd_s, lines = traced(["bpftrace", "-e", bpftrace_program()], "stdout", "Attaching",
                              n, settle_s=1.0)
    counted = 0
    for line in lines:
        m = re.match(r"\[1\]\s+(\d+)\s", line)
        if m:
            counted = int(m[1])
    return {"dd_s": dd_s, "counted": counted, "exact": False}


def slot1_for(items: list[tuple[bytes, bytes]], pid: int) -> int:
    for k, v in items:
        key_id, _comm = KEY.unpack(k)
        if key_id == pid:
            return VALUE.unpack(v)[1]
    return 0


def run_libbpf(n: int) -> dict[str, Any]:
    sys.path.insert(0, str(ROOT / "tests" / "bpf"))
    from libbpf_oracle import LIBBPF, LibbpfObject

    if LIBBPF is None:
        raise RuntimeError("libbpf.so not installed")
    t0 = time.monotonic()
    with LibbpfObject(str(OBJ), disable=UNUSED) as obj:
        obj.attach()
        load_s = time.monotonic() - t0
        pid, dd_s = dd(n)
        items = obj.items("hists", KEY.size, VALUE.size)
    return {"load_ms": load_s * 1000, "dd_s": dd_s, "counted": slot1_for(items, pid),
            "exact": True}


def run_coreframe_lib(n: int) -> dict[str, Any]:
    import coreframe

    t0 = time.monotonic()
    spec = coreframe.open(str(OBJ))
    for name in UNUSED:
        spec.programs[name].autoload = False
    with spec.load() as obj:
        obj.attach()
        load_s = time.monotonic() - t0
        pid, dd_s = dd(n)
        items = [(bytes(k), bytes(v)) for k, v in obj.maps.hists.items()]
    return {"load_ms": load_s * 1000, "dd_s": dd_s, "counted": slot1_for(items, pid),
            "exact": True}


def tracers() -> list[tuple[str, Callable[[int], dict[str, Any]] | None, str]]:
    """(name, runner or None, why unavailable)."""
    found: list[tuple[str, Callable[[int], dict[str, Any]] | None, str]] = []
    if Path(sys.executable).with_name("coreframe").exists():
        found.append(("coreframe", run_coreframe_tool, ""))
    else:
        found.append(("coreframe", None, "console script not installed"))
    if shutil.which("bpftrace"):
        found.append(("bpftrace", run_bpftrace, ""))
    else:
        found.append(("bpftrace", None, "bpftrace not installed (setup.sh --dev)"))
    found.append(("libbpf", run_libbpf, ""))
    found.append(("coreframe-lib", run_coreframe_lib, ""))
    return found


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000, help="one-byte reads per loop")
    ap.add_argument("--runs", type=int, default=5, help="rounds (medians reported)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("readhist_bench: skipped (needs root)")
        return 0
    if shutil.which("dd") is None:
        print("readhist_bench: skipped (no dd)")
        return 0

    available = [(name, fn) for name, fn, _ in tracers() if fn is not None]
    base: list[float] = []
    results: dict[str, list[dict[str, Any]]] = {name: [] for name, _ in available}
    errors: dict[str, str] = {}
    for _ in range(args.runs):
        base.append(dd(args.n)[1])
        for name, fn in available:
            if name in errors:
                continue
            try:
                results[name].append(fn(args.n))
            except Exception as e:  # report it and go on with the other tracers
                errors[name] = f"{type(e).__name__}: {e}"

    base_s = statistics.median(base)
    summary: dict[str, Any] = {"n": args.n, "runs": args.runs, "untraced_dd_s": base_s,
                               "untraced_reads_per_s": args.n / base_s, "untraced_runs": base}
    print(f"readhist bench: dd of {args.n} one-byte read()s, median of {args.runs} rounds")
    print(f"{'tracer':<14} {'reads/s':>10} {'ns/read added':>14} {'slowdown':>9} "
          f"{'load+attach ms':>15} {'reads counted':>16}")
    print(f"{'(none)':<14} {args.n / base_s:>10.0f} {'-':>14} {'-':>9} {'-':>15} {'-':>16}")
    failed = False
    for name, fn, why in tracers():
        if fn is None:
            print(f"{name:<14} {why}")
            summary[name] = {"available": False, "why": why}
            continue
        if name in errors:
            print(f"{name:<14} failed: {errors[name]}")
            summary[name] = {"available": True, "error": errors[name]}
            failed = True
            continue
        runs = results[name]
        dd_s = statistics.median(r["dd_s"] for r in runs)
        added_ns = (dd_s - base_s) / args.n * 1e9
        counted = min(r["counted"] for r in runs)
        ok = all(r["counted"] == args.n if r["exact"] else r["counted"] >= args.n
                 for r in runs)
        failed |= not ok and name.startswith("coreframe")
        loads = [r["load_ms"] for r in runs if "load_ms" in r]
        load_ms = statistics.median(loads) if loads else None
        summary[name] = {"available": True, "dd_s": dd_s, "reads_per_s": args.n / dd_s,
                         "added_ns_per_read": added_ns, "slowdown": dd_s / base_s,
                         "load_ms": load_ms, "counted_min": counted, "all_counted": ok,
                         "runs": runs}
        load = f"{load_ms:.1f}" if load_ms is not None else "-"
        print(f"{name:<14} {args.n / dd_s:>10.0f} {added_ns:>14.0f} {dd_s / base_s:>8.2f}x "
              f"{load:>15} {counted:>9}/{args.n}{'' if ok else ' MISSING'}")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "readhist_bench.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"details: {OUT / 'readhist_bench.json'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
