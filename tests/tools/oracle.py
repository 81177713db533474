"""Helpers for comparing a first-party tool with libbpf-tools' tool of the same name.

The workload runs in a helper process that waits for a line on stdin before each
step, so both tracers are attached before it acts; the oracle runs under
``stdbuf -oL`` so its lines reach the pipe as printed.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from tool_proc import ToolProcess

# libbpf-tools print their header, then open their buffers and attach: give them time
# after the header (never asserted; only what both saw is compared).
ORACLE_SETTLE_S = 1.5


def oracle_path(name: str) -> str:
    path = f"/usr/sbin/{name}"
    if not Path(path).exists() or shutil.which("stdbuf") is None:
        pytest.skip(f"libbpf-tools' {name} (the oracle) or stdbuf is missing")
    return path


@contextmanager
def oracle(name: str, *args: str, header: str | None = None) -> Iterator[ToolProcess]:
    """libbpf-tools' NAME running with ARGS, line-buffered; attached once it printed
    ``header`` (its first column) and settled."""
    with ToolProcess([], argv=["stdbuf", "-oL", oracle_path(name), *args], ready=None) as p:
        if header is not None:
            assert p.wait_stdout(lambda ls: any(line.startswith(header) for line in ls)), \
                f"{name} printed no header; stderr: {p.stderr}"
        time.sleep(ORACLE_SETTLE_S)
        yield p


# A helper that sleeps 300 times for 1 ms once told to go: each sleep leaves the CPU
# and comes back through the run queue (runqlat, cpudist).
SLEEPER = textwrap.dedent("""
    import sys, time
    sys.stdin.readline()
    for _ in range(300):
        time.sleep(0.001)
    print("done", flush=True)
    sys.stdin.readline()
""")


class Helper:
    """A Python child running ``script`` (in network namespace ``ns`` if given: ``ip
    netns exec`` execs it, so the pid is the script's); ``step()`` lets it go on."""

    def __init__(self, script: str, *args: str, ns: str | None = None) -> None:
        prefix = ["ip", "netns", "exec", ns] if ns else []
        self.proc = subprocess.Popen([*prefix, sys.executable, "-c", script, *args],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.pid = self.proc.pid

    def step(self) -> str:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline().strip()
        self.wait_asleep()
        return line

    def wait_asleep(self) -> None:
        """Until the helper sleeps in its next read: it may still be runnable (even
        preempted) right after printing, and a tracer stopped meanwhile would miss
        the scheduler events another one still sees."""
        deadline = time.monotonic() + 10
        calm = 0
        while calm < 3 and time.monotonic() < deadline:
            try:
                with open(f"/proc/{self.pid}/stat") as f:
                    state = f.read().rsplit(")", 1)[1].split()[0]
            except OSError:
                return
            calm = calm + 1 if state == "S" else 0
            time.sleep(0.01)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


@contextmanager
def helper(script: str, *args: str, ns: str | None = None) -> Iterator[Helper]:
    h = Helper(script, *args, ns=ns)
    try:
        yield h
    finally:
        h.close()


def parse_hists(lines: list[str]) -> dict[str, dict[int, int]]:
    """Every log2 histogram printed as print_log2_hist does, by the title line before it
    ("" for none): {title: {low bound: count}} (non-empty slots only)."""
    import re

    out: dict[str, dict[int, int]] = {}
    title = ""
    row = re.compile(r"^\s*(\d+) -> (\d+)\s*: (\d+)\s*\|")
    for line in lines:
        m = row.match(line)
        if m:
            if int(m.group(3)):
                out.setdefault(title, {})[int(m.group(1))] = int(m.group(3))
            continue
        if line.strip() and ": count" not in line and not line.startswith(("Tracing", " ")):
            title = line.strip()
    return out


@contextmanager
def loop_device(tmp: Path, size_mib: int = 64) -> Iterator[str]:
    """A loop device on a scratch file (deleted, with the device, afterwards)."""
    backing = tmp / "cf-loop.img"
    with open(backing, "wb") as f:
        f.truncate(size_mib << 20)
    done = subprocess.run(["losetup", "-f", "--show", str(backing)], capture_output=True,
                          text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot set up a loop device: {done.stderr.strip()}")
    dev = done.stdout.strip()
    try:
        yield dev
    finally:
        subprocess.run(["losetup", "-d", dev], check=False)


# O_DIRECT writes then reads of known sizes to a block device (argv[1]), each its own
# request (one at a time, so nothing merges); prints "done".
DIRECT_IO = """
import mmap, os, sys
dev, writes, wsize, reads, rsize = sys.argv[1], *map(int, sys.argv[2:6])
buf = mmap.mmap(-1, max(wsize, rsize))          # page-aligned, as O_DIRECT needs
sys.stdin.readline()
fd = os.open(dev, os.O_RDWR | os.O_DIRECT)
for i in range(writes):
    os.pwritev(fd, [memoryview(buf)[:wsize]], i * wsize)
for i in range(reads):
    os.preadv(fd, [memoryview(buf)[:rsize]], (1 << 20) + i * rsize)
os.close(fd)
print("done", flush=True)
sys.stdin.readline()
"""


@contextmanager
def netns(name: str) -> Iterator[str]:
    """A network namespace with loopback up, deleted afterwards."""
    import os

    ns = f"{name}-{os.getpid()}"
    made = subprocess.run(["ip", "netns", "add", ns], capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"cannot create a network namespace: {made.stderr.strip()}")
    try:
        subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True)
        yield ns
    finally:
        subprocess.run(["ip", "netns", "delete", ns], check=False)


# TCP sessions over loopback in the helper's netns: per family, a server and a client,
# known bytes each way; prints "done".
TCP_SESSIONS = """
import socket, sys
sys.stdin.readline()
for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
    srv = socket.socket(family)
    srv.bind((host, 0))
    srv.listen()
    port = srv.getsockname()[1]
    for n in (1000, 20000):
        cli = socket.create_connection((host, port))
        acc, _ = srv.accept()
        cli.sendall(b"x" * n)
        got = 0
        while got < n:
            got += len(acc.recv(65536))
        acc.sendall(b"y" * (n // 2))
        got = 0
        while got < n // 2:
            got += len(cli.recv(65536))
        cli.close()
        acc.close()
    try:                                   # refused: nobody listens on port + 1
        socket.create_connection((host, port + 1)).close()
    except OSError:
        pass
    srv.close()
print("done", flush=True)
sys.stdin.readline()
"""


def assert_same_samples(mine: dict[int, int], want: dict[int, int]) -> None:
    """Two log2 histograms of the same events: equal totals, and at every slot boundary
    the counts below it differ by at most a tenth. Each tool stamps both ends of an
    interval with its own bpf_ktime_get_ns(), in an order that varies with which
    program the kernel runs first, so a sample near a power of two may land one
    slot over; a different set of samples would shift whole slots."""
    assert sum(mine.values()) == sum(want.values()), (mine, want)
    total = sum(want.values())
    below_m = below_w = 0
    for low in sorted(set(mine) | set(want)):
        below_m += mine.get(low, 0)
        below_w += want.get(low, 0)
        assert abs(below_m - below_w) <= max(3, total // 10), (low, mine, want)


# TCP connect()s over loopback in the helper's netns: to a listener twice (established)
# and to a closed port once (refused, from a bound port so it is known), per family;
# then prints [[ip, sport, dport, established], ...] as JSON
CONNECTOR = textwrap.dedent("""
    import json, socket, sys
    sys.stdin.readline()
    seen = []
    for family, host, ip in ((socket.AF_INET, "127.0.0.1", 4), (socket.AF_INET6, "::1", 6)):
        srv = socket.socket(family)
        srv.bind((host, 0))
        srv.listen()
        port = srv.getsockname()[1]
        for _ in range(2):
            c = socket.create_connection((host, port))
            seen.append([ip, c.getsockname()[1], port, True])
            c.close()
        c = socket.socket(family)
        c.bind((host, 0))                 # the port is known even when refused
        try:
            c.connect((host, port + 1))
        except OSError:
            pass
        seen.append([ip, c.getsockname()[1], port + 1, False])
        c.close()
        srv.close()
    print(json.dumps(seen), flush=True)
    sys.stdin.readline()
""")
