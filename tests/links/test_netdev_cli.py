"""`coreframe object load OBJECT --attach --ifname IF`: the object's XDP and tc
programs on the host end of a veth pair whose other end is in a test netns (both
made and removed here), UDP both ways counted by the programs (their counter map
read through its id while the command holds them), and nothing left on the
interface after the command ends (SIGTERM, Ctrl-C, --duration). Through BPF links
(XDP link, tcx) and, forced by COREFRAME_DISABLE_LINKS=xdp,tcx, through netlink.
"""

from __future__ import annotations

import os
import signal
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import evkit as K
import pytest

from coreframe import features
from coreframe.link.netns import in_netns
from coreframe.maps import Map
from coreframe.programs import Program
from coreframe.sys import bpf as sysbpf

pytestmark = [
    pytest.mark.kernel,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
]

ROOT = Path(__file__).resolve().parents[2]
OBJ = ROOT / "tests" / "objects" / "netdev_count.bpf.o"
COREFRAME = Path(sys.executable).with_name("coreframe")
PROGS = ("count_xdp", "count_tc_ingress", "count_tcx_egress")
SLOT = {"count_xdp": 0, "count_tc_ingress": 1, "count_tcx_egress": 2}
N = 40
PORT = 47123
# besides our datagrams an interface may see ARP and IPv6 neighbour discovery
SLACK = 20


@pytest.fixture
def veth():
    with K.veth_netns("cli") as v:
        yield v


def _start(ifname: str, *extra: str, env: dict[str, str] | None = None
           ) -> tuple[subprocess.Popen[str], dict[str, int], str]:
    """Start the command, wait until it is attached; the program ids it printed and
    its status line."""
    proc = subprocess.Popen([str(COREFRAME), "object", "load", str(OBJ), "--attach",
                             "--ifname", ifname, *extra], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **(env or {})})
    ids: dict[str, int] = {}
    assert proc.stdout is not None and proc.stderr is not None
    for _ in PROGS:
        line = proc.stdout.readline()
        name, _, rest = line.partition(" ")
        assert "loaded (id " in rest, line + proc.stderr.read()
        ids[name] = int(rest.split("loaded (id ")[1].rstrip(")\n"))
    status = proc.stderr.readline()
    assert "Attached 3 programs" in status, status
    return proc, ids, status


def _attached(ifname: str, netns_peer: str) -> list[str]:
    """What the kernel shows on the interface: XDP, qdiscs and tc filters, BPF links."""
    found = []
    link = subprocess.run(["ip", "-d", "link", "show", ifname], capture_output=True,
                          text=True, check=True).stdout
    if "xdp" in link.split("link/ether")[0] or "prog/xdp" in link:
        found.append("xdp")
    qd = subprocess.run(["tc", "qdisc", "show", "dev", ifname], capture_output=True,
                        text=True).stdout
    if "clsact" in qd:
        found.append("clsact")
    for d in ("ingress", "egress"):
        f = subprocess.run(["tc", "filter", "show", "dev", ifname, d], capture_output=True,
                           text=True).stdout
        if f.strip():
            found.append(f"tc {d} filter")
    return found


def _links_of(prog_ids: set[int]) -> list[int]:
    out, cur = [], 0
    while True:
        nxt = sysbpf.link_get_next_id(cur)
        if nxt is None:
            return out
        cur = nxt
        try:
            with sysbpf.link_get_fd_by_id(nxt) as fd:
                if sysbpf.link_info(fd).prog_id in prog_ids:
                    out.append(nxt)
        except OSError:
            continue


def _traffic(veth: K.VethNetns) -> None:
    K.send_udp(veth.host_addr, veth.ns_addr, PORT, N)      # out of the host end: egress
    with in_netns(veth.netns):
        K.send_udp(veth.ns_addr, veth.host_addr, PORT, N)  # into the host end: ingress


def _wait_for(pred: Callable[[], bool], limit: float = 10.0) -> None:
    """Poll until ``pred`` holds; a hang guard, not a timing assertion."""
    end = time.monotonic() + limit
    while not pred() and time.monotonic() < end:
        time.sleep(0.02)


def _counts(m: Map) -> list[int]:
    return [struct.unpack("<Q", m.raw.lookup(i))[0] for i in range(3)]


CASES = {
    "links-sigterm": ("", signal.SIGTERM, ("xdp", "tcx", "tcx")),
    "netlink-ctrl-c": ("xdp,tcx", signal.SIGINT, ("xdp (netlink)", "tc (netlink)",
                                                   "tc (netlink)")),
}


@pytest.mark.parametrize("case", list(CASES))
def test_attach_ifname_counts_traffic_and_detaches(veth: K.VethNetns, case: str) -> None:
    disable, sig, kinds = CASES[case]
    if not disable and not features.has_bpf_link():
        pytest.skip("kernel has no BPF links")
    proc, ids, status = _start(veth.host_if,
                       env={features.DISABLE_LINKS_ENV: disable} if disable else None)
    try:
        assert proc.stderr is not None
        with Program.from_id(ids["count_xdp"]) as prog:
            (map_id,) = prog.info().map_ids
        with Map.from_id(map_id) as m:
            before = _counts(m)
            _traffic(veth)
            # the receiving side runs in softirq context, maybe later on a busy machine
            _wait_for(lambda: min(map(int.__sub__, _counts(m), before)) >= N)
            while_attached = _attached(veth.host_if, veth.netns)
            proc.send_signal(sig)
            out, err = proc.communicate(timeout=30)
            assert proc.returncode == 0, err
            after = _counts(m)  # the command has detached: these are final
            for name in PROGS:
                seen = after[SLOT[name]] - before[SLOT[name]]
                assert N <= seen <= N + SLACK, (name, before, after)
            # detached: more traffic is not counted
            _traffic(veth)
            time.sleep(0.2)
            assert _counts(m) == after
        where = (f"{veth.host_if}", f"{veth.host_if} ingress", f"{veth.host_if} egress")
        assert status.strip().endswith(
            "(" + ", ".join(f"{kinds[i]} {where[i]}" for i in range(3)) + "). Ctrl-C to detach."
        ), status
        assert "Traceback" not in err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if disable:
        assert set(while_attached) >= {"xdp", "clsact", "tc ingress filter", "tc egress filter"}
    else:
        assert "xdp" in while_attached
    assert _attached(veth.host_if, veth.netns) == []
    assert _links_of(set(ids.values())) == []


def test_attach_ifname_duration_ends_detached(veth: K.VethNetns) -> None:
    r = subprocess.run([str(COREFRAME), "object", "load", str(OBJ), "--attach", "--ifname",
                        veth.host_if, "--duration", "0.5", "--json"], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "Attached 3 programs (xdp " in r.stderr
    assert _attached(veth.host_if, veth.netns) == []


@pytest.mark.parametrize("args, needle", [
    (("--attach", "--ifname", "cf-no-such0"),
     "--ifname cf-no-such0: no such network interface in this network namespace"),
    (("--ifname", "lo"), "--ifname lo needs --attach"),
])
def test_bad_ifname_is_one_line_exit_2_before_loading(args: tuple[str, ...],
                                                      needle: str) -> None:
    r = subprocess.run([str(COREFRAME), "object", "load", str(OBJ), *args],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert r.stderr.startswith(f"coreframe: error: {needle}") and r.stderr.count("\n") == 1
    assert r.stdout == ""  # nothing loaded, nothing reported
