"""Issue 6: `coreframe run execsnoop` checked end to end through the console script.

Every test starts the real CLI as a subprocess, waits for its "Tracing" line
(printed once the programs are attached), triggers real exec()s and stops the
tracer with SIGINT, as a user at a terminal would.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tool_proc import WAIT_S, ToolProcess, cgroup2_root, run_quiet, unique

LIBBPF_EXECSNOOP = "/usr/sbin/execsnoop"
STORM_N = 2000
STORM_ARGS = 24      # more than MAX_ARGS: long commands get cut
STORM_ARGLEN = 160   # longer than the 128-byte argument limit
STORM_FAIL_EVERY = 10
MAX_ARGS = 12
ARGSIZE = 128
# exec() entry -> exit seen by BPF vs vfork() -> waitpid() seen by the driver: the gap is
# the driver's own fork/reap latency, which a busy 2-CPU VM can stretch a lot.
LIFETIME_SLACK_NS = 1_000_000_000
LIFETIME_MEDIAN_SLACK_NS = 50_000_000  # typically well under 1 ms

pytestmark = pytest.mark.usefixtures("need_root")


def _storm(storm_exe: Path, out: Path, n: int = STORM_N) -> dict[str, Any]:
    subprocess.run([str(storm_exe), "-n", str(n), "-j", "2", "-a", str(STORM_ARGS),
                    "-l", str(STORM_ARGLEN), "-f", str(STORM_FAIL_EVERY), "-o", str(out)],
                   check=True, stderr=subprocess.DEVNULL)
    return json.loads(out.read_text())


def _expected_args(kid: dict[str, Any]) -> tuple[list[str], bool]:
    """argv as execsnoop must show it: at most MAX_ARGS strings of at most 127 bytes."""
    i, path = kid["i"], kid["path"]
    if kid["kind"] == "fail":
        return [path], False
    if kid["kind"] == "short":
        return [path, "storm", str(i)], False
    full = [path] + [f"{i}.{j}.".ljust(STORM_ARGLEN, "x") for j in range(1, STORM_ARGS + 1)]
    return [a[: ARGSIZE - 1] for a in full[:MAX_ARGS]], True


def _check_storm(records: list[dict[str, Any]], run: dict[str, Any]) -> None:
    """Each storm child: one exec event and (if exec worked) one exit event, all fields right."""
    kids = {c["pid"]: c for c in run["children"]}
    assert len(kids) == run["n"] == STORM_N
    mine = [r for r in records if r.get("pid") in kids]
    counts = Counter((r["pid"], r["event"]) for r in mine)
    execs = {r["pid"]: r for r in mine if r["event"] == "exec"}
    exits = {r["pid"]: r for r in mine if r["event"] == "exit"}
    missing_exec = sorted(set(kids) - set(execs))
    want_exits = {p for p, c in kids.items() if c["kind"] != "fail"}
    missing_exit = sorted(want_exits - set(exits))
    assert not missing_exec, f"{len(missing_exec)} execs not reported, e.g. {missing_exec[:5]}"
    assert not missing_exit, f"{len(missing_exit)} exits not reported, e.g. {missing_exit[:5]}"
    assert set(exits) == want_exits, "an exit was reported for a failed exec()"
    dupes = [k for k, n in counts.items() if n != 1]
    assert not dupes, f"reported more than once: {dupes[:5]}"

    for pid, ev in execs.items():
        kid = kids[pid]
        args, truncated = _expected_args(kid)
        assert ev["ppid"] == run["ppid"] and ev["uid"] == os.getuid(), ev
        assert ev["filename"] == kid["path"], ev
        assert ev["args"] == args, (kid, ev["args"])
        assert ev["args_truncated"] is truncated, ev
        if kid["kind"] == "fail":
            assert kid["exec_errno"] == errno.ENOENT
            assert ev["retval"] == -errno.ENOENT == -2 and ev["comm"] == "storm", ev
        else:
            assert ev["retval"] == 0 and ev["comm"] == "true", ev

    for pid, ex in exits.items():
        kid, ev = kids[pid], execs[pid]
        assert ex["ppid"] == run["ppid"] and ex["uid"] == os.getuid(), ex
        assert ex["comm"] == "true" and ex["exit_code"] == kid["exit_code"] == 0, ex
        assert ex["signal"] == 0 and ex["core_dumped"] is False, ex
        # The lifetime runs from this process's exec() entry to its exit ...
        assert abs(ex["time"] - ex["duration_ns"] / 1e9 - ev["time"]) < 1e-5, (ev, ex)
        # ... so it lies inside the driver's vfork() -> waitpid() window, close to its end.
        assert 0 < ex["duration_ns"] <= kid["lifetime_ns"], (kid, ex)
        assert kid["lifetime_ns"] - ex["duration_ns"] < LIFETIME_SLACK_NS, (kid, ex)
    gaps = sorted(kids[p]["lifetime_ns"] - ex["duration_ns"] for p, ex in exits.items())
    assert gaps[len(gaps) // 2] < LIFETIME_MEDIAN_SLACK_NS, gaps[len(gaps) // 2]


def _no_losses(tracer: ToolProcess, records: list[dict[str, Any]]) -> None:
    assert not [line for line in tracer.stderr if "Lost" in line], tracer.stderr
    assert not [r for r in records if r.get("event") == "lost"]


@pytest.mark.parametrize("buffer", ["ringbuf", "perf"])
def test_storm_every_exec_and_exit_once(buffer: str, storm_exe: Path, tmp_path: Path) -> None:
    """N >= 2000 execs as fast as the driver can: all reported once, nothing lost."""
    args = ["execsnoop", "--json", "-x", "--exits", "--max-args", str(MAX_ARGS)]
    with ToolProcess([*args, "--buffer", buffer]) as tracer:
        run = _storm(storm_exe, tmp_path / "storm.json")
        # Ctrl-C right away: whatever is still in the buffer must be drained, not dropped.
        assert tracer.stop(signal.SIGINT) == 0, tracer.stderr
    records = tracer.json_records()
    _no_losses(tracer, records)
    _check_storm(records, run)


def _voluntary_switches(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("voluntary_ctxt_switches:"):
            return int(line.split()[1])
    raise AssertionError("no voluntary_ctxt_switches in /proc/PID/status")


def test_storm_is_read_in_batches(storm_exe: Path, tmp_path: Path) -> None:
    """Under an exec() storm the reader sleeps between batches instead of waking per event.

    Woken once per event (its old way, and libbpf-tools'), the tracer would block at
    least once per exec(); batching leaves a few per LINGER_S however fast execs come.
    """
    with ToolProcess(["execsnoop", "-x"]) as tracer:
        before = _voluntary_switches(tracer.proc.pid)
        run = _storm(storm_exe, tmp_path / "storm.json")
        end = unique("batch-end")
        run_quiet(["/bin/true", end])
        assert tracer.wait_text(end)
        switches = _voluntary_switches(tracer.proc.pid) - before
        assert tracer.stop() == 0
    # the PID column sits after the 16-wide PCOMM one (a comm may contain spaces)
    printed = {ln[17:23].strip() for ln in tracer.stdout[1:]}
    assert {str(kid["pid"]) for kid in run["children"]} <= printed
    assert switches < STORM_N / 2, f"{switches} wake-ups for {STORM_N} execs"


@pytest.fixture
def cgroup_dir() -> Iterator[Path]:
    """A fresh cgroup v2 directory, removed after the test (its processes have exited)."""
    root = cgroup2_root()
    if root is None:
        pytest.skip("no cgroup v2 hierarchy mounted")
    path = root / unique("cg")
    path.mkdir()
    try:
        yield path
    finally:
        path.rmdir()


@pytest.mark.parametrize("buffer", ["ringbuf", "perf"])
def test_sigint_drains_pending_events(buffer: str, cgroup_dir: Path) -> None:
    """Events still in the buffer when Ctrl-C arrives are printed before exiting.

    The tracer is stopped (SIGSTOP) while the execs happen and gets SIGINT before
    it runs again, so every one of those events is pending at that moment. The
    cgroup filter keeps other processes' execs from filling the buffer meanwhile.
    """
    marker = unique("drain")
    procs = cgroup_dir / "cgroup.procs"

    def join_cgroup() -> None:
        procs.write_text(str(os.getpid()))

    with ToolProcess(["execsnoop", "--json", "--exits", "--buffer", buffer,
                      "--cgroup", str(cgroup_dir)]) as tracer:
        os.kill(tracer.proc.pid, signal.SIGSTOP)
        try:
            pids = []
            for k in range(50):
                child = subprocess.Popen(["/bin/true", marker, str(k)],
                                         preexec_fn=join_cgroup)
                child.wait()
                pids.append(child.pid)
            os.kill(tracer.proc.pid, signal.SIGINT)
        finally:
            os.kill(tracer.proc.pid, signal.SIGCONT)
        assert tracer.wait() == 0, tracer.stderr
    records = tracer.json_records()
    _no_losses(tracer, records)
    execs = [r for r in records if r["event"] == "exec" and marker in r["args"]]
    # sorted: a perf buffer is read CPU by CPU, so its events are not in global order
    assert (sorted((r["pid"], r["args"][2]) for r in execs)
            == sorted((p, str(k)) for k, p in enumerate(pids)))
    exits = sorted(r["pid"] for r in records if r["event"] == "exit")
    assert exits == sorted(pids)


def _bpf_fds(pid: int) -> tuple[int, list[str]]:
    """(BPF programs process ``pid`` holds, tracepoints its BPF links attach), from /proc."""
    progs, tracepoints = 0, []
    fd_dir = Path(f"/proc/{pid}/fd")
    for fd in fd_dir.iterdir():
        try:
            kind = os.readlink(fd)
            info = Path(f"/proc/{pid}/fdinfo/{fd.name}").read_text()
        except OSError:  # closed meanwhile
            continue
        if kind == "anon_inode:bpf-prog":
            progs += 1
        elif kind == "anon_inode:bpf_link":
            fields = dict(line.split(":\t", 1) for line in info.splitlines() if ":\t" in line)
            tracepoints.append(fields.get("tp_name", "?"))
    return progs, sorted(tracepoints)


EXEC_TRACEPOINTS = ["sys_enter_execve", "sys_enter_execveat", "sys_exit_execve",
                    "sys_exit_execveat"]


@pytest.mark.parametrize("exits", [False, True], ids=["default", "exits"])
def test_exit_program_only_with_exits(exits: bool) -> None:
    """Without -e the exit program is neither loaded nor attached, and no exit is reported."""
    marker = unique("exitprog")
    args = ["execsnoop", "--json"] + (["--exits"] if exits else [])
    with ToolProcess(args) as tracer:
        progs, tracepoints = _bpf_fds(tracer.proc.pid)
        child = subprocess.Popen(["/bin/sh", "-c", "exit 3", marker])
        assert child.wait() == 3
        assert tracer.wait_text(marker)
        if exits:
            exit_line = '"event":"exit","time":'
            assert tracer.wait_stdout(lambda ls: any(
                exit_line in ln and f'"pid":{child.pid},' in ln for ln in ls))
        assert tracer.stop() == 0
    want = sorted(EXEC_TRACEPOINTS + (["sched_process_exit"] if exits else []))
    assert progs == len(want)
    if "?" in tracepoints:  # older kernels do not name a perf link's tracepoint in fdinfo
        assert len(tracepoints) == len(want)
    else:
        assert tracepoints == want
    records = tracer.json_records()
    [ev] = [r for r in records if r["event"] == "exec" and marker in r["args"]]
    assert ev["pid"] == child.pid
    mine = [r for r in records if r["event"] == "exit" and r["pid"] == child.pid]
    if exits:
        assert [(r["exit_code"], r["comm"]) for r in mine] == [(3, "sh")]
    else:
        assert not [r for r in records if r["event"] == "exit"]


def test_default_text_output_and_sigint(tmp_path: Path) -> None:
    """No options: a header at once, then a readable line per exec, exit 0 on Ctrl-C."""
    marker = unique("text")
    with ToolProcess(["execsnoop"]) as tracer:
        assert tracer.wait_stdout(lambda ls: len(ls) >= 1)
        assert tracer.stdout[0].split() == ["PCOMM", "PID", "PPID", "RET", "ARGS"]
        proc = subprocess.Popen(["/bin/true", marker, "two words"])
        proc.wait()
        assert tracer.wait_text(marker)
        assert tracer.stop() == 0
    [line] = [ln for ln in tracer.stdout if marker in ln]
    assert re.fullmatch(rf"true {{12}} {proc.pid:<6} {os.getpid():<6}   0 "
                        rf"/bin/true {marker} two words", line), line
    assert any("Tracing exec() calls" in ln for ln in tracer.stderr)


def test_run_imports_neither_json_nor_click() -> None:
    """Start-up time counts: the JSON output is written without importing json (or re)."""
    code = ("import sys\nfrom coreframe.cli import main\n"
            "sys.argv = ['coreframe', 'run', 'execsnoop', '--json', '--duration', '0']\n"
            "try:\n    main()\nfinally:\n"
            "    sys.stderr.write('MODULES ' + ' '.join(sorted(sys.modules)) + '\\n')\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=WAIT_S)
    assert proc.returncode == 0, proc.stderr
    [line] = [ln for ln in proc.stderr.splitlines() if ln.startswith("MODULES ")]
    mods = set(line.split()[1:])
    assert "coreframe_plugins.execsnoop" in mods
    assert not {m for m in mods if m.split(".")[0] in {"json", "click", "dataclasses"}}


def test_duration_stops_by_itself() -> None:
    with ToolProcess(["execsnoop", "--duration", "1"]) as tracer:
        assert tracer.wait() == 0, tracer.stderr
    assert tracer.stdout[0].startswith("PCOMM")


def _shape(line: str, extra: list[str]) -> tuple[str | list[str], list[str]]:
    """The fixed-width columns verbatim, then the arguments as words.

    libbpf-tools writes a space after every argument (so a trailing space, and
    two before "..."); coreframe does not. With -U or -t, libbpf-tools prints the
    value one space narrower than its header, shifting the row left of its
    header; coreframe keeps rows under their header (checked separately), so
    with those only the words must match. Times differ between two tools by
    nature: their format is checked, their value masked.
    """
    cut = re.search(r' "?/', line).start() + 1  # type: ignore[union-attr]
    cols, args = line[:cut], line[cut:].split()
    if not {"-U", "-t", "-T"} & set(extra):
        return cols, args
    words = cols.split()
    if "-T" in extra or "-t" in extra:
        assert re.fullmatch(r"\d\d:\d\d:\d\d" if "-T" in extra else r"\d+\.\d{3}",
                            words[0]), line
        words[0] = "TIME"
    return words, args


def _libbpf_tracer(args: list[str]) -> ToolProcess:
    if not Path(LIBBPF_EXECSNOOP).exists() or shutil.which("stdbuf") is None:
        pytest.skip(f"{LIBBPF_EXECSNOOP} (libbpf-tools) or stdbuf not installed")
    tracer = ToolProcess([], ready=None,
                         argv=["stdbuf", "-oL", LIBBPF_EXECSNOOP, *args])
    # libbpf-tools prints its header once attached
    if not tracer.wait_text("PCOMM"):
        tracer.kill()
        pytest.fail(f"libbpf-tools execsnoop did not start: {tracer.stderr}")
    return tracer


@pytest.mark.parametrize("extra", [[], ["-x", "--max-args", "3"], ["-U", "-q"], ["-T"], ["-t"]],
                         ids=["plain", "max-args", "uid-quote", "time", "timestamp"])
def test_text_matches_libbpf_tools(extra: list[str]) -> None:
    """Same exec seen by both tools: the header and the line read the same."""
    marker = unique("shape")
    argv = ["/bin/true", marker, "a", "b c", "d", "e"]
    with _libbpf_tracer(extra) as theirs, ToolProcess(["execsnoop", *extra]) as ours:
        run_quiet(argv)
        if "-x" in extra:
            with pytest.raises(FileNotFoundError):
                subprocess.run(["/nonexistent/" + marker, "arg"])
        for tracer in (theirs, ours):
            assert tracer.wait_text(marker)
            if "-x" in extra:
                assert tracer.wait_stdout(lambda ls: any("/nonexistent/" in ln for ln in ls))
            tracer.stop()
    assert ours.stdout[0].rstrip() == theirs.stdout[0].rstrip()
    for pick in (lambda ln: marker in ln and "/bin/true" in ln,
                 lambda ln: "/nonexistent/" + marker in ln):
        want = [_shape(ln, extra) for ln in theirs.stdout if pick(ln)]
        got = [_shape(ln, extra) for ln in ours.stdout if pick(ln)]
        assert got == want
    header = ours.stdout[0]
    [row] = [ln for ln in ours.stdout if marker in ln and "/bin/true" in ln]
    for col in [c for c in ("TIME", "UID", "PCOMM", "PID ", "PPID", "ARGS") if c in header]:
        start = header.index(col)
        assert row[start] != " " and (start == 0 or row[start - 1] == " "), (header, row)
    if "--max-args" in extra:
        [line] = [ln for ln in ours.stdout if marker in ln and "/bin/true" in ln]
        assert line.endswith(f"/bin/true {marker} a ...")


def test_max_args_cut_ends_with_dots() -> None:
    marker = unique("dots")
    with ToolProcess(["execsnoop", "--max-args", "2"]) as tracer:
        run_quiet(["/bin/true", marker, "x", "y"])
        run_quiet(["/bin/true", marker + "-fits"])
        assert tracer.wait_text(marker + "-fits")
        assert tracer.stop() == 0
    cut = [ln for ln in tracer.stdout if f"{marker} x" in ln or ln.endswith(marker + " ...")]
    assert len(cut) == 1 and cut[0].endswith(f"/bin/true {marker} ..."), tracer.stdout
    fits = [ln for ln in tracer.stdout if marker + "-fits" in ln]
    assert len(fits) == 1 and fits[0].endswith(f"/bin/true {marker}-fits")


def _json_execs(tracer: ToolProcess) -> list[dict[str, Any]]:
    return [r for r in tracer.json_records() if r["event"] == "exec"]


def test_filter_uid() -> None:
    """-u keeps only execs by that real uid (filtered in the kernel)."""
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv (util-linux) not installed")
    marker = unique("uid")
    with ToolProcess(["execsnoop", "--json", "-u", "65534"]) as tracer:
        run_quiet(["/bin/true", marker, "root"])
        setpriv = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
        assert run_quiet([*setpriv, "/bin/true", marker, "nobody"]).returncode == 0
        assert tracer.wait_text(marker)
        assert tracer.stop() == 0
    execs = _json_execs(tracer)
    assert execs and all(r["uid"] == 65534 for r in execs)
    mine = [r for r in execs if marker in r["args"]]
    assert [r["args"] for r in mine] == [["/bin/true", marker, "nobody"]]


def test_filter_name(tmp_path: Path) -> None:
    """-n keeps commands whose name contains NAME."""
    name = f"cfn{os.getpid() % 100000}"
    exe = tmp_path / f"{name}-bin"
    shutil.copy("/bin/true", exe)
    marker = unique("name")
    with ToolProcess(["execsnoop", "--json", "-n", name]) as tracer:
        run_quiet(["/bin/true", marker, "other"])
        run_quiet([str(exe), marker, "match"])
        assert tracer.wait_text(marker)
        assert tracer.stop() == 0
    execs = _json_execs(tracer)
    assert execs and all(name in r["comm"] for r in execs)
    assert [r["args"][1:] for r in execs if marker in r["args"]] == [[marker, "match"]]


def test_filter_line() -> None:
    """-l keeps commands with an argument containing LINE."""
    marker = unique("line")
    with ToolProcess(["execsnoop", "--json", "-l", marker]) as tracer:
        run_quiet(["/bin/true", "no-match-here"])
        run_quiet(["/bin/true", "first", f"x{marker}y"])
        assert tracer.wait_text(marker)
        assert tracer.stop() == 0
    execs = _json_execs(tracer)
    assert [r["args"] for r in execs] == [["/bin/true", "first", f"x{marker}y"]]


def test_filter_cgroup(cgroup_dir: Path) -> None:
    """--cgroup keeps execs by tasks inside that cgroup v2 directory."""
    marker = unique("cgroup")
    procs = cgroup_dir / "cgroup.procs"

    def join_cgroup() -> None:
        procs.write_text(str(os.getpid()))

    with ToolProcess(["execsnoop", "--json", "--cgroup", str(cgroup_dir)]) as tracer:
        run_quiet(["/bin/true", marker, "outside"])
        inside = subprocess.Popen(["/bin/true", marker, "inside"], preexec_fn=join_cgroup)
        assert inside.wait() == 0
        assert tracer.wait_text(marker)
        assert tracer.stop() == 0
    execs = _json_execs(tracer)
    assert [(r["pid"], r["args"]) for r in execs] == [(inside.pid,
                                                       ["/bin/true", marker, "inside"])]


def test_failed_exec_reported_only_with_x() -> None:
    marker = unique("fail")
    with ToolProcess(["execsnoop", "--json"]) as plain, \
            ToolProcess(["execsnoop", "--json", "-x"]) as fails:
        with pytest.raises(FileNotFoundError):
            subprocess.run(["/nonexistent/" + marker])
        run_quiet(["/bin/true", marker])
        for tracer in (plain, fails):
            assert tracer.wait_text('"/bin/true","' + marker)
            assert tracer.stop() == 0
    assert not [r for r in _json_execs(plain) if r["filename"].endswith(marker)]
    [failed] = [r for r in _json_execs(fails) if r["filename"].endswith(marker)]
    assert failed["retval"] == -errno.ENOENT and failed["args"] == ["/nonexistent/" + marker]
