"""Exec-storm benchmark: libbpf-tools' execsnoop (the C anchor) against coreframe's.

For each tracer and run: start it, wait for the line it prints once its
programs are attached, exec() marker commands until one shows up in its output,
run bench/storm (N exec()s as fast as possible), wait for an end marker, stop it
with SIGINT, then report
  - attached: from spawning the tracer to its "attached" line (libbpf-tools prints
    its header right after attach; coreframe its header, or with --json its
    "Tracing" line on stderr, once attached and reading)
  - 1st event: from spawning the tracer to the exec() of the first marker it
    printed (markers are exec()ed every few ms from the start): an independent,
    output-based estimate of the same moment, good to a few ms
  - captured: storm pids that appear in its output, out of N, and whether the
    tracer reported lost events ("Lost" on stderr) or exited non-zero on SIGINT
  - CPU: user+system seconds of the tracer process (wait4 rusage)
Each tracer also runs once per run without the storm (attach, markers, stop): its
CPU is the start-up + idle cost, and (CPU - idle CPU) / N the per-event cost.
Medians over --runs runs (start-to-attached: over the storm and the idle starts),
the tracers taking turns within each run, each start after --settle seconds of
quiet; the machine is noisy, so compare within one bench invocation only.
coreframe wakes about once per 20 ms under a storm (see plugins/execsnoop.py,
LINGER_S), not once per event.
Needs root. Usage: .venv/bin/python bench/execsnoop_bench.py [--n 2000] [--runs 5]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
LIBBPF_EXECSNOOP = "/usr/sbin/execsnoop"
MARKER = "cf-bench-marker"


@dataclass
class RunResult:
    tracer: str
    attached_s: float | None
    first_event_s: float | None
    captured: int
    lost: bool
    exit_code: int
    n: int
    cpu_s: float
    storm_s: float


def build_storm() -> Path:
    """Compile bench/storm.c into bench/out (a cache; rebuilt when the source changes)."""
    OUT.mkdir(parents=True, exist_ok=True)
    src = ROOT / "bench" / "storm.c"
    exe = OUT / "storm"
    if not exe.exists() or exe.stat().st_mtime < src.stat().st_mtime:
        cc = shutil.which("cc") or shutil.which("gcc")
        if cc is None:
            sys.exit("execsnoop_bench: no C compiler for bench/storm.c")
        subprocess.run([cc, "-O2", "-o", str(exe), str(src)], check=True)
    return exe


class Tracer:
    """The tracer process, reaped by us (wait4) so its CPU usage is never lost."""

    def __init__(self, argv: list[str]) -> None:
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, errors="replace")
        # both streams are read on threads: an unread pipe could block a chatty tracer
        self.out = OutputCollector(self.proc.stdout)
        self.err = OutputCollector(self.proc.stderr)
        self.status: int | None = None
        self.usage: object | None = None

    def alive(self) -> bool:
        if self.status is None:
            pid, status, usage = os.wait4(self.proc.pid, os.WNOHANG)
            if pid == self.proc.pid:
                self.status, self.usage = status, usage
        return self.status is None

    def stop(self) -> None:
        if self.alive():
            self.proc.send_signal(signal.SIGINT)
            _pid, self.status, self.usage = os.wait4(self.proc.pid, 0)
        self.proc.returncode = os.waitstatus_to_exitcode(self.status)

    def cpu_s(self) -> float:
        return self.usage.ru_utime + self.usage.ru_stime  # type: ignore[attr-defined]

    def stderr_tail(self) -> str:
        lines = [line.strip() for line in self.err.lines if line.strip()]
        return lines[-1] if lines else ""

    def join(self, timeout: float) -> None:
        self.out.thread.join(timeout)
        self.err.thread.join(timeout)


class OutputCollector:
    """Reads one of the tracer's streams on a thread, keeping every line."""

    def __init__(self, stream: IO[str] | None) -> None:
        self.lines: list[str] = []
        self.times: list[float] = []
        self.cond = threading.Condition()
        self.thread = threading.Thread(target=self._run, args=(stream,), daemon=True)
        self.thread.start()

    def _run(self, stream: IO[str] | None) -> None:
        assert stream is not None
        for line in stream:
            with self.cond:
                self.lines.append(line)
                self.times.append(time.monotonic())
                self.cond.notify_all()
        with self.cond:
            self.cond.notify_all()

    def seen_at(self, text: str) -> float | None:
        """time.monotonic() when the first line containing ``text`` was read."""
        with self.cond:
            for line, t in zip(self.lines, self.times):
                if text in line:
                    return t
        return None

    def contains(self, text: str) -> bool:
        with self.cond:
            return any(text in line for line in self.lines)

    def wait_for(self, text: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self.cond:
            while not any(text in line for line in self.lines):
                left = deadline - time.monotonic()
                if left <= 0 or not self.thread.is_alive():
                    return False
                self.cond.wait(left)
        return True


def wait_first_event(tracer: Tracer, out: OutputCollector, t0: float,
                     timeout: float) -> float | None:
    """Exec markers until the tracer prints one; the first one printed dates delivery."""
    sent: list[tuple[str, float]] = []
    deadline = t0 + timeout
    k = 0
    while time.monotonic() < deadline and tracer.alive():
        tag = f"{MARKER}-{os.getpid()}-{k}."  # the dot: marker 1 must not match marker 10
        sent.append((tag, time.monotonic()))
        subprocess.run(["/bin/true", tag])
        k += 1
        for tag_seen, t in sent:
            if out.contains(tag_seen):
                return t - t0
        time.sleep(0.002)
    return None


def storm_pids(storm_json: Path) -> set[int]:
    return {c["pid"] for c in json.loads(storm_json.read_text())["children"]}


def pids_in_output(lines: list[str], json_lines: bool) -> set[int]:
    pids: set[int] = set()
    for line in lines:
        if json_lines:
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if isinstance(rec, dict) and isinstance(rec.get("pid"), int):
                pids.add(rec["pid"])
            continue
        fields = line.split()
        if len(fields) >= 2 and fields[1].isdigit():
            pids.add(int(fields[1]))
    return pids


def run_once(name: str, argv: list[str], json_lines: bool, storm: Path, n: int, jobs: int,
             timeout: float) -> RunResult:
    with tempfile.TemporaryDirectory(prefix="cf-execsnoop-bench-") as tmp:
        storm_json = Path(tmp) / "storm.json"
        t0 = time.monotonic()
        tracer = Tracer(argv)
        out = tracer.out
        # what the tracer prints once attached: see the module docstring
        ready, ready_text = (tracer.err, "Tracing") if json_lines else (tracer.out, "PCOMM")
        try:
            first = wait_first_event(tracer, out, t0, timeout)
            if first is None:
                tracer.stop()
                raise RuntimeError(f"never attached (exit code {tracer.proc.returncode}: "
                                   f"{tracer.stderr_tail()})")
            attached = ready.seen_at(ready_text)
            s0 = time.monotonic()
            if n:
                subprocess.run([str(storm), "-n", str(n), "-j", str(jobs), "-o",
                                str(storm_json)], check=True, stderr=subprocess.DEVNULL)
            storm_s = time.monotonic() - s0
            end_tag = f"{MARKER}-{os.getpid()}-end."
            subprocess.run(["/bin/true", end_tag])
            out.wait_for(end_tag, timeout)
        finally:
            tracer.stop()
            tracer.join(timeout)
        captured = (len(storm_pids(storm_json) & pids_in_output(out.lines, json_lines))
                    if n else 0)
        lost = any("Lost" in line for line in tracer.err.lines)
        return RunResult(name, None if attached is None else attached - t0, first, captured,
                         lost, tracer.proc.returncode, n, tracer.cpu_s(), storm_s)


def tracers() -> list[tuple[str, list[str] | None, bool, str]]:
    """(name, argv or None, output is JSON lines, why unavailable)."""
    found: list[tuple[str, list[str] | None, bool, str]] = []
    stdbuf = shutil.which("stdbuf")
    if Path(LIBBPF_EXECSNOOP).exists() and stdbuf:
        # stdout is a pipe: force line buffering so markers show up as they happen
        found.append(("libbpf-tools", [stdbuf, "-oL", LIBBPF_EXECSNOOP, "-x"], False, ""))
    else:
        found.append(("libbpf-tools", None, False, f"{LIBBPF_EXECSNOOP} or stdbuf missing"))
    coreframe = Path(sys.executable).with_name("coreframe")
    if importlib.util.find_spec("coreframe_plugins.execsnoop") is not None and coreframe.exists():
        # text output is what libbpf-tools prints (like for like); --json costs more
        found.append(("coreframe", [str(coreframe), "run", "execsnoop", "-x"], False, ""))
        found.append(("coreframe-json", [str(coreframe), "run", "execsnoop", "--json", "-x"],
                      True, ""))
    else:
        found.append(("coreframe", None, True, "not available yet (no execsnoop plugin)"))
    return found


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000, help="exec()s per storm")
    ap.add_argument("--jobs", type=int, default=2, help="storm children in flight")
    ap.add_argument("--runs", type=int, default=5,
                    help="runs per tracer (each one storm start and one idle start; medians)")
    ap.add_argument("--timeout", type=float, default=20.0, help="seconds to wait for a tracer")
    ap.add_argument("--settle", type=float, default=0.0,
                    help="seconds of quiet before each tracer start (see below)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("execsnoop_bench: skipped (needs root)")
        return 0

    storm = build_storm()
    summary: dict[str, object] = {"n": args.n, "jobs": args.jobs, "runs": args.runs}
    print(f"execsnoop bench: storm of {args.n} exec()s, {args.jobs} jobs, "
          f"median of {args.runs} runs")
    print(f"{'tracer':<14} {'attached ms':>12} {'1st event ms':>13} {'captured':>14} "
          f"{'tracer CPU s':>13} {'storm s':>8} {'idle CPU s':>11} {'us/event':>9}")
    failed = False
    found = tracers()
    available = [(name, argv, json_lines) for name, argv, json_lines, _ in found
                 if argv is not None]
    results: dict[str, list[RunResult]] = {name: [] for name, _, _ in available}
    idle: dict[str, list[RunResult]] = {name: [] for name, _, _ in available}
    errors: dict[str, str] = {}
    # Tracers take turns within each run, so slow drifts of the machine (and the kernel's
    # deferred clean-up after the previous tracer) spread over all of them alike.
    for _ in range(args.runs):
        for name, argv, json_lines in available:
            if name in errors:
                continue
            try:
                # The kernel finishes tearing the previous tracer down (programs, maps,
                # tracepoint probes) after that process has exited; starting the next
                # one at once made whichever came second pay for it (tens of ms, erratic).
                time.sleep(args.settle)
                results[name].append(run_once(name, argv, json_lines, storm, args.n,
                                              args.jobs, args.timeout))
                time.sleep(args.settle)
                idle[name].append(run_once(name, argv, json_lines, storm, 0, args.jobs,
                                           args.timeout))
            except (RuntimeError, subprocess.CalledProcessError, OSError) as e:
                errors[name] = str(e)
    for name, argv, _json_lines, why in found:
        if argv is None:
            print(f"{name:<14} {why}")
            summary[name] = {"available": False, "why": why}
            continue
        if name in errors:
            print(f"{name:<14} failed: {errors[name]}")
            summary[name] = {"available": True, "error": errors[name]}
            failed = True
            continue
        runs, idle_runs = results[name], idle[name]
        # every start counts for start-to-attached: the storm only begins once attached
        att = [r.attached_s for r in runs + idle_runs if r.attached_s is not None]
        first = [r.first_event_s for r in runs if r.first_event_s is not None]
        med = {
            "attached_ms": statistics.median(att) * 1000 if att else None,
            "attached_min_ms": min(att) * 1000 if att else None,
            "first_event_ms": statistics.median(first) * 1000 if first else None,
            "captured": statistics.median(r.captured for r in runs),
            "cpu_s": statistics.median(r.cpu_s for r in runs),
            "storm_s": statistics.median(r.storm_s for r in runs),
            "idle_cpu_s": statistics.median(r.cpu_s for r in idle_runs),
        }
        med["us_per_event"] = (med["cpu_s"] - med["idle_cpu_s"]) / args.n * 1e6
        summary[name] = {"available": True, "median": med, "runs": [asdict(r) for r in runs],
                         "idle_runs": [asdict(r) for r in idle_runs]}
        attached = f"{med['attached_ms']:.1f}" if med["attached_ms"] is not None else "-"
        first_ms = f"{med['first_event_ms']:.1f}" if med["first_event_ms"] is not None else "-"
        notes = []
        if any(r.captured < r.n for r in runs):
            notes.append(f"MISSED (min {min(r.captured for r in runs)})")
        if any(r.lost for r in runs):
            notes.append("LOST reported")
        if any(r.exit_code != 0 for r in runs + idle_runs):
            notes.append("non-zero exit on SIGINT")
        # coreframe must see every exec() of the storm; the C anchor is only reported
        failed |= bool(notes) and name.startswith("coreframe")
        print(f"{name:<14} {attached:>12} {first_ms:>13} {med['captured']:>8.0f}/{args.n:<5} "
              f"{med['cpu_s']:>13.3f} {med['storm_s']:>8.3f} {med['idle_cpu_s']:>11.3f} "
              f"{med['us_per_event']:>9.1f} {' '.join(notes)}".rstrip())
    missed = check_targets(summary)
    failed |= bool(missed)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "execsnoop_bench.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"details: {OUT / 'execsnoop_bench.json'}")
    if missed:
        print(f"execsnoop_bench: FAIL: missed target(s): {'; '.join(missed)}", file=sys.stderr)
    return 1 if failed else 0


def _ratio(ours: float | None, anchor: float | None) -> float | None:
    """ours / anchor, or None when either is missing or not positive (a ratio to a zero
    or negative anchor, e.g. an idle start that cost more CPU than the storm, means nothing)."""
    if ours is None or anchor is None or ours <= 0 or anchor <= 0:
        return None
    return ours / anchor


def check_targets(summary: dict[str, object]) -> list[str]:
    """Print one TARGET line per coreframe variant; return the targets missed.

    A target that cannot be checked (no anchor, no measurement, a non-positive CPU
    figure) is printed as UNCHECKED with the reason, never dropped silently.
    """
    missed: list[str] = []
    anchor = summary.get("libbpf-tools")
    amed = anchor.get("median") if isinstance(anchor, dict) else None
    for name in ("coreframe", "coreframe-json"):
        ours = summary.get(name)
        if not isinstance(ours, dict) or not ours.get("available", False):
            continue
        if amed is None:
            why = anchor.get("why") or anchor.get("error") if isinstance(anchor, dict) else None
            print(f"TARGET {name}: UNCHECKED: the anchor libbpf-tools execsnoop was not "
                  f"measured ({why or 'missing'}); install libbpf-tools to check the targets")
            continue
        omed = ours.get("median")
        if omed is None:
            print(f"TARGET {name}: UNCHECKED: coreframe was not measured "
                  f"({ours.get('error', 'no runs')})")
            continue
        ratio = _ratio(omed["attached_ms"], amed["attached_ms"])
        best = _ratio(omed["attached_min_ms"], amed["attached_min_ms"])
        if ratio is None:
            start = "start-to-attached UNCHECKED (no attach time measured)"
        else:
            ok = ratio <= 1.5
            start = (f"start-to-attached {ratio:.2f}x libbpf-tools (medians; target <= 1.5x: "
                     f"{'PASS' if ok else 'FAIL'}; fastest starts "
                     f"{'-' if best is None else f'{best:.2f}x'})")
            if not ok:
                missed.append(f"{name} start-to-attached {ratio:.2f}x > 1.5x")
        theirs_cpu, ours_cpu = amed["us_per_event"], omed["us_per_event"]
        cpu_ratio = _ratio(ours_cpu, theirs_cpu)
        if cpu_ratio is None:
            cpu = (f"CPU per event UNCHECKED (ours {ours_cpu:.1f} us, libbpf-tools "
                   f"{theirs_cpu:.1f} us: not both positive, the idle start cost as much "
                   "as the storm; rerun with a larger --n)")
        else:
            ok = cpu_ratio <= 2
            cpu = f"CPU per event {cpu_ratio:.2f}x (target <= 2x: {'PASS' if ok else 'FAIL'})"
            if not ok:
                missed.append(f"{name} CPU per event {cpu_ratio:.2f}x > 2x")
        print(f"TARGET {name}: {start}, {cpu}")
    return missed


if __name__ == "__main__":
    sys.exit(main())
