"""Start-up per Python version: the same coreframe under each supported interpreter here.

Root-run tools use the system Python, so how long `coreframe run` takes to start is
worth knowing per interpreter (3.9 on Debian 11 / RHEL 9, 3.13 on the newest). For
each version that tools/pythons.py finds and that has the test matrix's venv
(.nox/tests-X-Y; made here with ``nox --install-only`` when missing, reused after),
median wall time over --runs starts of
  - ``python -c pass``: the interpreter alone (the floor under everything below)
  - ``import coreframe``: the package's import
  - ``coreframe --version``: the console script, the CLI's fast path
  - execsnoop attached: ``coreframe run execsnoop`` from spawn to its header line,
    which it prints once its programs are loaded and attached (needs root); then
    SIGINT. One start first warms the version's cache directory
    ($COREFRAME_CACHE_DIR-pyX.Y, as the matrix uses), so these are warm starts.
Versions are interleaved within each round, so the machine's drifts hit all alike.
Reported, not enforced (no target: it compares interpreters, not coreframe).
Usage: .venv/bin/python bench/pythons_bench.py [--runs 7] [--versions 3.9 3.13]
"""

from __future__ import annotations

import argparse
import json
import os
import select
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
sys.path.insert(0, str(ROOT / "tools"))

import pythons  # noqa: E402


def venv_of(version: str) -> Path:
    return Path(pythons.venv_dir(version))


def timed(argv: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   check=True)
    return time.perf_counter() - t0


def execsnoop_attached(coreframe: Path, env: dict[str, str], timeout: float = 30.0) -> float:
    """Seconds from spawning `coreframe run execsnoop` to its header line (it is attached)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen([str(coreframe), "run", "execsnoop"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None
    try:
        ready, _, _ = select.select([proc.stdout], [], [], timeout)
        line = proc.stdout.readline() if ready else b""
        took = time.perf_counter() - t0
        if not line.startswith(b"PCOMM"):
            err = proc.stderr.read1(4096) if proc.poll() is not None else b""  # type: ignore[union-attr]
            raise RuntimeError(f"no header from execsnoop: {line!r} {err.decode().strip()}")
        return took
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--versions", nargs="+", default=list(pythons.SUPPORTED))
    args = ap.parse_args()
    root = os.geteuid() == 0
    found: dict[str, dict[str, str]] = {}
    skipped: dict[str, str] = {}
    for v in args.versions:
        if v not in pythons.SUPPORTED:
            skipped[v] = f"not a supported version ({', '.join(pythons.SUPPORTED)})"
            continue
        path, info = pythons.find(v)
        py, why = pythons.ensure_venv(v) if path is not None else (None, info)
        if py is None:
            skipped[v] = why
            continue
        found[v] = {"python": info, "venv": str(venv_of(v))}
    measures = ["python -c pass", "import coreframe", "coreframe --version"]
    if root:
        measures.append("execsnoop attached")
    times: dict[str, dict[str, list[float]]] = {v: {m: [] for m in measures} for v in found}
    errors: dict[str, str] = {}
    envs = {v: dict(os.environ, COREFRAME_CACHE_DIR=pythons.cache_dir(v)) for v in found}
    for v in found:  # warm each version's caches and byte-code once
        bin_ = venv_of(v) / "bin"
        try:
            timed([str(bin_ / "python"), "-c", "import coreframe"], envs[v])
            if root:
                execsnoop_attached(bin_ / "coreframe", envs[v])
        except (RuntimeError, subprocess.CalledProcessError, OSError) as exc:
            errors[v] = str(exc)
    for _ in range(args.runs):
        for v in found:
            if v in errors:
                continue
            bin_ = venv_of(v) / "bin"
            py, env = str(bin_ / "python"), envs[v]
            try:
                times[v]["python -c pass"].append(timed([py, "-c", "pass"], env))
                times[v]["import coreframe"].append(timed([py, "-c", "import coreframe"], env))
                times[v]["coreframe --version"].append(
                    timed([str(bin_ / "coreframe"), "--version"], env))
                if root:
                    times[v]["execsnoop attached"].append(
                        execsnoop_attached(bin_ / "coreframe", env))
            except (RuntimeError, subprocess.CalledProcessError, OSError) as exc:
                errors[v] = str(exc)

    print(f"start-up per Python version: median ms of {args.runs} warm starts")
    print(f"{'python':<16}" + "".join(f"{m:>22}" for m in measures))
    summary: dict[str, object] = {"runs": args.runs, "skipped": skipped}
    for v, meta in found.items():
        if v in errors:
            print(f"{meta['python']:<16}failed: {errors[v]}")
            summary[v] = {"error": errors[v], **meta}
            continue
        med = {m: statistics.median(ts) * 1e3 for m, ts in times[v].items()}
        print(f"{meta['python']:<16}" + "".join(f"{med[m]:>22.1f}" for m in measures))
        summary[v] = {**meta, "median_ms": med}
    for v, why in skipped.items():
        print(f"{v:<16}skipped: {why}")
    if not root:
        print("execsnoop attached: skipped (needs root)")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "pythons.json").write_text(json.dumps(summary, indent=2) + "\n")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
