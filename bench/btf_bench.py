"""Benchmark: vmlinux BTF index load (cold and warm cache) and the full raw dump.

Run with the venv interpreter directly (the pyenv shim adds ~170 ms per start):
    .venv/bin/python bench/btf_bench.py
Each load timing runs in a fresh interpreter and is measured in-process after
imports; figures are medians of 5 runs. CPU time is printed too: on a shared,
noisy machine it is the steadier figure.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

VMLINUX = "/sys/kernel/btf/vmlinux"
RUNS = 5

CHILD = r"""
import time
from coreframe.btf import Kind, kernel
NAMES = ["task_struct", "sk_buff", "file", "inode", "mm_struct", "cred", "pt_regs",
         "bpf_prog", "net_device", "sock", "path", "dentry", "super_block",
         "vm_area_struct", "page", "trace_event_raw_sys_enter", "linux_binprm", "pid_t",
         "u64", "xdp_md"]
c0 = time.process_time()
t0 = time.perf_counter()
btf = kernel.vmlinux()
t1 = time.perf_counter()
for name in NAMES * 2:
    for tid in btf.find(name):
        t = btf[tid]
        if t.kind in (Kind.STRUCT, Kind.UNION):
            for m in t.members:
                btf.resolve(m.type)
t2 = time.perf_counter()
c2 = time.process_time()
print(f"{(t1 - t0) * 1e3:.3f} {(t2 - t1) * 1e3:.3f} {(c2 - c0) * 1e3:.3f}")
"""


def _child(cache_dir: str) -> tuple[float, float, float]:
    env = dict(os.environ, COREFRAME_CACHE_DIR=cache_dir)
    out = subprocess.run([sys.executable, "-c", CHILD], env=env, check=True,
                         capture_output=True, text=True).stdout.split()
    return float(out[0]), float(out[1]), float(out[2])


def _report(label: str, samples: list[tuple[float, float, float]]) -> None:
    load = statistics.median(s[0] for s in samples)
    look = statistics.median(s[1] for s in samples)
    total = statistics.median(s[0] + s[1] for s in samples)
    cpu = statistics.median(s[2] for s in samples)
    print(f"{label:<5} vmlinux() {load:7.2f} ms  + 40 find()/member walks {look:6.2f} ms"
          f"  = {total:7.2f} ms wall, {cpu:7.2f} ms CPU (median of {len(samples)})")


def main() -> int:
    if not os.path.exists(VMLINUX):
        sys.exit("no /sys/kernel/btf/vmlinux on this machine")
    root = tempfile.mkdtemp(prefix="btf-bench-")
    try:
        cold = []
        for i in range(RUNS):
            cold.append(_child(os.path.join(root, f"cold{i}")))
        warm_dir = os.path.join(root, "warm")
        _child(warm_dir)
        warm = [_child(warm_dir) for _ in range(RUNS)]
    finally:
        shutil.rmtree(root, ignore_errors=True)
    _report("cold", cold)
    _report("warm", warm)

    from coreframe.btf import BTF
    from coreframe.btf.dump import dump_raw

    ours = []
    for _ in range(RUNS):
        t0 = time.perf_counter()
        dump_raw(BTF.from_file(VMLINUX))
        ours.append(time.perf_counter() - t0)
    line = f"dump  coreframe dump_raw(vmlinux) {statistics.median(ours) * 1e3:7.1f} ms"
    if shutil.which("bpftool"):
        theirs = []
        for _ in range(RUNS):
            t0 = time.perf_counter()
            subprocess.run(["bpftool", "btf", "dump", "file", VMLINUX, "format", "raw"],
                           stdout=subprocess.DEVNULL, check=True)
            theirs.append(time.perf_counter() - t0)
        ratio = statistics.median(ours) / statistics.median(theirs)
        line += (f"  vs bpftool {statistics.median(theirs) * 1e3:7.1f} ms"
                 f"  ({ratio:.2f}x, target < 5x)")
        if ratio >= 5:
            print(line + " OVER")
            print(f"btf_bench: FAIL: missed target: dump {ratio:.2f}x bpftool, target < 5x",
                  file=sys.stderr)
            return 1
    else:
        line += "  (target < 5x bpftool UNCHECKED: bpftool, the anchor, is not installed)"
    print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
