"""pycalls benchmark: what tracing every Python call costs the traced program.

The traced program is Debian's /usr/bin/python3.11 running a timed loop of N
calls to a one-line Python function (``def f(): return 1``), reporting ns per
loop iteration; one process per configuration, each timed for --runs rounds,
configurations interleaved so machine noise hits all alike; medians reported.

Configurations:
  - base:      nothing attached
  - line-sema: only CPython's `line` semaphore set (the do-nothing uprobe pycalls
               uses): CPython 3.11's tracing dispatch, which it needs to report
               calls from Python code at function__entry, with no probe firing
  - pycalls:   `coreframe run pycalls -p PID` (entry and return probes, per-function
               counts and log2 latency, the line semaphore)
  - bpftrace:  the same work in bpftrace (entry: time per thread and depth; return:
               count and hist() keyed by file and function strings), with the line
               semaphore set the same way, since bpftrace cannot set it without
               trapping every line
Reported: ns per call for each, and ns added per call by pycalls and by bpftrace
against base. Target: pycalls adds at most TARGET_RATIO times what bpftrace adds;
exit status 1 when missed (or a tracer failed), 0 otherwise.
Needs root. Usage: .venv/bin/python bench/pycalls_bench.py [--n 200000] [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PY = "/usr/bin/python3.11"
COREFRAME = str(Path(sys.executable).with_name("coreframe"))
TARGET_RATIO = 1.5
WORKLOAD = """
import sys, time
def f():
    return 1
print("ready", flush=True)
for line in sys.stdin:
    n = int(line)
    t0 = time.perf_counter_ns()
    for _ in range(n):
        f()
    print((time.perf_counter_ns() - t0) / n, flush=True)
"""


class Target:
    """A python3.11 process timing N calls per request."""

    def __init__(self) -> None:
        self.p = subprocess.Popen([PY, "-c", WORKLOAD], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True)
        assert self.p.stdout is not None and self.p.stdout.readline().strip() == "ready"

    def time(self, n: int) -> float:
        assert self.p.stdin is not None and self.p.stdout is not None
        self.p.stdin.write(f"{n}\n")
        self.p.stdin.flush()
        return float(self.p.stdout.readline())

    def close(self) -> None:
        if self.p.stdin is not None:
            self.p.stdin.close()
        self.p.wait(timeout=30)


def line_semaphore(pid: int) -> Any:
    """The do-nothing uprobe carrying the `line` semaphore (pycalls' own program)."""
    from coreframe_plugins.pycalls import resolve_target

    import coreframe
    from coreframe.links import attach_uprobe

    t = resolve_target(pid, PY)
    spec = coreframe.open(str(ROOT / "plugins" / "objects" / "pycalls.bpf.o"))
    for name in spec.programs:
        spec.programs[name].autoload = name == "py_tracing_on"
    obj = spec.load()
    obj.links.append(attach_uprobe(obj.programs.py_tracing_on, t.path, None, t.entry_off,
                                   pid=pid, ref_ctr_offset=t.line_sema_off))
    return obj


def wait_for(stream: Any, text: str, what: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = stream.readline()
        if not line:
            raise RuntimeError(f"{what} exited before attaching")
        if text in line:
            return
    raise RuntimeError(f"{what} did not attach")


class Pycalls:
    def __init__(self, pid: int) -> None:
        self.p = subprocess.Popen([COREFRAME, "run", "pycalls", "-p", str(pid), "--json"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_for(self.p.stderr, "Tracing", "pycalls")

    def close(self) -> int:
        self.p.send_signal(signal.SIGINT)
        out, _ = self.p.communicate(timeout=60)
        import json

        rows = [json.loads(ln) for ln in out.splitlines() if ln.strip()]
        return sum(r["count"] for r in rows if r.get("function") == "f")


class Bpftrace:
    def __init__(self, pid: int) -> None:
        u = f"usdt:{PY}:python"
        script = (
            'BEGIN { printf("cf-attached\\n"); } '
            f"{u}:function__entry /pid == {pid}/ {{ @d[tid]++; @ts[tid, @d[tid]] = nsecs; }} "
            f"{u}:function__return /pid == {pid}/ {{ $d = @d[tid]; if ($d > 0) {{ "
            "@d[tid] = $d - 1; $s = @ts[tid, $d]; delete(@ts[tid, $d]); if ($s) { "
            "@n[str(arg0), str(arg1)] = count(); @h[str(arg0), str(arg1)] = hist(nsecs - $s);"
            " } } }")
        self.p = subprocess.Popen([shutil.which("bpftrace") or "bpftrace", "-f", "json", "-e",
                                   script], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                  text=True)
        wait_for(self.p.stdout, "cf-attached", "bpftrace")

    def close(self) -> int:
        # bpftrace 0.17 now and then sleeps through a SIGINT that arrives while it waits
        # in epoll; a later one ends it
        for _ in range(30):
            self.p.send_signal(signal.SIGINT)
            try:
                out, _ = self.p.communicate(timeout=10)
                break
            except subprocess.TimeoutExpired:
                continue
        else:
            raise RuntimeError("bpftrace did not exit")
        import json

        for line in out.splitlines():
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            if msg.get("type") == "map" and "@n" in msg["data"]:
                return sum(v for k, v in msg["data"]["@n"].items() if k.endswith(",f"))
        return 0


def measure(config: str, n: int) -> tuple[float, int | None]:
    """(ns per call, calls the tracer counted) of one run of one configuration."""
    t = Target()
    tracer: Any = None
    sema: Any = None
    counted: int | None = None
    try:
        if config in ("line-sema", "bpftrace"):
            sema = line_semaphore(t.p.pid)
        if config == "pycalls":
            tracer = Pycalls(t.p.pid)
        elif config == "bpftrace":
            tracer = Bpftrace(t.p.pid)
        ns = t.time(n)
        if tracer is not None:
            counted = tracer.close()
            tracer = None
        return ns, counted
    finally:
        if tracer is not None:
            tracer.p.kill()
        if sema is not None:
            sema.close()
        t.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=200_000, help="calls per run")
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("pycalls_bench: needs root", file=sys.stderr)
        return 1
    if not os.path.exists(PY):
        print(f"pycalls_bench: needs {PY}", file=sys.stderr)
        return 1
    configs = ["base", "line-sema", "pycalls"] + (["bpftrace"] if shutil.which("bpftrace")
                                                  else [])
    times: dict[str, list[float]] = {c: [] for c in configs}
    ok = True
    for _ in range(args.runs):
        for c in configs:
            ns, counted = measure(c, args.n)
            times[c].append(ns)
            if counted is not None and counted != args.n:
                print(f"{c}: counted {counted} calls of f, expected {args.n}")
                ok = False
    med = {c: statistics.median(v) for c, v in times.items()}
    print(f"python3.11 calls of a one-line function, N={args.n}, {args.runs} runs, medians")
    for c in configs:
        extra = f"  (+{med[c] - med['base']:.0f} ns/call)" if c != "base" else ""
        print(f"  {c:<10} {med[c]:8.1f} ns/call{extra}")
    if "bpftrace" not in med:
        print("bpftrace not installed: no comparison")
        return 0 if ok else 1
    ours = med["pycalls"] - med["base"]
    theirs = med["bpftrace"] - med["base"]
    ratio = ours / theirs if theirs > 0 else float("inf")
    met = ratio <= TARGET_RATIO
    print(f"added per call: pycalls {ours:.0f} ns, bpftrace {theirs:.0f} ns, ratio {ratio:.2f} "
          f"(target <= {TARGET_RATIO}): {'met' if met else 'MISSED'}")
    return 0 if ok and met else 1


if __name__ == "__main__":
    sys.exit(main())
