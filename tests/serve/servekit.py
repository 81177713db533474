"""Drive `coreframe serve` as a subprocess, and the workloads and receivers its tests use."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tool_proc import COREFRAME, ToolProcess

WAIT_S = 60.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_config(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def serve(config: Path, ready: str | None = "Tracing exec()") -> ToolProcess:
    """`coreframe serve CONFIG`, ready once execsnoop says it traces (if configured)."""
    return ToolProcess([], argv=[COREFRAME, "serve", str(config)], ready=ready)


def http_get(url: str, timeout: float = 10.0) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def wait_for(pred: Callable[[], Any], timeout: float = WAIT_S, every: float = 0.25) -> Any:
    """Poll ``pred`` until it returns something true; return that (or the last value)."""
    deadline = time.monotonic() + timeout
    value = pred()
    while not value and time.monotonic() < deadline:
        time.sleep(every)
        value = pred()
    return value


def unique_comm(tag: str) -> str:
    """A comm (at most 15 bytes) no other process on the machine has."""
    return f"cf{tag}{os.getpid() % 10000}{time.monotonic_ns() % 1000}"[:15]


def named_binary(tmp_path: Path, name: str, source: str = "/bin/true") -> Path:
    """A copy of ``source`` called ``name``: exec()ing it gives a comm of our own."""
    dst = tmp_path / name
    shutil.copy(source, dst)
    dst.chmod(0o755)
    return dst


def run_execs(binary: Path, n: int, *args: str) -> None:
    for _ in range(n):
        subprocess.run([str(binary), *args], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, check=False)


def prog_and_link_ids(pid: int) -> tuple[set[int], set[int]]:
    """BPF program and link ids a process holds open (from /proc/PID/fdinfo)."""
    ids = bpf_fd_ids(pid)
    return ids["prog"], ids["link"]


def bpf_fd_ids(pid: int) -> dict[str, set[int]]:
    """BPF program, link and map ids a process holds open (from /proc/PID/fdinfo)."""
    progs: set[int] = set()
    links: set[int] = set()
    maps: set[int] = set()
    fdinfo = Path(f"/proc/{pid}/fdinfo")
    for entry in fdinfo.iterdir():
        try:
            text = entry.read_text()
        except OSError:
            continue
        for line in text.splitlines():
            key, _, value = line.partition(":")
            if key == "prog_id":
                progs.add(int(value))
            elif key == "link_id":
                links.add(int(value))
            elif key == "map_id":
                maps.add(int(value))
    return {"prog": progs, "link": links, "map": maps}


def bpf_alive(kind: str, ids: set[int]) -> set[int]:
    """Which of ``ids`` (prog or link ids) the kernel still has (bpftool as oracle).

    One id at a time: a full listing can fail while other processes' programs come
    and go between bpftool's id walk and its lookups.
    """
    alive = set()
    for i in ids:
        proc = subprocess.run(["bpftool", kind, "show", "id", str(i)], capture_output=True,
                              text=True)
        if proc.returncode == 0:
            alive.add(i)
    return alive


def pinned_id(path: Path) -> tuple[str, int] | None:
    """(kind, id) of the BPF object pinned at ``path`` (bpftool as oracle), if any."""
    import json

    for kind in ("prog", "map", "link"):
        proc = subprocess.run(["bpftool", "-j", kind, "show", "pinned", str(path)],
                              capture_output=True, text=True)
        if proc.returncode == 0 and proc.stdout.strip():
            doc = json.loads(proc.stdout)
            return kind, int(doc["id"])
    return None


def bpffs_entries() -> set[str]:
    root = Path("/sys/fs/bpf")
    if not root.is_dir():
        return set()
    return {p.name for p in root.iterdir()}
