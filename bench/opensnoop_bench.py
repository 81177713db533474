"""Open-storm benchmark: per-event CPU of coreframe's opensnoop against libbpf-tools'.

A helper process (its PID is both tracers' -p filter, so nothing else counts)
waits until a tracer is attached, then open()s and close()s a marker file N
times, in batches of BATCH with a short pause between them (a rate both tracers
keep up with: the question is what an event costs, not who drops first), then
opens an end marker. The tracer is stopped with SIGINT once the end marker is in
its output, and reaped with wait4 for its user+system CPU. Each tracer also runs
once per round with N = 0 (start-up, attach, idle, exit); per-event cost is
(CPU - idle CPU) / N. Tracers take turns within each round; medians over
--runs rounds. Captured = marker lines seen, out of N.

Stated target (exit 1 when missed): coreframe's opensnoop captures every event
and costs at most TARGET_US microseconds of CPU per event (text output).
Needs root. Usage: .venv/bin/python bench/opensnoop_bench.py [--n 20000] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COREFRAME = str(Path(sys.executable).with_name("coreframe"))
LIBBPF_OPENSNOOP = "/usr/sbin/opensnoop"
TARGET_US = 25.0
BATCH = 200
SETTLE_S = 1.5     # libbpf-tools' opensnoop prints its header before opening its buffer

STORM = textwrap.dedent("""
    import os, sys, time
    marker, end, n, batch = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    sys.stdin.readline()
    for i in range(n):
        os.close(os.open(marker, os.O_RDONLY))
        if i % batch == batch - 1:
            time.sleep(0.002)
    os.close(os.open(end, os.O_RDONLY))
    print("done", flush=True)
    sys.stdin.readline()
""")


class Lines:
    def __init__(self, stream) -> None:  # noqa: ANN001
        self.lines: list[str] = []
        self.cond = threading.Condition()
        self.thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self.thread.start()

    def _read(self, stream) -> None:  # noqa: ANN001
        for line in stream:
            with self.cond:
                self.lines.append(line)
                self.cond.notify_all()
        with self.cond:
            self.cond.notify_all()

    def wait(self, text: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self.cond:
            while not any(text in line for line in self.lines):
                left = deadline - time.monotonic()
                if left <= 0 or not self.thread.is_alive():
                    return False
                self.cond.wait(min(left, 0.5))
        return True


def run_once(kind: str, n: int, tmp: Path) -> tuple[float, int]:
    """(tracer CPU seconds, markers captured) for one run with N opens."""
    marker, end = tmp / "cf-bench-open", tmp / f"cf-bench-end-{kind}-{n}"
    marker.touch()
    end.touch()
    storm = subprocess.Popen([sys.executable, "-c", STORM, str(marker), str(end), str(n),
                              str(BATCH)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             text=True)
    if kind == "coreframe":
        argv = [COREFRAME, "run", "opensnoop", "-p", str(storm.pid)]
    else:
        argv = ["stdbuf", "-oL", LIBBPF_OPENSNOOP, "-p", str(storm.pid)]
    tracer = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = Lines(tracer.stdout), Lines(tracer.stderr)
    try:
        if kind == "coreframe":
            ok = err.wait("Tracing", 60)
        else:
            ok = out.wait("PATH", 60)
            time.sleep(SETTLE_S)
        if not ok:
            raise SystemExit(f"opensnoop_bench: {kind} never attached: {err.lines[-3:]}")
        assert storm.stdin is not None and storm.stdout is not None
        storm.stdin.write("go\n")
        storm.stdin.flush()
        storm.stdout.readline()
        if not out.wait(str(end), 60):
            print(f"opensnoop_bench: {kind} did not print the end marker", file=sys.stderr)
        tracer.send_signal(signal.SIGINT)
        _pid, _status, usage = os.wait4(tracer.pid, 0)
        tracer.returncode = 0
        out.thread.join(30)
        captured = sum(1 for line in out.lines if line.rstrip().endswith(str(marker)))
        return usage.ru_utime + usage.ru_stime, captured
    finally:
        if tracer.poll() is None and tracer.returncode is None:
            tracer.kill()
            tracer.wait()
        storm.kill()
        storm.wait()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("opensnoop_bench: needs root")
    kinds = ["coreframe"]
    if Path(LIBBPF_OPENSNOOP).exists() and shutil.which("stdbuf"):
        kinds.append("libbpf-tools")
    per_event: dict[str, list[float]] = {k: [] for k in kinds}
    idle: dict[str, list[float]] = {k: [] for k in kinds}
    captured: dict[str, list[int]] = {k: [] for k in kinds}
    with tempfile.TemporaryDirectory(prefix="cf-opensnoop-bench-") as d:
        tmp = Path(d)
        for _ in range(args.runs):
            for kind in kinds:
                cpu_idle, _ = run_once(kind, 0, tmp)
                cpu, got = run_once(kind, args.n, tmp)
                idle[kind].append(cpu_idle)
                per_event[kind].append(max(0.0, cpu - cpu_idle) / args.n * 1e6)
                captured[kind].append(got)
    print(f"opensnoop open storm: N={args.n} opens (batches of {BATCH}), {args.runs} runs, "
          "medians")
    print(f"{'tracer':<14} {'us/event':>9} {'idle CPU s':>10} {'captured':>9}")
    for kind in kinds:
        print(f"{kind:<14} {statistics.median(per_event[kind]):>9.2f} "
              f"{statistics.median(idle[kind]):>10.3f} {min(captured[kind]):>9}")
    ours = statistics.median(per_event["coreframe"])
    missed = []
    if ours > TARGET_US:
        missed.append(f"per-event cost {ours:.2f} us > target {TARGET_US} us")
    if min(captured["coreframe"]) != args.n:
        missed.append(f"captured {min(captured['coreframe'])} of {args.n} events")
    for m in missed:
        print(f"opensnoop_bench: target missed: {m}", file=sys.stderr)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
