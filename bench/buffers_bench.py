"""Ring buffer and perf buffer consumption rate: coreframe's Python readers vs libbpf in C.

A tracepoint program (tests/objects/ev_bench.bpf.c) on sys_enter_getppid emits
PER_HIT 32-byte events for each getppid() of a driver process spinning on the
syscall; failed reserves/outputs are counted in the program's ``stats`` map. The
same object feeds a libbpf C consumer (bench/c/) and coreframe's RingBuffer /
PerfBuffer in this process, loaded by coreframe's own loader.

Two measurements, C and Python alternated in each run (this VM is noisy; medians):
- drain: the driver fills the buffer while nobody reads, then draining the backlog
  is timed in thread CPU time: the reader's own capacity, robust to other load.
- live: the reader consumes while the driver produces; records/s from "go" to the
  last record, plus the producer-side drops (failed reserves) and perf lost counts.

Run as root with the venv interpreter:
    .venv/bin/python bench/buffers_bench.py [--per-hit 1 4] [--hits 200000] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
DRIVER = (
    "import os, sys\n"
    "sys.stdin.readline()\n"
    "g = os.getppid\n"
    "for _ in range({hits}): g()\n"
)


@dataclass
class Result:
    consumed: int
    seconds: float
    produced: int
    drops: int
    lost: int = 0

    @property
    def rate(self) -> float:
        return self.consumed / self.seconds if self.seconds > 0 else 0.0


def build(out: str) -> str:
    subprocess.run([os.path.join(HERE, "build_consumers.sh"), out], check=True,
                   stdout=subprocess.DEVNULL)
    return out


def spawn_driver(hits: int) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", DRIVER.format(hits=hits)],
                            stdin=subprocess.PIPE, text=True)


def _c_cmd(build_dir: str, kind: str, mode: str, pid: int, per_hit: int, page_cnt: int,
           watermark: int) -> list[str]:
    obj = os.path.join(build_dir, "ev_bench.bpf.o")
    if kind == "ringbuf":
        return [os.path.join(build_dir, "ringbuf_consumer"), obj, str(pid), str(per_hit), mode]
    return [os.path.join(build_dir, "perfbuf_consumer"), obj, str(pid), str(per_hit), mode,
            str(page_cnt), str(watermark)]


def run_c(build_dir: str, kind: str, mode: str, per_hit: int, hits: int, page_cnt: int,
          watermark: int) -> Result:
    driver = spawn_driver(hits)
    cmd = _c_cmd(build_dir, kind, mode, driver.pid, per_hit, page_cnt, watermark)
    cons = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert cons.stdout is not None and cons.stdin is not None and driver.stdin is not None
        if cons.stdout.readline().strip() != "ready":
            raise RuntimeError(f"{cmd[0]} failed to start")
        cons.stdin.write("go\n")
        cons.stdin.flush()
        driver.stdin.write("go\n")
        driver.stdin.flush()
        driver.wait()
        cons.stdin.write("stop\n")
        cons.stdin.flush()
        out = json.loads(cons.stdout.readline())
    finally:
        cons.wait()
        if driver.poll() is None:
            driver.kill()
            driver.wait()
    return Result(out["consumed"], out["ns"] / 1e9, out["produced"], out["drops"],
                  out.get("lost", 0))


class _Producer:
    """The producer for the Python reader: coreframe's own loader, else a libbpf holder."""

    def __init__(self, build_dir: str, kind: str, pid: int, per_hit: int) -> None:
        self.how = ""
        self._obj: Any = None
        self._link: Any = None
        self._holder: subprocess.Popen[str] | None = None
        self._fds: list[Any] = []
        obj = os.path.join(build_dir, "ev_bench.bpf.o")
        try:
            self._load_coreframe(obj, kind, pid, per_hit)
            self.how = "coreframe loader"
        except Exception as e:  # noqa: BLE001 - loader may be incomplete; fall back
            self.how = f"libbpf holder (coreframe loader: {type(e).__name__}: {e})"[:160]
            self._load_holder(build_dir, obj, kind, pid, per_hit)

    def _load_coreframe(self, obj: str, kind: str, pid: int, per_hit: int) -> None:
        import struct

        import coreframe
        from coreframe import links

        self._obj = coreframe.open(obj).load()
        maps = self._obj.maps
        maps["config"].update(0, struct.pack("<IIII", pid, per_hit, kind == "perf", 0))
        self._link = links.attach_program(self._obj.programs["produce"])
        self.rb, self.pb, self.stats = maps["rb"], maps["pb"], maps["stats"]

    def _load_holder(self, build_dir: str, obj: str, kind: str, pid: int, per_hit: int) -> None:
        from coreframe.sys.bpf import map_get_fd_by_id

        cmd = [os.path.join(build_dir, "ringbuf_consumer"), obj, str(pid), str(per_hit),
               "--hold", kind]
        self._holder = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        text=True)
        assert self._holder.stdout is not None
        line = self._holder.stdout.readline().split()
        if not line or line[0] != "ids":
            raise RuntimeError("libbpf holder failed to load the producer")
        rb_id, pb_id, st_id = map(int, line[1:4])
        self.rb = map_get_fd_by_id(rb_id)
        self.pb = map_get_fd_by_id(pb_id)
        self.stats = map_get_fd_by_id(st_id)
        self._fds = [self.rb, self.pb, self.stats]

    def stat(self, idx: int) -> int:
        import struct

        from coreframe.sys.bpf import map_lookup_elem

        fd = getattr(self.stats, "fd", self.stats)
        raw = map_lookup_elem(fd, struct.pack("<I", idx), 8)
        return struct.unpack("<Q", raw)[0] if raw else 0

    def close(self) -> None:
        if self._link is not None:
            self._link.close()
        if self._obj is not None:
            self._obj.close()
        for fd in self._fds:
            fd.close()
        if self._holder is not None:
            assert self._holder.stdin is not None
            self._holder.stdin.close()
            self._holder.wait()


def _noop(*_: Any) -> None:
    return None


def run_py(build_dir: str, kind: str, mode: str, per_hit: int, hits: int, page_cnt: int,
           watermark: int) -> tuple[Result, str]:
    from coreframe.perf import PerfBuffer
    from coreframe.ringbuf import RingBuffer

    driver = spawn_driver(hits)
    prod = _Producer(build_dir, kind, driver.pid, per_hit)
    lost = 0
    try:
        if kind == "ringbuf":
            reader: Any = RingBuffer(prod.rb, _noop)
        else:
            reader = PerfBuffer(prod.pb, _noop, page_cnt=page_cnt,
                                watermark=watermark or None, wakeup_events=1)
        with reader:
            assert driver.stdin is not None
            n = 0
            clock = time.thread_time if mode == "drain" else time.perf_counter
            t0 = clock()
            driver.stdin.write("go\n")
            driver.stdin.flush()
            if mode == "drain":
                driver.wait()
                t0 = clock()
            else:
                while driver.poll() is None:
                    n += reader.poll(0.02)
            while True:
                got = reader.consume()
                if not got:
                    break
                n += got
            t1 = clock()
            if kind == "perf":
                lost = reader.lost
        return Result(n, t1 - t0, prod.stat(0), prod.stat(1), lost), prod.how
    finally:
        prod.close()
        if driver.poll() is None:
            driver.kill()
        driver.wait()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-hit", type=int, nargs="+", default=[1, 4])
    ap.add_argument("--hits", type=int, default=200_000, help="driver syscalls per live run")
    ap.add_argument("--drain-records", type=int, default=80_000,
                    help="backlog size of a drain run (must fit the 4 MiB ring)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--kind", choices=["ringbuf", "perf", "both"], default="both")
    ap.add_argument("--mode", choices=["drain", "live", "both"], default="both")
    ap.add_argument("--page-cnt", type=int, default=64,
                    help="perf buffer pages per CPU for live runs (drain uses 1024)")
    ap.add_argument("--watermark", type=int, default=64 * 1024,
                    help="perf buffer wakeup watermark in bytes (0: wake per sample)")
    ap.add_argument("--build-dir", default=None)
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("needs root", file=sys.stderr)
        return 1
    build_dir = args.build_dir or build(tempfile.mkdtemp(prefix="cf-bench-"))
    kinds = ["ringbuf", "perf"] if args.kind == "both" else [args.kind]
    modes = ["drain", "live"] if args.mode == "both" else [args.mode]
    print(f"{'mode':5} {'buffer':7} {'per_hit':>7} {'side':6} {'records/s':>11} "
          f"{'consumed':>9} {'produced':>9} {'drops':>7} {'lost':>7}")
    summary: dict[str, Any] = {}
    how = ""
    for mode in modes:
        for kind in kinds:
            for per_hit in args.per_hit:
                hits = args.hits if mode == "live" else max(1, args.drain_records // per_hit)
                pages = args.page_cnt if mode == "live" else 1024
                cs: list[Result] = []
                ps: list[Result] = []
                for _ in range(args.runs):
                    cs.append(run_c(build_dir, kind, mode, per_hit, hits, pages,
                                    args.watermark))
                    r, how = run_py(build_dir, kind, mode, per_hit, hits, pages,
                                    args.watermark)
                    ps.append(r)
                for side, rs in (("C", cs), ("Python", ps)):
                    med = statistics.median(r.rate for r in rs)
                    r = sorted(rs, key=lambda x: x.rate)[len(rs) // 2]
                    print(f"{mode:5} {kind:7} {per_hit:7d} {side:6} {med:11,.0f} "
                          f"{r.consumed:9d} {r.produced:9d} {sum(x.drops for x in rs):7d} "
                          f"{sum(x.lost for x in rs):7d}")
                c_med = statistics.median(r.rate for r in cs)
                p_med = statistics.median(r.rate for r in ps)
                ratio = p_med / c_med if c_med else 0.0
                summary[f"{mode}/{kind}/{per_hit}"] = round(ratio, 3)
                print(f"{'':5} {'':7} {'':7} Python/C = {ratio:.2f}")
    print(f"python-side producer loaded by: {how}")
    print(json.dumps({"python_over_c": summary}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
