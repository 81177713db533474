"""Agent cost: `coreframe serve` running execsnoop + readhist, against the two tools run as
separate processes (`coreframe run execsnoop --json --prometheus ...` and
`coreframe run readhist --prometheus ...`), both exporting metrics the same way.

For each setup and run: start it, wait until both tools print "Tracing", let it
settle, then measure
  - idle: CPU seconds (utime + stime from /proc/PID/stat, summed over the setup's
    processes) over --idle seconds with nothing but the machine's own background,
    and RSS (VmRSS, summed) at the end;
  - storm: bench/storm runs --n exec()s as fast as it can; the window lasts until every
    storm exec is in the events output (or 15 s), and CPU is measured over it; peak RSS
    is VmHWM (summed) after it; RSS growth is peak minus the idle RSS;
/metrics is scraped once per phase. Medians over --runs runs, setups taking turns.

Targets (exit 1 when one is missed):
  - serve idle CPU at most 2% of one CPU;
  - serve storm CPU at most 1.25x the separate processes' sum, plus two clock ticks
    per process measured (/proc/PID/stat counts in ticks: one process must not cost
    more than two doing the same work);
  - serve RSS at most the separate processes' sum (idle and peak);
  - serve RSS growth during the storm at most 48 MiB (memory stays bounded).
Needs root. Usage: .venv/bin/python bench/serve_bench.py [--n 2000] [--runs 3] [--idle 10]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COREFRAME = str(Path(sys.executable).with_name("coreframe"))
TICK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime


def mem_kib(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


class Setup:
    """One way of running both tools: a list of processes, their events file, metric ports."""

    def __init__(self, name: str, tmp: Path) -> None:
        self.name = name
        self.tmp = tmp
        self.events = tmp / f"{name}-events.jsonl"
        self.procs: list[subprocess.Popen] = []
        self.errs: list[Path] = []
        self.ports: list[int] = []

    def _spawn(self, argv: list[str], out: Path) -> None:
        err = self.tmp / f"{self.name}-{len(self.procs)}.err"
        self.errs.append(err)
        with open(out, "w") as o, open(err, "w") as e:
            self.procs.append(subprocess.Popen(argv, stdout=o, stderr=e))

    def start(self) -> None:
        self.events.write_text("")
        if self.name == "serve":
            port = free_port()
            self.ports = [port]
            cfg = self.tmp / "agent.toml"
            cfg.write_text(f'[serve]\nlisten = "127.0.0.1:{port}"\nevents = "{self.events}"\n\n'
                           "[tools.execsnoop]\n\n[tools.readhist]\nper_comm = true\n")
            self._spawn([COREFRAME, "serve", str(cfg)], self.tmp / "serve.out")
            want = 2
        else:
            a, b = free_port(), free_port()
            self.ports = [a, b]
            self._spawn([COREFRAME, "run", "execsnoop", "--json", "--prometheus",
                         f"127.0.0.1:{a}"], self.events)
            self._spawn([COREFRAME, "run", "readhist", "--per-comm", "--json", "--prometheus",
                         f"127.0.0.1:{b}"], self.tmp / "readhist.out")
            want = 2
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            text = "".join(e.read_text() for e in self.errs)
            if text.count("Tracing") >= want:
                return
            time.sleep(0.1)
        raise SystemExit(f"{self.name}: tools never said Tracing: {text}")

    def cpu(self) -> float:
        return sum(cpu_s(p.pid) for p in self.procs)

    def rss(self, key: str = "VmRSS") -> int:
        return sum(mem_kib(p.pid, key) for p in self.procs)

    def scrape(self) -> None:
        for port in self.ports:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
                r.read()

    def storm_seen(self, pids: set[int]) -> int:
        seen = 0
        with open(self.events) as f:
            for line in f:
                if '"event":"exec"' in line:
                    try:
                        if json.loads(line)["pid"] in pids:
                            seen += 1
                    except ValueError:
                        pass
        return seen

    def stop(self) -> None:
        for p in self.procs:
            p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(60)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def build_storm(tmp: Path) -> Path:
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        raise SystemExit("needs a C compiler for bench/storm.c")
    out = tmp / "storm"
    subprocess.run([cc, "-O2", "-o", str(out), str(ROOT / "bench" / "storm.c")], check=True)
    return out


def one(setup: Setup, storm: Path, n: int, idle: float, settle: float) -> dict[str, float]:
    setup.start()
    try:
        time.sleep(settle)
        c0 = setup.cpu()
        time.sleep(idle)
        setup.scrape()
        idle_cpu = setup.cpu() - c0
        idle_rss = setup.rss()
        c1 = setup.cpu()
        t0 = time.monotonic()
        report = setup.tmp / "storm.json"
        subprocess.run([str(storm), "-n", str(n), "-o", str(report)], check=True,
                       stdout=subprocess.DEVNULL)
        kids = json.loads(report.read_text())["children"]
        pids = {c["pid"] for c in kids if c["exec_errno"] == 0}
        deadline = time.monotonic() + 15
        seen = setup.storm_seen(pids)
        while seen < len(pids) and time.monotonic() < deadline:
            time.sleep(0.2)
            seen = setup.storm_seen(pids)
        setup.scrape()
        storm_cpu = setup.cpu() - c1
        window = time.monotonic() - t0
        peak = setup.rss("VmHWM")
        return {"idle_cpu_pct": 100 * idle_cpu / idle, "idle_rss_mib": idle_rss / 1024,
                "storm_cpu_s": storm_cpu, "storm_window_s": window,
                "peak_rss_mib": peak / 1024, "growth_mib": (peak - idle_rss) / 1024,
                "captured": seen, "execs": len(pids)}
    finally:
        setup.stop()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--idle", type=float, default=10.0)
    ap.add_argument("--settle", type=float, default=2.0)
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("serve_bench: needs root", file=sys.stderr)
        return 2
    os.environ.setdefault("COREFRAME_CACHE_DIR", str(ROOT / ".cfcache"))
    results: dict[str, list[dict[str, float]]] = {"serve": [], "separate": []}
    with tempfile.TemporaryDirectory(prefix="serve-bench-") as d:
        tmp = Path(d)
        storm = build_storm(tmp)
        for run in range(args.runs):
            for name in ("serve", "separate"):
                r = one(Setup(name, tmp), storm, args.n, args.idle, args.settle)
                results[name].append(r)
                print(f"run {run + 1} {name:<9} " + " ".join(
                    f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}"
                    for k, v in r.items()), flush=True)
    med = {name: {k: statistics.median(r[k] for r in rs) for k in rs[0]}
           for name, rs in results.items()}
    s, p = med["serve"], med["separate"]
    print(f"\nmedians over {args.runs} runs, storm of {args.n} exec()s "
          "(execsnoop + readhist, metrics on):")
    print(f"{'':<10} {'idle CPU %':>10} {'idle RSS MiB':>13} {'storm CPU s':>12} "
          f"{'peak RSS MiB':>13} {'growth MiB':>11} {'captured':>9}")
    for name, m in med.items():
        print(f"{name:<10} {m['idle_cpu_pct']:>10.2f} {m['idle_rss_mib']:>13.1f} "
              f"{m['storm_cpu_s']:>12.3f} {m['peak_rss_mib']:>13.1f} {m['growth_mib']:>11.1f} "
              f"{int(m['captured']):>5}/{int(m['execs'])}")
    targets = [
        ("serve idle CPU <= 2% of one CPU", s["idle_cpu_pct"] <= 2.0),
        ("serve storm CPU <= 1.25x separate (+2 ticks/process)",
         s["storm_cpu_s"] <= 1.25 * p["storm_cpu_s"] + 2 * 3 / TICK),
        ("serve idle RSS <= separate", s["idle_rss_mib"] <= p["idle_rss_mib"]),
        ("serve peak RSS <= separate", s["peak_rss_mib"] <= p["peak_rss_mib"]),
        ("serve RSS growth in the storm <= 48 MiB", s["growth_mib"] <= 48),
    ]
    missed = [t for t, ok in targets if not ok]
    for t, ok in targets:
        print(f"  {'ok    ' if ok else 'MISSED'} {t}")
    out = ROOT / "bench" / "out"
    out.mkdir(exist_ok=True)
    (out / "serve_bench.json").write_text(json.dumps({"runs": results, "medians": med,
                                                      "missed": missed}, indent=2))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
