"""Where the running kernel shows itself in the file system, read in one place.

The paths the loader, the feature probes and the tools look at (sysfs, tracefs,
bpffs), and the CPU lists behind per-CPU maps and per-CPU perf buffers.
"""

from __future__ import annotations

import os

VMLINUX_BTF = "/sys/kernel/btf/vmlinux"  # the kernel's BTF (CONFIG_DEBUG_INFO_BTF)
EVENT_SOURCES = "/sys/bus/event_source/devices"  # perf PMUs: kprobe/type, uprobe/type, ...
TRACEFS_MOUNTS = ("/sys/kernel/tracing", "/sys/kernel/debug/tracing")  # preferred first
BPFFS_ROOT = "/sys/fs/bpf"  # where LIBBPF_PIN_BY_NAME maps are pinned by default
KALLSYMS = "/proc/kallsyms"  # kernel symbols (data ones only with CONFIG_KALLSYMS_ALL)
KCORE = "/proc/kcore"  # kernel memory as an ELF core file (CONFIG_PROC_KCORE, root)
CPU_ONLINE = "/sys/devices/system/cpu/online"
CPU_POSSIBLE = "/sys/devices/system/cpu/possible"


def has_pmu(name: str) -> bool:
    """Whether perf has a PMU called ``name`` (``kprobe``, ``uprobe``, ...)."""
    return os.path.exists(f"{EVENT_SOURCES}/{name}/type")


def cpu_list(text: str) -> list[int]:
    """The CPUs of a sysfs CPU list such as ``0-3,6``."""
    cpus: list[int] = []
    for part in text.strip().split(","):
        if "-" in part:
            lo, hi = part.split("-")
            cpus.extend(range(int(lo), int(hi) + 1))
        elif part:
            cpus.append(int(part))
    return cpus


def online_cpus() -> list[int]:
    """CPUs listed in /sys/devices/system/cpu/online (e.g. ``0-3,6``)."""
    try:
        with open(CPU_ONLINE) as f:
            return cpu_list(f.read())
    except OSError:
        return list(range(os.cpu_count() or 1))


def possible_cpus() -> int:
    """Number of possible CPUs (per-CPU values have one slot each), from sysfs."""
    try:
        with open(CPU_POSSIBLE) as f:
            text = f.read()
    except OSError:
        return os.cpu_count() or 1
    return max(cpu_list(text), default=0) + 1
