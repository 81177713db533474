"""kprobe.multi / kretprobe.multi (and uprobe.multi, at the end) attach and fire,
with exact counts per function: through one kprobe_multi link where the kernel has
it (5.18+, with CONFIG_FPROBE), through one perf-event kprobe per function where it
has not (Debian's 6.1), and through that path when COREFRAME_DISABLE_LINKS forces it.

The programs (tests/objects/multi_probes.bpf.c, SEC("kprobe.multi/__x64_sys_get*id"))
count calls per function address (bpf_get_func_ip) made by this test's thread; the
test makes getpgid, getsid, getresuid and getresgid calls through syscall(2) and
maps each address to its kallsyms name. (The pattern also matches the wrappers of
argument-less syscalls such as getpid, which some kernels can trace; those are
left out of the comparison, as the interpreter may call them.)
"""

from __future__ import annotations

import bisect
import ctypes
import platform
import shutil
import struct
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from kernkit import OBJECTS, Expect

import coreframe
from coreframe import features
from coreframe.errors import FeatureMissing
from coreframe.sys import consts as C

pytestmark = [
    pytest.mark.kernel,
    pytest.mark.skipif(platform.machine() != "x86_64",
                       reason="the test object names x86-64 syscall wrappers"),
]

OBJ = OBJECTS / "multi_probes.bpf.o"
TARGET_SRC = OBJECTS.parent / "links" / "multi_target.c"
# x86-64 syscall numbers -> calls made; the pattern matches these wrappers (and more)
CALLS = {"__x64_sys_getpgid": (121, 3), "__x64_sys_getsid": (124, 4),
         "__x64_sys_getresuid": (118, 5), "__x64_sys_getresgid": (120, 6)}
PAIR = struct.Struct("<QQ")
_libc = ctypes.CDLL(None, use_errno=True)


def _kallsyms() -> tuple[list[int], list[str]]:
    rows = []
    with open("/proc/kallsyms") as f:
        for line in f:
            addr, typ, name = line.split()[:3]
            if typ in "tT" and int(addr, 16):
                rows.append((int(addr, 16), name))
    rows.sort()
    return [a for a, _ in rows], [n for _, n in rows]


def _by_function(m: coreframe.maps.Map) -> dict[str, int]:
    """Counts keyed by the kernel function whose code holds each address (the entry
    address may sit past an ENDBR instruction, so the nearest symbol at or below)."""
    addrs, names = _kallsyms()
    out: dict[str, int] = {}
    for key, value in m.raw.items():
        ip = struct.unpack("<Q", key)[0]
        i = bisect.bisect_right(addrs, ip) - 1
        name = names[i] if i >= 0 else hex(ip)
        out[name] = out.get(name, 0) + struct.unpack("<Q", value)[0]
    return out


def _make_calls() -> None:
    ids = (ctypes.c_uint * 3)()
    ptrs = [ctypes.addressof(ids) + 4 * i for i in range(3)]
    for nr, count in CALLS.values():
        for _ in range(count):
            # getres[ug]id write the three ids; getpgid/getsid take the first as a pid
            # (no such process: ESRCH, but the function ran)
            _libc.syscall(nr, ctypes.c_void_p(ptrs[0]), ctypes.c_void_p(ptrs[1]),
                          ctypes.c_void_p(ptrs[2]))


MODES = {"auto": "", "forced-kprobes": "kprobe_multi"}


@pytest.mark.parametrize("prog", ["kmulti_entry", "kmulti_return"])
@pytest.mark.parametrize("mode", list(MODES))
def test_kprobe_multi_counts_every_function(mode: str, prog: str, expect_feature: Expect,
                                            monkeypatch: pytest.MonkeyPatch,
                                            record_property: Callable[[str, object], None]
                                            ) -> None:
    """``auto``: the kprobe_multi link where the kernel has it (6.12), else, by the
    same probe, one kprobe per function (Debian's 6.1 is built without CONFIG_FPROBE,
    so it has no kprobe_multi link); ``forced-kprobes``: the per-function path chosen
    by COREFRAME_DISABLE_LINKS on any kernel."""
    if MODES[mode]:
        monkeypatch.setenv(features.DISABLE_LINKS_ENV, MODES[mode])
    use_link = not MODES[mode] and features.has_kprobe_multi()
    record_property("kprobe_multi_path", "link" if use_link else "kprobes")
    spec = coreframe.open(str(OBJ))
    for name, p in spec.programs.items():
        p.autoload = name == prog
    spec.rodata.targ_tid = threading.get_native_id()
    # the programs count by bpf_get_func_ip (5.15+): before it, the load is the one
    # FeatureMissing line that names the helper (5.10)
    if not expect_feature(features.has_helper(C.BPF_PROG_TYPE_KPROBE, C.BPF_FUNC_get_func_ip),
                          "bpf_get_func_ip"):
        with pytest.raises(FeatureMissing, match="helper bpf_get_func_ip in kprobe programs"):
            spec.load()
        return
    with spec.load() as obj:
        loaded = obj.programs[prog]
        assert loaded.expected_attach_type == (C.BPF_TRACE_KPROBE_MULTI if use_link else 0)
        if not use_link and not expect_feature(features.has_kprobe(), "kprobes"):
            with pytest.raises(FeatureMissing, match="neither kprobe_multi links nor kprobes"):
                obj.attach()
            return
        (link,) = obj.attach()
        kind = "kretprobe.multi" if prog == "kmulti_return" else "kprobe.multi"
        info = link.info()
        if use_link:
            assert link.kind == kind
            assert info["type"] == "BPF_LINK_TYPE_KPROBE_MULTI"
        else:
            assert link.kind == f"{kind} (kprobes)"
            assert {c["type"] for c in info["links"]} == {"BPF_LINK_TYPE_PERF_EVENT"}
            assert len(info["links"]) >= len(CALLS)
        _make_calls()
        m = obj.maps.kreturns if prog == "kmulti_return" else obj.maps.kentries
        counts = _by_function(m)
        link.close()
        _make_calls()
        after = _by_function(m)
    assert {name: counts.get(name, 0) for name in CALLS} == {
        name: n for name, (_nr, n) in CALLS.items()}
    assert after == counts, "the probes still fired after the link was closed"


@pytest.mark.parametrize("prog", ["umulti_entry", "umulti_return"])
def test_uprobe_multi_follows_the_probe(prog: str, tmp_path: Path,
                                        record_property: Callable[[str, object], None]
                                        ) -> None:
    """uprobe.multi on the eight functions of tests/links/multi_target.c: one
    uprobe_multi link where the kernel has it (6.6+: 6.12 and the host), one uprobe
    per function where not (6.1), chosen by the probe alone; every call counted."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler to build the uprobe target")
    target = str(tmp_path / "multi_target")
    subprocess.run([cc, "-O2", "-o", target, str(TARGET_SRC)], check=True)
    use_link = features.has_uprobe_multi()
    record_property("uprobe_multi_path", "link" if use_link else "uprobes")
    spec = coreframe.open(str(OBJ))
    for name, p in spec.programs.items():
        p.autoload = name == prog
    spec.programs[prog].attach_to = f"{target}:cf_multi_fn*"
    with spec.load() as obj:
        loaded = obj.programs[prog]
        assert loaded.expected_attach_type == (C.BPF_TRACE_UPROBE_MULTI if use_link else 0)
        (link,) = obj.attach()
        kind = "uretprobe.multi" if prog == "umulti_return" else "uprobe.multi"
        if use_link:
            assert link.kind == kind
            assert link.info()["type"] == "BPF_LINK_TYPE_UPROBE_MULTI"
        else:
            assert link.kind == f"{kind} (uprobes)"
            assert len(link.children) == 8
        subprocess.run([target, "3"], check=True)
        m = obj.maps.returns if prog == "umulti_return" else obj.maps.entries
        counts = [struct.unpack("<Q", m.raw.lookup(i))[0] for i in range(9)]
    assert counts == [3 * (i + 1) for i in range(8)] + [0]
