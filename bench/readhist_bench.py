"""readhist benchmark: load time and per-read overhead, libbpf vs coreframe loader.

The same committed readhist.bpf.o (tracepoint programs; fexit/kretprobe get
autoload off, as the tool does on kernels without trampolines/kprobes) is
loaded by libbpf (through ctypes, the C anchor) and by coreframe. A read storm
(`dd if=/dev/zero of=/dev/null bs=1 count=N`: N one-byte read()s) runs with no
tracer, and under each loader. Reported per loader, medians over --runs:
  - load+attach ms (open, load, attach)
  - dd wall time and the in-kernel overhead per read against the untraced run
  - slot 1 count for dd's pid: must be exactly N (every one-byte read counted)
Needs root. Usage: .venv/bin/python bench/readhist_bench.py [--n 200000] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
OBJ = ROOT / "plugins" / "objects" / "readhist.bpf.o"
UNUSED = ("vfs_read_fexit", "vfs_read_kret")
MAX_SLOTS = 64
KEY = struct.Struct("<I16s")
VALUE = struct.Struct(f"<{MAX_SLOTS}QQQQ16s")


def dd(n: int) -> tuple[int, float]:
    """(pid, seconds) of one read storm."""
    t0 = time.monotonic()
    proc = subprocess.Popen(["dd", "if=/dev/zero", "of=/dev/null", "bs=1", f"count={n}"],
                            stderr=subprocess.DEVNULL)
    if proc.wait() != 0:
        raise RuntimeError(f"dd exited with {proc.returncode}")
    return proc.pid, time.monotonic() - t0


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
    return {"load_ms": load_s * 1000, "dd_s": dd_s, "slot1": slot1_for(items, pid)}


def run_coreframe(n: int) -> dict[str, Any]:
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
    return {"load_ms": load_s * 1000, "dd_s": dd_s, "slot1": slot1_for(items, pid)}


def coreframe_available() -> str:
    """Empty when coreframe's loader can load objects, else why not."""
    try:
        import coreframe.object  # noqa: F401
    except ImportError as e:
        return f"not available yet ({e})"
    return ""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200000, help="one-byte reads per storm")
    ap.add_argument("--runs", type=int, default=3, help="runs per configuration (median)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("readhist_bench: skipped (needs root)")
        return 0
    if shutil.which("dd") is None:
        print("readhist_bench: skipped (no dd)")
        return 0

    loaders: list[tuple[str, Callable[[int], dict[str, Any]] | None, str]] = [
        ("libbpf", run_libbpf, ""),
        ("coreframe", run_coreframe if not coreframe_available() else None,
         coreframe_available()),
    ]
    base = [dd(args.n)[1] for _ in range(args.runs)]
    base_s = statistics.median(base)
    summary: dict[str, Any] = {"n": args.n, "runs": args.runs, "untraced_dd_s": base_s}
    print(f"readhist bench: dd of {args.n} one-byte reads, median of {args.runs} runs")
    print(f"{'loader':<10} {'load+attach ms':>15} {'dd s':>8} {'ns/read added':>14} "
          f"{'slot1 counted':>16}")
    print(f"{'(none)':<10} {'-':>15} {base_s:>8.3f} {'-':>14} {'-':>16}")
    failed = False
    for name, fn, why in loaders:
        if fn is None:
            print(f"{name:<10} {why}")
            summary[name] = {"available": False, "why": why}
            continue
        try:
            runs = [fn(args.n) for _ in range(args.runs)]
        except Exception as e:  # report and go on to the next loader
            print(f"{name:<10} failed: {type(e).__name__}: {e}")
            summary[name] = {"available": True, "error": f"{type(e).__name__}: {e}"}
            failed = True
            continue
        load_ms = statistics.median(r["load_ms"] for r in runs)
        dd_s = statistics.median(r["dd_s"] for r in runs)
        slot1 = min(r["slot1"] for r in runs)
        added_ns = (dd_s - base_s) / args.n * 1e9
        ok = all(r["slot1"] == args.n for r in runs)
        failed |= not ok
        summary[name] = {"available": True, "load_ms": load_ms, "dd_s": dd_s,
                         "added_ns_per_read": added_ns, "slot1_min": slot1,
                         "all_reads_counted": ok, "runs": runs}
        print(f"{name:<10} {load_ms:>15.1f} {dd_s:>8.3f} {added_ns:>14.0f} "
              f"{slot1:>9}/{args.n}{'' if ok else ' MISSING'}")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "readhist_bench.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"details: {OUT / 'readhist_bench.json'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
