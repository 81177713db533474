"""killsnoop against libbpf-tools' killsnoop on kill(), tkill() and tgkill() calls with
known signals, targets and results (a helper sends them; both trace it by PID)."""

from __future__ import annotations

import platform
import textwrap

from oracle import helper, oracle
from tool_proc import ToolProcess

TKILL_NR = {"x86_64": 200, "aarch64": 130}.get(platform.machine(), 0)

# kill() of a child (SIGTERM) and of a pid that does not exist (SIGKILL, ESRCH),
# tgkill() of itself with 0 (pthread_kill), tkill() of itself with 0.
SENDER = textwrap.dedent("""
    import ctypes, os, signal, sys, threading, time
    nr = int(sys.argv[1])
    child = os.fork()
    if child == 0:
        time.sleep(60)
        os._exit(0)
    sys.stdin.readline()
    os.kill(child, signal.SIGTERM)
    os.waitpid(child, 0)
    try:
        os.kill(2**22 + 12345, signal.SIGKILL)   # above pid_max's ceiling: no such process
    except ProcessLookupError:
        pass
    signal.pthread_kill(threading.get_ident(), 0)
    if nr:
        ctypes.CDLL(None).syscall(nr, threading.get_native_id(), 0)
    print(child, flush=True)
    sys.stdin.readline()
""")


def _rows(lines: list[str], pid: int) -> list[list[str]]:
    """PID COMM SIG TPID RESULT of the helper's calls (TIME dropped: each tool reads
    its own clock, which may tick over between the two)."""
    return [line.split()[1:] for line in lines[1:] if line.split()[1:2] == [str(pid)]]


def test_kills_equal_libbpf_tools(need_root: None) -> None:
    with helper(SENDER, str(TKILL_NR)) as h:
        pid = str(h.pid)
        with ToolProcess(["killsnoop", "-p", pid]) as ours, \
                oracle("killsnoop", "-p", pid, header="TIME") as theirs:
            child = h.step()
            n = 4 if TKILL_NR else 3
            for tracer in (ours, theirs):
                assert tracer.wait_stdout(lambda ls: len(_rows(ls, h.pid)) >= n, timeout=30)
                assert tracer.stop() == 0
        mine, want = _rows(ours.stdout, h.pid), _rows(theirs.stdout, h.pid)
    assert ours.stdout[0] == theirs.stdout[0]     # TIME PID COMM SIG TPID RESULT
    assert mine == want
    expect = [[pid, "python", "15", child, "0"], [pid, "python", "9", str(2**22 + 12345), "-3"],
              [pid, "python", "0", pid, "0"]]
    if TKILL_NR:
        expect.append([pid, "python", "0", pid, "0"])
    assert mine == expect


def test_signal_filter_names_json(need_root: None) -> None:
    with helper(SENDER, str(TKILL_NR)) as h, \
            ToolProcess(["killsnoop", "-p", str(h.pid), "-s", "9,15", "-x", "--json"]) as ours:
        h.step()
        assert ours.wait_text('"sig":9', timeout=30)
        assert ours.stop() == 0
        got = ours.json_records()
    assert [(e["sig"], e["ret"], e["syscall"]) for e in got] == [(9, -3, "kill")]
    assert list(got[0]) == ["time", "pid", "comm", "sig", "tpid", "tgid", "syscall", "ret"]
    with helper(SENDER, str(TKILL_NR)) as h, \
            ToolProcess(["killsnoop", "-p", str(h.pid), "-n"]) as ours:
        h.step()
        assert ours.wait_text("SIGKILL", timeout=30)
        assert ours.stop() == 0
    assert [line.split()[3] for line in ours.stdout[1:3]] == ["SIGTERM", "SIGKILL"]
