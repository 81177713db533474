"""Cleanup under faults: signals, SIGKILL, handler exceptions and many load cycles.

Other suites load programs concurrently, so every check looks at the ids this
test created (by unique program name, or from its own fdinfo), never at global
counts.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hardkit
import pytest

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
    pytest.mark.skipif(not hardkit.have_clang(), reason="needs clang and bpf/vmlinux.h"),
]

BPFFS = Path("/sys/fs/bpf")


@pytest.fixture(scope="module")
def objdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("hard_cleanup")


def _bpffs_entries() -> set[str]:
    return set(os.listdir(BPFFS)) if BPFFS.is_dir() else set()


def _start(argv: list[str], banner: str) -> subprocess.Popen[str]:
    """Start the console script; return once its post-attach banner is on stderr."""
    env = dict(os.environ, XDG_CACHE_HOME=hardkit.CACHE_HOME)
    proc = subprocess.Popen([str(hardkit.COREFRAME), *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, cwd="/")
    assert proc.stderr is not None
    line = proc.stderr.readline()
    if banner not in line:
        out, err = proc.communicate(timeout=60)
        pytest.fail(f"did not attach: {line}{err}{out}")
    return proc


def _start_attached(obj: Path) -> subprocess.Popen[str]:
    return _start(["object", "load", str(obj), "--attach"], "Attached")


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_detaches_and_exits_cleanly(objdir: Path, signum: int) -> None:
    name = "hs_" + secrets.token_hex(4)
    obj = hardkit.build(objdir, name, prog=name)
    before = _bpffs_entries()
    proc = _start_attached(obj)
    ids = hardkit.progs_named(name)
    assert len(ids) == 1
    held = hardkit.own_bpf_ids(proc.pid)
    assert ids <= held["prog_id"] and held["link_id"]
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert f"loaded (id {next(iter(ids))})" in out
    assert not hardkit.wait_gone(ids, hardkit.prog_ids)
    assert not hardkit.wait_gone(held["link_id"], hardkit.link_ids)
    assert _bpffs_entries() <= before


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize(("argv", "banner"), [
    (["run", "execsnoop"], "Tracing exec"),
    (["run", "readhist", "--method", "tracepoint"], "Tracing vfs_read"),
], ids=["execsnoop", "readhist"])
def test_tool_stops_on_signal_and_releases(argv: list[str], banner: str, signum: int) -> None:
    before = _bpffs_entries()
    proc = _start(argv, banner)
    held = hardkit.own_bpf_ids(proc.pid)
    assert held["prog_id"]
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert not hardkit.wait_gone(held["prog_id"], hardkit.prog_ids)
    assert not hardkit.wait_gone(held["link_id"], hardkit.link_ids)
    assert _bpffs_entries() <= before


@pytest.mark.parametrize("pinned", [False, True], ids=["no-pinning", "pin-by-name"])
def test_sigkill_leaves_only_requested_pins(objdir: Path, pinned: bool) -> None:
    if not BPFFS.is_dir() or not os.path.ismount(BPFFS):
        pytest.skip("bpffs is not mounted at /sys/fs/bpf")
    token = secrets.token_hex(4)
    name, pin = "hk_" + token, "hard_pin_" + token
    obj = hardkit.build(objdir, name, prog=name, pin=pin if pinned else None)
    before = _bpffs_entries()
    proc = _start_attached(obj)
    try:
        ids = hardkit.progs_named(name)
        assert len(ids) == 1
        proc.kill()
        proc.communicate(timeout=60)
        assert proc.returncode == -signal.SIGKILL
        assert not hardkit.wait_gone(ids, hardkit.prog_ids)
        new = _bpffs_entries() - before
        mine = {e for e in new if token in e or e.startswith(("hard_", ".rodata", ".bss"))}
        assert mine == ({pin} if pinned else set())
    finally:
        if (BPFFS / pin).exists():
            os.unlink(BPFFS / pin)


class _Boom(RuntimeError):
    pass


def test_handler_exception_releases_everything() -> None:
    """An exception in a plugin's event callback unwinds through its context managers."""
    from coreframe_plugins.execsnoop import ExecSnoop

    from coreframe.tool import RunContext

    seen: dict[str, set[int]] = {}

    class Exploding(ExecSnoop):
        @classmethod
        def object_path(cls) -> Path:
            return ExecSnoop.object_path()

        def _on_record(self, rec: memoryview) -> None:
            seen.update(hardkit.own_bpf_ids())
            raise _Boom("handler failed")

    stop = threading.Event()

    def workload() -> None:
        while not stop.is_set():
            subprocess.run(["/bin/true"], check=False)
            stop.wait(0.05)

    fds_before = _baseline()
    options: dict[str, Any] = {p.name: p.default for p in ExecSnoop.params()}
    options["as_json"] = True
    tool = Exploding(**options)
    devnull = open(os.devnull, "w")  # noqa: SIM115
    thread = threading.Thread(target=workload, daemon=True)
    thread.start()
    try:
        with pytest.raises(_Boom):
            tool.run(RunContext(out=devnull, err=devnull, duration=60))
    finally:
        stop.set()
        thread.join()
        devnull.close()
    assert seen["prog_id"], "the handler never ran"
    assert hardkit.open_fds() == fds_before
    assert not hardkit.own_bpf_ids()["prog_id"]
    assert not hardkit.wait_gone(seen["prog_id"], hardkit.prog_ids)
    assert not hardkit.wait_gone(seen["link_id"], hardkit.link_ids)


def _baseline() -> int:
    from coreframe import features
    from coreframe.btf import kernel

    kernel.vmlinux()  # per-process caches (the kernel BTF file stays open) are not leaks
    features.has_ringbuf()
    return hardkit.open_fds()


def test_failed_load_releases_what_was_created(objdir: Path) -> None:
    """The second program is refused (no such BTF target): maps and program 1 are closed."""
    import coreframe
    from coreframe.errors import Error

    name = "hf_" + secrets.token_hex(4)
    obj = hardkit.build(objdir, name, prog=name, sec2="tp_btf/no_such_tracepoint_xyz")
    spec = coreframe.open(str(obj))
    fds = _baseline()
    with pytest.raises(Error, match="no_such_tracepoint_xyz"):
        spec.load()
    assert hardkit.open_fds() == fds
    assert not hardkit.own_bpf_ids()["prog_id"] and not hardkit.own_bpf_ids()["map_id"]
    assert not hardkit.wait_gone(hardkit.progs_named(name), hardkit.prog_ids)


def test_failed_attach_detaches_the_ones_already_attached(objdir: Path) -> None:
    """Program 1 attaches, program 2 (uprobe on a missing symbol) fails: link 1 is closed."""
    import coreframe
    from coreframe.errors import Error

    name = "ha_" + secrets.token_hex(4)
    obj = hardkit.build(objdir, name, prog=name, sec2="uprobe//bin/true:no_such_symbol_xyz")
    spec = coreframe.open(str(obj))
    fds = _baseline()
    with spec.load() as loaded:
        with_progs = hardkit.open_fds()
        with pytest.raises(Error, match="no_such_symbol_xyz"):
            loaded.attach()
        assert hardkit.open_fds() == with_progs
        assert not hardkit.own_bpf_ids()["link_id"]
        assert not loaded.links
    assert hardkit.open_fds() == fds


def _cycle(spec: Any, with_ring: bool) -> None:
    from coreframe.ringbuf import RingBuffer

    with spec.load() as obj:
        obj.attach()
        if with_ring:
            with RingBuffer(obj.maps.hard_ring, lambda rec: None) as rb:
                rb.poll(0)


@pytest.fixture
def warm_cycles(objdir: Path) -> Iterator[Any]:
    import coreframe

    def make(sec: str) -> Any:
        name = "hc_" + secrets.token_hex(4)
        return coreframe.open(str(hardkit.build(objdir, name, prog=name, sec=sec))), name

    yield make


@pytest.mark.parametrize(("sec", "cycles"), [("raw_tp/sys_enter", 1000),
                                              ("tracepoint/syscalls/sys_enter_getppid", 60)],
                         ids=["raw_tp-1000", "tracepoint-perf-link-60"])
def test_load_attach_close_cycles_stay_flat(warm_cycles: Any, sec: str, cycles: int) -> None:
    """fds return exactly to the start; RSS settles (allocator noise only)."""
    spec, name = warm_cycles(sec)
    for _ in range(20):  # warm caches (kernel BTF, features) before measuring
        _cycle(spec, True)
    fds, rss = hardkit.open_fds(), hardkit.rss_kib()
    for _ in range(cycles):
        _cycle(spec, True)
    assert hardkit.open_fds() == fds
    assert hardkit.rss_kib() - rss < 8 * 1024, "RSS grew by more than 8 MiB"
    assert not hardkit.wait_gone(hardkit.progs_named(name), hardkit.prog_ids)
