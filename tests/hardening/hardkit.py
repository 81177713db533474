"""Shared helpers of the hardening tests: build tiny objects, run the CLI, list programs."""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from coreframe.build import bpf_cflags

REPO = Path(__file__).resolve().parents[2]
COREFRAME = Path(sys.executable).with_name("coreframe")
PYTHON = Path(sys.executable)
# A private XDG cache for the CLI runs of this session (kernel BTF index), removed at exit.
CACHE_HOME = tempfile.mkdtemp(prefix="coreframe-hard-cache-")
atexit.register(shutil.rmtree, CACHE_HOME, True)
UNPRIV = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all",
          "--bounding-set=-all"]

# One program (name set per build) counting its hits in an array map; optional pinned map.
SOURCE = r"""
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#ifndef SEC_NAME
#define SEC_NAME "tracepoint/syscalls/sys_enter_getppid"
#endif
#ifndef PROG_NAME
#define PROG_NAME hard_prog
#endif

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} hard_counts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} hard_ring SEC(".maps");

#ifdef PIN_NAME
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} PIN_NAME SEC(".maps");
#endif

const volatile __u32 hard_knob = 1;

SEC(SEC_NAME)
int PROG_NAME(void *ctx)
{
	__u32 key = 0;
	__u64 *v = bpf_map_lookup_elem(&hard_counts, &key);

	if (v && hard_knob)
		__sync_fetch_and_add(v, 1);
	return 0;
}

#ifdef SEC2_NAME
SEC(SEC2_NAME)
int hard_second(void *ctx)
{
	return 0;
}
#endif

char LICENSE[] SEC("license") = "GPL";
"""


def have_clang() -> bool:
    return shutil.which("clang") is not None and (REPO / "bpf" / "vmlinux.h").is_file()


def build(out_dir: Path, name: str, *, sec: str | None = None, prog: str | None = None,
          pin: str | None = None, target: str = "bpf", extra: tuple[str, ...] = (),
          sec2: str | None = None) -> Path:
    """Compile SOURCE with the given SEC()/program/pin names; returns the object path.

    ``sec2`` adds a second, empty program ``hard_second`` in that section.
    """
    src = out_dir / "hard_src.bpf.c"
    if not src.exists() or src.read_text() != SOURCE:
        src.write_text(SOURCE)
    out = out_dir / f"{name}.bpf.o"
    # the shared flags, then the target under test (clang takes the last -target)
    cmd = ["clang", *bpf_cflags(), "-target", target,
           f"-I{REPO / 'bpf'}", "-c", str(src), "-o", str(out), *extra]
    if sec:
        cmd.append(f'-DSEC_NAME="{sec}"')
    if prog:
        cmd.append(f"-DPROG_NAME={prog}")
    if pin:
        cmd.append(f"-DPIN_NAME={pin}")
    if sec2:
        cmd.append(f'-DSEC2_NAME="{sec2}"')
    subprocess.run(cmd, check=True, capture_output=True)
    return out


def run_cli(*args: str, unpriv: bool = False, timeout: float = 60,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the installed console script (optionally without any capability)."""
    full_env = dict(os.environ)
    full_env.setdefault("XDG_CACHE_HOME", CACHE_HOME)
    if env:
        full_env.update(env)
    cmd = [str(COREFRAME), *args]
    if unpriv:
        cmd = UNPRIV + cmd
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=full_env,
                          cwd="/")


def _walk(next_id: object) -> set[int]:
    ids: set[int] = set()
    cur: int | None = 0
    while True:
        cur = next_id(cur)  # type: ignore[operator]
        if cur is None:
            return ids
        ids.add(cur)


def prog_ids() -> set[int]:
    """Every program id the kernel currently has (BPF_PROG_GET_NEXT_ID walk)."""
    from coreframe.sys import bpf as sysbpf

    return _walk(sysbpf.prog_get_next_id)


def link_ids() -> set[int]:
    """Every BPF link id (BPF_LINK_GET_NEXT_ID walk)."""
    from coreframe.sys import bpf as sysbpf

    return _walk(sysbpf.link_get_next_id)


def map_ids() -> set[int]:
    from coreframe.sys import bpf as sysbpf

    return _walk(sysbpf.map_get_next_id)


def progs_named(name: str) -> set[int]:
    """Ids of loaded programs whose kernel name is ``name`` (at most 15 characters)."""
    from coreframe.sys import bpf as sysbpf

    out = set()
    for pid in prog_ids():
        try:
            fd = sysbpf.prog_get_fd_by_id(pid)
        except OSError:
            continue  # freed meanwhile
        with fd:
            if sysbpf.prog_info(fd).name.decode() == name:
                out.add(pid)
    return out


def own_bpf_ids(pid: int | str = "self") -> dict[str, set[int]]:
    """prog/link/map ids behind a process's fds, from /proc/PID/fdinfo."""
    out: dict[str, set[int]] = {"prog_id": set(), "link_id": set(), "map_id": set()}
    for fd in os.listdir(f"/proc/{pid}/fdinfo"):
        try:
            with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                for line in f:
                    key, _, value = line.partition(":")
                    if key in out:
                        out[key].add(int(value))
        except OSError:
            continue
    return out


def wait_gone(ids: set[int], walk: object, rounds: int = 200) -> set[int]:
    """Ids still listed by the kernel after it had a chance to free them (RCU, workqueues).

    Freeing a program is deferred; poll a bounded number of times instead of
    asserting on timing.
    """
    import time

    left = set(ids)
    for _ in range(rounds):
        left &= walk()  # type: ignore[operator]
        if not left:
            return left
        time.sleep(0.05)
    return left


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def rss_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0
