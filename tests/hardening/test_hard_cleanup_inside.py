"""SIGINT/SIGTERM cleanup seen while the process is still alive.

Checking ids after the process exited proves nothing about the signal path: when a
process dies, the kernel drops its fds and frees its links and programs anyway, so
a handler that simply exited would pass. Here the CLI runs inside a small Python
driver: when ``main()`` returns after the signal, the driver reports which BPF
objects its own fds still refer to and then blocks; the test checks, while it is
blocked, that the kernel no longer lists the programs and links it had attached.
Only then is the driver let go.
"""

from __future__ import annotations

import json
import os
import secrets
import select
import signal
import subprocess
import sys
from pathlib import Path

import hardkit
import pytest

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
    pytest.mark.skipif(not hardkit.have_clang(), reason="needs clang and bpf/vmlinux.h"),
]

# argv: report fd, then the CLI arguments. Reports {"code": exit code, "held": ids}
# on the report fd once main() has returned, then waits for stdin to close.
DRIVER = r"""
import json, os, sys
from coreframe.cli import main

report = int(sys.argv[1])
code = None
try:
    main(sys.argv[2:])
except SystemExit as e:
    code = e.code
held = {"prog_id": [], "link_id": []}
for fd in os.listdir("/proc/self/fdinfo"):
    try:
        with open(f"/proc/self/fdinfo/{fd}") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in held:
                    held[key].append(int(value))
    except OSError:
        pass
os.write(report, (json.dumps({"code": code, "held": held}) + "\n").encode())
os.close(report)
sys.stdin.read()
sys.exit(code or 0)
"""


@pytest.fixture(scope="module")
def objdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("hard_cleanup_inside")


def _read_report(fd: int, proc: subprocess.Popen[str]) -> dict:
    buf = b""
    while not buf.endswith(b"\n"):
        ready, _, _ = select.select([fd], [], [], 60)
        if not ready:
            pytest.fail("no cleanup report within 60 s of the signal")
        chunk = os.read(fd, 4096)
        if not chunk:
            proc.wait(timeout=60)
            pytest.fail("the process ended without returning from main() after the signal "
                        f"(exit status {proc.returncode}): its cleanup never ran in-process")
        buf += chunk
    return json.loads(buf)


def _check_signal_cleanup(argv: list[str], banner: str, signum: int) -> None:
    r, w = os.pipe()
    env = dict(os.environ, XDG_CACHE_HOME=hardkit.CACHE_HOME)
    # stdout to /dev/null: event lines from other processes' execs must never fill a pipe
    # nobody reads while the test waits
    proc = subprocess.Popen([sys.executable, "-c", DRIVER, str(w), *argv], pass_fds=(w,),
                            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, env=env, cwd="/")
    os.close(w)
    try:
        assert proc.stderr is not None and proc.stdin is not None
        line = proc.stderr.readline()
        if banner not in line:
            proc.kill()
            pytest.fail(f"did not attach: {line}{proc.stderr.read()}")
        attached = hardkit.own_bpf_ids(proc.pid)
        assert attached["prog_id"] and attached["link_id"]
        proc.send_signal(signum)
        report = _read_report(r, proc)
        assert report["code"] in (0, None), report
        assert not report["held"]["prog_id"] and not report["held"]["link_id"], report
        # the process is alive (blocked on stdin): only its own cleanup can have freed these
        assert proc.poll() is None
        assert not hardkit.wait_gone(attached["link_id"], hardkit.link_ids)
        assert not hardkit.wait_gone(attached["prog_id"], hardkit.prog_ids)
        assert proc.poll() is None
        proc.stdin.close()
        proc.wait(timeout=60)
        err = proc.stderr.read()
        assert proc.returncode == 0, err
        assert "Traceback" not in err
    finally:
        os.close(r)
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_object_load_attach_cleans_up_before_exit(objdir: Path, signum: int) -> None:
    name = "hi_" + secrets.token_hex(4)
    obj = hardkit.build(objdir, name, prog=name)
    _check_signal_cleanup(["object", "load", str(obj), "--attach"], "Attached", signum)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize(("argv", "banner"), [
    (["run", "execsnoop"], "Tracing exec"),
    (["run", "readhist", "--method", "tracepoint"], "Tracing vfs_read"),
], ids=["execsnoop", "readhist"])
def test_tool_cleans_up_before_exit(argv: list[str], banner: str, signum: int) -> None:
    _check_signal_cleanup(argv, banner, signum)
