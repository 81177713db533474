"""Attach types on the running kernel, exercised for real (root needed)."""

from __future__ import annotations

import ctypes
import gc
import os
import shutil
import subprocess
import time
from collections.abc import Callable

import evkit as K
import pytest

from coreframe import features
from coreframe import link as links
from coreframe.errors import AttachError, FeatureMissing
from coreframe.link import perf_event
from coreframe.sys import consts as C

pytestmark = [
    pytest.mark.kernel,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
]

_libc = ctypes.CDLL(None, use_errno=True)
SYS_getpid = 39


def raw_getpid(n: int) -> None:
    """getpid(2) through syscall(): glibc may not enter the kernel for getpid()."""
    for _ in range(n):
        _libc.syscall(SYS_getpid)


def wait_for(pred: Callable[[], bool], limit: float = 10.0) -> bool:
    """Poll until ``pred`` holds; a hang guard, not a timing assertion."""
    end = time.monotonic() + limit
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.01)
    return pred()


@pytest.fixture
def counter():
    fd = K.counter_map()
    yield fd
    fd.close()


def _prog(prog_type: int, insns: bytes, **kw) -> K.Prog:
    eat = kw.get("expected_attach_type", 0)
    return K.Prog(K.prog_load(prog_type, insns, **kw), type=prog_type, expected_attach_type=eat)


# ---- tracepoints ----------------------------------------------------------------------


def test_tracepoint_counts_and_detaches(counter):
    prog = _prog(C.BPF_PROG_TYPE_TRACEPOINT, K.counter_insns(counter, pid=os.getpid()))
    try:
        with links.attach_tracepoint(prog, "syscalls", "sys_enter_getpid") as link:
            info = link.info()
            assert info["type"] == "BPF_LINK_TYPE_PERF_EVENT"
            assert info["prog_id"] > 0
            raw_getpid(25)
            assert K.lookup_u64(counter) == 25
        assert link.closed
        raw_getpid(10)
        assert K.lookup_u64(counter) == 25
    finally:
        prog.close()


def test_tracepoint_ioctl_fallback(counter, monkeypatch):
    """Kernels without perf links (the link fails and the probe says so) use
    PERF_EVENT_IOC_SET_BPF; force that choice here (COREFRAME_DISABLE_LINKS): the
    ioctls themselves run against this kernel, and the fallback is recorded for the
    kernel matrix's summary."""
    monkeypatch.setenv(features.DISABLE_LINKS_ENV, "perf_event")
    before = features.fallbacks_taken().get(perf_event.IOCTL_FALLBACK, ("", 0))[1]
    prog = _prog(C.BPF_PROG_TYPE_TRACEPOINT, K.counter_insns(counter, pid=os.getpid()))
    try:
        link = links.attach_tracepoint(prog, "syscalls", "sys_enter_getpid")
        assert link.kind == "tracepoint (ioctl)"
        assert link.info()["id"] is None
        with pytest.raises(AttachError, match="no BPF link fd"):
            _ = link.fd
        raw_getpid(9)
        link.close()
        raw_getpid(9)
        assert K.lookup_u64(counter) == 9
        assert features.fallbacks_taken()[perf_event.IOCTL_FALLBACK] == (
            perf_event.IOCTL_WHY, before + 1)
        with pytest.raises(FeatureMissing, match="BPF perf links"):
            links.attach_tracepoint(prog, "syscalls", "sys_enter_getpid", cookie=7)
    finally:
        prog.close()


def test_wrong_program_type_is_attach_error(counter):
    xdp = _prog(C.BPF_PROG_TYPE_XDP, K.counter_insns(counter, ret=2))
    tp = _prog(C.BPF_PROG_TYPE_TRACEPOINT, K.counter_insns(counter))
    try:
        with pytest.raises(AttachError, match="attaching cf_test to tracepoint"):
            links.attach_tracepoint(xdp, "syscalls", "sys_enter_getpid")
        with links.attach_tracepoint(tp, "syscalls", "sys_enter_getpid") as link:
            assert link.kind == "tracepoint"  # the failure did not switch us to the ioctl path
    finally:
        xdp.close()
        tp.close()


def test_unknown_tracepoint_is_attach_error(counter):
    prog = _prog(C.BPF_PROG_TYPE_TRACEPOINT, K.counter_insns(counter))
    try:
        with pytest.raises(AttachError, match="syscalls:sys_enter_nosuchcall"):
            links.attach_tracepoint(prog, "syscalls", "sys_enter_nosuchcall")
    finally:
        prog.close()


def test_garbage_collected_link_detaches(counter):
    prog = _prog(C.BPF_PROG_TYPE_TRACEPOINT, K.counter_insns(counter, pid=os.getpid()))
    try:
        link = links.attach_tracepoint(prog, "syscalls", "sys_enter_getpid")
        raw_getpid(3)
        del link
        gc.collect()
        raw_getpid(3)
        assert K.lookup_u64(counter) == 3
    finally:
        prog.close()


def test_raw_tracepoint_sys_enter(counter):
    insns = K.counter_insns(counter, pid=os.getpid(), ctx_u64_1=SYS_getpid)
    prog = _prog(C.BPF_PROG_TYPE_RAW_TRACEPOINT, insns)
    try:
        link = links.attach_raw_tracepoint(prog, "sys_enter")
        assert link.info()["type"] == "BPF_LINK_TYPE_RAW_TRACEPOINT"
        raw_getpid(17)
        link.close()
        raw_getpid(5)
        assert K.lookup_u64(counter) == 17
        with pytest.raises(AttachError, match="no raw tracepoint 'no_such_tp_xyz'"):
            links.attach_raw_tracepoint(prog, "no_such_tp_xyz")
    finally:
        prog.close()


def _vmlinux_type_id(name: str) -> int:
    """Kernel BTF id of ``name``: coreframe.btf when it works, bpftool as the oracle."""
    try:
        from coreframe.btf.kernel import vmlinux

        ids = vmlinux().find(name)
        if ids:
            return ids[0]
    except Exception:  # noqa: BLE001 - BTF package may still be in progress
        pass
    bpftool = shutil.which("bpftool")
    if not bpftool:
        pytest.skip("no kernel BTF lookup available (coreframe.btf or bpftool)")
    out = subprocess.run([bpftool, "btf", "dump", "file", "/sys/kernel/btf/vmlinux",
                          "format", "raw"], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        if f" '{name}' " in line:
            return int(line.split("]", 1)[0].lstrip("["))
    pytest.skip(f"{name} not in kernel BTF")


def test_tp_btf_sys_enter(counter):
    btf_id = _vmlinux_type_id("btf_trace_sys_enter")
    insns = K.counter_insns(counter, pid=os.getpid(), ctx_u64_1=SYS_getpid)
    prog = _prog(C.BPF_PROG_TYPE_TRACING, insns, expected_attach_type=C.BPF_TRACE_RAW_TP,
                 attach_btf_id=btf_id)
    try:
        with links.attach_tracing(prog) as link:
            assert link.kind == "tp_btf"
            assert link.info()["type"] in ("BPF_LINK_TYPE_RAW_TRACEPOINT", "BPF_LINK_TYPE_TRACING")
            raw_getpid(11)
        raw_getpid(4)
        assert K.lookup_u64(counter) == 11
    finally:
        prog.close()


def test_fentry_is_feature_missing_or_works(counter):
    """This VM refuses trampolines at load (EPERM); elsewhere fentry must attach."""
    btf_id = _vmlinux_type_id("vfs_read")
    try:
        prog = _prog(C.BPF_PROG_TYPE_TRACING, K.counter_insns(counter),
                     expected_attach_type=C.BPF_TRACE_FENTRY, attach_btf_id=btf_id)
    except K.LoadError as e:
        assert any(f"[Errno {n}]" in str(e) for n in (1, 95, 524))  # EPERM/EOPNOTSUPP/ENOTSUPP
        # The links layer reports a trampoline refusal from link_create the same way.
        err = links.attach_error(OSError(1, "Operation not permitted"), "attaching fentry",
                                  feature="BPF trampolines")
        assert isinstance(err, FeatureMissing)
        assert err.feature == "BPF trampolines"
        return
    try:
        with links.attach_tracing(prog):
            raw_getpid(2)
        assert K.lookup_u64(counter) >= 2
    finally:
        prog.close()


# ---- kprobes --------------------------------------------------------------------------


def _kprobes_present() -> bool:
    if os.path.exists("/sys/bus/event_source/devices/kprobe/type"):
        return True
    return any(os.path.exists(f"{d}/kprobe_events")
               for d in ("/sys/kernel/tracing", "/sys/kernel/debug/tracing"))


@pytest.mark.parametrize("retprobe", [False, True])
def test_kprobe_feature_missing(counter, retprobe):
    prog = _prog(C.BPF_PROG_TYPE_KPROBE, K.counter_insns(counter))
    try:
        if _kprobes_present():
            with links.attach_kprobe(prog, "__x64_sys_getpid", retprobe=retprobe):
                raw_getpid(3)
            assert K.lookup_u64(counter) >= 3
            return
        with pytest.raises(FeatureMissing) as ei:
            links.attach_kprobe(prog, "__x64_sys_getpid", retprobe=retprobe)
        assert ei.value.feature == "kprobes"
        assert "CONFIG_KPROBE_EVENTS" in str(ei.value)
    finally:
        prog.close()


# ---- uprobes --------------------------------------------------------------------------

_TARGET_C = r"""
#include <stdlib.h>
#include <unistd.h>
__attribute__((noinline)) int cf_target(int x) { __asm__ volatile(""); return x * 3 + 1; }
int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 1, s = 0;
    char c;
    if (argc > 2 && read(0, &c, 1) < 0) return 2;  /* "wait": start calling on stdin */
    for (int i = 0; i < n; i++) s += cf_target(i);
    return s == -7;
}
"""


@pytest.fixture(scope="module")
def target_binary(tmp_path_factory):
    if not shutil.which("gcc"):
        pytest.skip("gcc not installed")
    d = tmp_path_factory.mktemp("uprobe")
    src = d / "target.c"
    src.write_text(_TARGET_C)
    exe = d / "cf_uprobe_target"
    subprocess.run(["gcc", "-O1", "-o", str(exe), str(src)], check=True)
    return str(exe)


@pytest.mark.parametrize("retprobe", [False, True])
def test_uprobe_counts_calls(counter, target_binary, retprobe):
    prog = _prog(C.BPF_PROG_TYPE_KPROBE, K.counter_insns(counter))
    try:
        with links.attach_uprobe(prog, target_binary, "cf_target", retprobe=retprobe) as link:
            assert link.info()["type"] == "BPF_LINK_TYPE_PERF_EVENT"
            subprocess.run([target_binary, "7"], check=True)
        subprocess.run([target_binary, "5"], check=True)
        assert K.lookup_u64(counter) == 7
    finally:
        prog.close()


def test_uprobe_pid_filter(counter, target_binary):
    prog = _prog(C.BPF_PROG_TYPE_KPROBE, K.counter_insns(counter))
    child = subprocess.Popen([target_binary, "6", "wait"], stdin=subprocess.PIPE)
    try:
        with links.attach_uprobe(prog, target_binary, "cf_target", pid=child.pid):
            subprocess.run([target_binary, "4"], check=True)  # another process: not counted
            assert child.stdin is not None
            child.stdin.write(b"x")
            child.stdin.close()
            assert child.wait() == 0
        assert K.lookup_u64(counter) == 6
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        prog.close()


def test_uprobe_missing_symbol(counter, target_binary):
    prog = _prog(C.BPF_PROG_TYPE_KPROBE, K.counter_insns(counter))
    try:
        with pytest.raises(AttachError, match="symbol 'no_such_fn' not found in"):
            links.attach_uprobe(prog, target_binary, "no_such_fn")
    finally:
        prog.close()


def test_uprobe_on_libc_by_name(counter, target_binary):
    """Library names resolve through ld.so.cache; the target calls strtol() (atoi) per run."""
    prog = _prog(C.BPF_PROG_TYPE_KPROBE, K.counter_insns(counter))
    try:
        link = links.attach_uprobe(prog, "libc.so.6", "strtol")
        try:
            for _ in range(3):
                subprocess.run([target_binary, "1"], check=True)
        finally:
            link.close()
        assert K.lookup_u64(counter) >= 3
    finally:
        prog.close()


def test_attach_program_uprobe_section(counter, target_binary):
    from coreframe.object.sections import parse_section

    prog = _prog(C.BPF_PROG_TYPE_KPROBE, K.counter_insns(counter))
    prog.section_def = parse_section(f"uretprobe/{target_binary}:cf_target")
    try:
        with links.attach_program(prog):
            subprocess.run([target_binary, "4"], check=True)
        assert K.lookup_u64(counter) == 4
    finally:
        prog.close()


# ---- perf event sampling --------------------------------------------------------------


def test_perf_event_sampling(counter):
    prog = _prog(C.BPF_PROG_TYPE_PERF_EVENT, K.counter_insns(counter))
    try:
        link = links.attach_perf_event(prog, frequency=1000)
        try:
            assert len(link.children) >= 1
            assert all(c.info()["type"] == "BPF_LINK_TYPE_PERF_EVENT" for c in link.children)
            end = time.monotonic() + 10
            while K.lookup_u64(counter) < 5 and time.monotonic() < end:
                sum(range(10000))
        finally:
            link.close()
        after = K.lookup_u64(counter)
        assert after >= 5
        sum(range(200000))
        assert K.lookup_u64(counter) == after
    finally:
        prog.close()


# ---- SEC() dispatch -------------------------------------------------------------------


@pytest.mark.parametrize("sec, hint", [
    ("xdp", "attach_xdp"), ("tc", "attach_tc"), ("uprobe", "attach_uprobe"),
    ("perf_event", "attach_perf_event"),
])
def test_attach_program_needs_explicit_call(counter, sec, hint):
    from coreframe.object.sections import parse_section

    sd = parse_section(sec)
    prog = _prog(sd.prog_type if sd.prog_type != C.BPF_PROG_TYPE_KPROBE
                 else C.BPF_PROG_TYPE_KPROBE, K.counter_insns(counter))
    prog.section_def = sd
    try:
        with pytest.raises(AttachError, match=hint):
            links.attach_program(prog)
    finally:
        prog.close()


def test_attach_program_tracepoint_section(counter):
    from coreframe.object.sections import parse_section

    prog = _prog(C.BPF_PROG_TYPE_TRACEPOINT, K.counter_insns(counter, pid=os.getpid()))
    prog.section_def = parse_section("tracepoint/syscalls/sys_enter_getpid")
    try:
        with links.attach_program(prog):
            raw_getpid(6)
        assert K.lookup_u64(counter) == 6
    finally:
        prog.close()


# ---- XDP and tc in a test network namespace ------------------------------------------

PORT = 47123


@pytest.fixture
def veth():
    if not shutil.which("ip"):
        pytest.skip("iproute2 not installed")
    with K.veth_netns("lk") as v:
        yield v


def _udp_prog(counter, kind: str) -> K.Prog:
    if kind == "xdp":
        insns = K.udp_counter_insns(counter, data_off=0, data_end_off=4, port=PORT, ret=2)
        return _prog(C.BPF_PROG_TYPE_XDP, insns)
    insns = K.udp_counter_insns(counter, data_off=76, data_end_off=80, port=PORT, ret=0)
    return _prog(C.BPF_PROG_TYPE_SCHED_CLS, insns)


@pytest.mark.parametrize("use_link", [True, False], ids=["link", "netlink"])
def test_xdp_counts_udp_in_netns(counter, veth, use_link):
    prog = _udp_prog(counter, "xdp")
    try:
        link = links.attach_xdp(prog, veth.ns_if, netns=veth.netns, use_link=use_link)
        try:
            assert link.kind == ("xdp" if use_link else "xdp (netlink)")
            K.send_udp(veth.host_addr, veth.ns_addr, PORT, 8)
            assert wait_for(lambda: K.lookup_u64(counter) >= 8)
        finally:
            link.close()
        K.send_udp(veth.host_addr, veth.ns_addr, PORT, 8)
        assert K.lookup_u64(counter) == 8
        out = subprocess.run(["ip", "-n", veth.netns, "link", "show", veth.ns_if],
                             capture_output=True, text=True, check=True).stdout
        assert "xdp" not in out
    finally:
        prog.close()


@pytest.mark.parametrize("use_link", [True, False], ids=["tcx", "netlink"])
def test_tc_ingress_counts_udp_in_netns(counter, veth, use_link):
    prog = _udp_prog(counter, "tc")
    try:
        link = links.attach_tc(prog, veth.ns_if, "ingress", netns=veth.netns, use_link=use_link)
        try:
            K.send_udp(veth.host_addr, veth.ns_addr, PORT, 6)
            assert wait_for(lambda: K.lookup_u64(counter) >= 6)
        finally:
            link.close()
        K.send_udp(veth.host_addr, veth.ns_addr, PORT, 6)
        assert K.lookup_u64(counter) == 6
        if not use_link:
            out = subprocess.run(["tc", "-n", veth.netns, "qdisc", "show", "dev", veth.ns_if],
                                 capture_output=True, text=True, check=True).stdout
            assert "clsact" not in out
    finally:
        prog.close()


def test_tc_egress_on_host_side(counter, veth):
    prog = _udp_prog(counter, "tc")
    try:
        with links.attach_tc(prog, veth.host_if, "egress"):
            K.send_udp(veth.host_addr, veth.ns_addr, PORT, 4)
            assert wait_for(lambda: K.lookup_u64(counter) >= 4)
        assert K.lookup_u64(counter) == 4
    finally:
        prog.close()


def test_unknown_interface(counter, veth):
    prog = _udp_prog(counter, "xdp")
    try:
        with pytest.raises(AttachError, match="no network interface 'veth9'"):
            links.attach_xdp(prog, "veth9", netns=veth.netns)
        with pytest.raises(AttachError, match="no network namespace"):
            links.attach_tc(prog, "veth9", netns="cf-no-such-netns")
    finally:
        prog.close()
