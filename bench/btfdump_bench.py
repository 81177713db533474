"""Benchmark: `coreframe btf dump vmlinux --format c` against `bpftool ... format c`.

Run with the venv interpreter directly:
    .venv/bin/python bench/btfdump_bench.py
Both commands run RUNS times writing to /dev/null; wall time and the child's CPU
time (user + sys) are medians. Also printed: the in-process cost of the C dump
alone (BTF already parsed) and how many lines of the two headers differ.

Target (exit 1 when missed): the whole `coreframe btf dump` of the running
kernel's BTF (~130k types) takes at most TARGET_CPU_S seconds of CPU.
"""

from __future__ import annotations

import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

VMLINUX = "/sys/kernel/btf/vmlinux"
RUNS = 5
TARGET_CPU_S = 5.0
COREFRAME = Path(sys.executable).with_name("coreframe")


def _timed(cmd: list[str]) -> tuple[float, float]:
    """(wall seconds, child CPU seconds) of one run with stdout to /dev/null."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    with open(os.devnull, "wb") as null:
        subprocess.run(cmd, stdout=null, check=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def _report(label: str, samples: list[tuple[float, float]]) -> float:
    wall = statistics.median(s[0] for s in samples)
    cpu = statistics.median(s[1] for s in samples)
    print(f"{label:<34} {wall * 1e3:8.1f} ms wall  {cpu * 1e3:8.1f} ms CPU"
          f"  (median of {len(samples)})")
    return cpu


def main() -> None:
    if not os.path.exists(VMLINUX):
        sys.exit("no /sys/kernel/btf/vmlinux on this machine")
    ours_cmd = [str(COREFRAME), "btf", "dump", VMLINUX, "--format", "c"]
    _timed(ours_cmd)  # warm the BTF index cache, as every later run finds it
    ours = [_timed(ours_cmd) for _ in range(RUNS)]
    cpu = _report("coreframe btf dump --format c", ours)

    from coreframe.btf import BTF
    from coreframe.btf.cdump import dump_c_bytes

    btf = BTF.from_file(VMLINUX)
    inproc = []
    for _ in range(RUNS):
        c0, t0 = time.process_time(), time.perf_counter()
        header = dump_c_bytes(btf)
        inproc.append((time.perf_counter() - t0, time.process_time() - c0))
    _report("  of which dump_c (in-process)", inproc)

    bpftool = shutil.which("bpftool")
    if bpftool is not None:
        theirs_cmd = [bpftool, "btf", "dump", "file", VMLINUX, "format", "c"]
        _report("bpftool btf dump format c", [_timed(theirs_cmd) for _ in range(RUNS)])
        theirs = subprocess.run(theirs_cmd, capture_output=True, check=True).stdout
        a, b = header.splitlines(), theirs.splitlines()
        same = sum(x == y for x, y in zip(a, b))
        print(f"lines identical to bpftool's: {same}/{max(len(a), len(b))} "
              f"({100 * same / max(len(a), len(b)):.3f}%)")
    else:
        print("bpftool not installed: no comparison")

    print(f"target: coreframe CPU <= {TARGET_CPU_S:.1f} s: "
          f"{'met' if cpu <= TARGET_CPU_S else 'MISSED'} ({cpu:.2f} s)")
    if cpu > TARGET_CPU_S:
        sys.exit(1)


if __name__ == "__main__":
    main()
