"""The first-party tools load, attach and see a real event on this kernel, through every
attach method their probe offers here (tp_btf, raw_tp, tracepoint).

Each tool runs in a thread as ``coreframe run TOOL --json --attach METHOD`` would;
once it says it is tracing, the test makes the event happen and waits for the
JSON line (streaming tools) or stops it and reads the summary (counting tools).
On the host (no kprobes, no trampolines) and in the 6.1/6.12 guests alike, the
auto pick must work; a method the probe rules out is skipped with its reason.
"""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from coreframe_plugins.biolatency import BioLatency
from coreframe_plugins.biosnoop import BioSnoop
from coreframe_plugins.cpudist import CpuDist
from coreframe_plugins.exitsnoop import ExitSnoop
from coreframe_plugins.killsnoop import KillSnoop
from coreframe_plugins.opensnoop import OpenSnoop
from coreframe_plugins.runqlat import RunqLat
from coreframe_plugins.syscount import SysCount
from coreframe_plugins.tcpconnect import TcpConnect
from coreframe_plugins.tcplife import TcpLife
from kernkit import IN_GUEST

from coreframe.options import parse
from coreframe.tool import RunContext, choose_attach

pytestmark = pytest.mark.kernel

READY_WAIT = 300.0      # generous caps for slow emulated guests; never asserted as timings
EVENT_WAIT = 120.0


class _Status(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.ready = threading.Event()

    def write(self, s: str) -> int:
        if "Tracing" in s:
            self.ready.set()
        return super().write(s)


def _run(tool: Any, args: list[str], act: Callable[[], Any],
         done: Callable[[list[dict[str, Any]], Any], bool], stop_first: bool) -> list[dict]:
    opts = parse(tool.params() + [*_json_opt()], [*args, "--json"])
    assert opts is not None, args
    out, err = io.StringIO(), _Status()
    ctx = RunContext(out=out, err=err)
    t = tool(**opts)
    ctx.tool = t
    failure: list[BaseException] = []

    def run() -> None:
        try:
            t.run(ctx)
        except BaseException as e:  # noqa: BLE001 - reported by the test thread
            failure.append(e)
            err.ready.set()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        assert err.ready.wait(READY_WAIT), f"{tool.name} never started tracing"
        assert not failure, failure
        truth = act()
        if not stop_first:
            end = time.monotonic() + EVENT_WAIT
            while time.monotonic() < end and not done(_records(out), truth):
                time.sleep(0.05)
    finally:
        ctx.stop_event.set()
        thread.join(READY_WAIT)
    assert not failure, failure
    records = _records(out)
    assert done(records, truth), f"{tool.name} {args}: {out.getvalue()[-1500:]}"
    return records


def _json_opt() -> list[Any]:
    from coreframe.options import Option

    return [Option("--json", "as_json", is_flag=True)]


def _records(out: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.getvalue().splitlines() if line.strip()]


def _methods(tool: Any) -> list[str]:
    return ["auto", *getattr(__import__(tool.__module__, fromlist=["PROGRAMS"]),
                             "PROGRAMS", {})]


def _usable(tool: Any, method: str) -> None:
    if method == "auto":
        return
    module = __import__(tool.__module__, fromlist=["ATTACH"])
    choice = choose_attach([c for c in module.ATTACH if c[0] == method])
    if choice.method is None:
        if IN_GUEST:
            pytest.fail(f"{tool.name} --attach {method} unavailable in the guest: "
                        f"{choice.detail}")
        pytest.skip(f"{method}: {choice.detail}")


def _cases() -> list[Any]:
    cases = []
    for tool in (ExitSnoop, SysCount, RunqLat, CpuDist, BioLatency, BioSnoop, TcpLife,
                 TcpConnect):
        for method in _methods(tool):
            cases.append(pytest.param(tool, method, id=f"{tool.name}-{method}"))
    for tool in (OpenSnoop, KillSnoop):
        cases.append(pytest.param(tool, "auto", id=f"{tool.name}-auto"))
    return cases


def _loopback_session() -> tuple[int, int]:
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    port = srv.getsockname()[1]
    cli = socket.create_connection(("127.0.0.1", port))
    acc, _ = srv.accept()
    cli.sendall(b"x" * 100)
    acc.recv(100)
    sport = cli.getsockname()[1]
    cli.close()
    acc.close()
    srv.close()
    return sport, port


@pytest.fixture
def loopdev(tmp_path: Any) -> Any:
    """A loop device on a scratch file (the guests have no disk: their root is 9p)."""
    subprocess.run(["modprobe", "loop"], capture_output=True, check=False)
    backing = tmp_path / "cf-kern-loop.img"
    with open(backing, "wb") as f:
        f.truncate(16 << 20)
    made = subprocess.run(["losetup", "-f", "--show", str(backing)], capture_output=True,
                          text=True, check=False)
    if made.returncode != 0:
        pytest.skip(f"no loop device for block I/O: {made.stderr.strip()}")
    dev = made.stdout.strip()
    try:
        yield dev
    finally:
        subprocess.run(["losetup", "-d", dev], check=False)


def _direct_io(dev: str) -> Callable[[], str]:
    """O_DIRECT writes of 4 KiB to the loop device: one request each."""
    import mmap

    def act() -> str:
        buf = mmap.mmap(-1, 4096)
        fd = os.open(dev, os.O_WRONLY | os.O_DIRECT)
        try:
            for i in range(8):
                os.pwrite(fd, buf, i * 4096)
        finally:
            os.close(fd)
        return os.path.basename(dev)

    return act


@pytest.mark.parametrize("tool,method", _cases())
def test_tool_sees_events(tool: Any, method: str, request: Any) -> None:
    _usable(tool, method)
    _check_tool(tool, method, request)
    if method == "auto":
        module = __import__(tool.__module__, fromlist=["ATTACH"])
        picked = choose_attach(module.ATTACH).method if hasattr(module, "ATTACH") else None
        method = f"auto: {picked}" if picked else "auto"
    request.node.user_properties.append(("tool", f"{tool.name} ({method})"))


def _check_tool(tool: Any, method: str, request: Any) -> None:
    attach = [] if tool in (OpenSnoop, KillSnoop) else ["--attach", method]
    me = str(os.getpid())
    if tool is OpenSnoop:
        marker = f"/nonexistent-cf-kern-{uuid.uuid4().hex[:8]}"

        def act() -> str:
            try:
                os.open(marker, os.O_RDONLY)
            except OSError:
                pass
            return marker

        _run(tool, ["-p", me], act,
             lambda rs, m: any(r.get("path") == m and r["err"] == 2 for r in rs), False)
    elif tool is ExitSnoop:
        def act() -> int:
            return subprocess.run(["sh", "-c", "exit 7"], check=False).returncode

        _run(tool, attach, act,
             lambda rs, _: any(r["comm"] == "sh" and r["exit_code"] == 7 for r in rs), False)
    elif tool is KillSnoop:
        _run(tool, ["-p", me], lambda: os.kill(os.getpid(), 0),
             lambda rs, _: any(r["sig"] == 0 and r["tpid"] == int(me) for r in rs), False)
    elif tool is SysCount:
        def act() -> None:
            for _ in range(300):
                os.getppid()

        _run(tool, [*attach, "-p", me], act,
             lambda rs, _: any(r["syscall"] == "getppid" and r["count"] >= 300 for r in rs),
             True)
    elif tool in (RunqLat, CpuDist):
        def act() -> None:
            for _ in range(50):
                time.sleep(0.002)

        _run(tool, [*attach, "-p", me], act,
             lambda rs, _: sum(x["count"] for r in rs for x in r["hist"]) >= 20, True)
    elif tool is BioLatency:
        dev = request.getfixturevalue("loopdev")
        _run(tool, [*attach, "-D"], _direct_io(dev),
             lambda rs, disk: sum(x["count"] for r in rs if r["disk"] == disk
                                  for x in r["hist"]) == 8, True)
    elif tool is BioSnoop:
        dev = request.getfixturevalue("loopdev")
        _run(tool, [*attach, "-d", os.path.basename(dev)], _direct_io(dev),
             lambda rs, disk: [(r["disk"], r["bytes"]) for r in rs] == [(disk, 4096)] * 8,
             False)
    elif tool is TcpLife:
        _run(tool, [*attach, "-p", me], _loopback_session,
             lambda rs, ports: {(r["lport"], r["rport"]) for r in rs} >= {ports}, False)
    elif tool is TcpConnect:
        _run(tool, [*attach, "-p", me], _loopback_session,
             lambda rs, ports: any((r["sport"], r["dport"]) == ports for r in rs), False)
