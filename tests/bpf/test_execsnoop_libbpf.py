"""execsnoop.bpf.o produces the records execsnoop.h documents, under libbpf as oracle.

Real kernel, real exec()s; only the loader is libbpf instead of coreframe, so a
failure here is the object's fault. Other processes on the machine exec too, so
every check picks our children out by pid.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import storm_checks
from event_layout import decode_event
from libbpf_oracle import LIBBPF, LibbpfObject, PerfReader, RingReader, drain

OBJ = str(Path(__file__).resolve().parents[2] / "plugins" / "objects" / "execsnoop.bpf.o")
EXEC_F_ARGS_TRUNCATED = 1
ARGSIZE = 128

pytestmark = pytest.mark.skipif(LIBBPF is None, reason="libbpf.so not installed")


def _events(reader: RingReader | PerfReader) -> list[dict[str, object]]:
    return [decode_event(r) for r in reader.records]


def _for_pid(reader: RingReader | PerfReader, pid: int) -> list[dict[str, object]]:
    return [e for e in _events(reader) if e["pid"] == pid]


def _wait_for(reader: RingReader | PerfReader, pid: int, kinds: set[str]) -> None:
    drain(reader, lambda: kinds <= {str(e["type"]) for e in _for_pid(reader, pid)})


def _drops(obj: LibbpfObject) -> tuple[int, int]:
    """Sum of the per-CPU drop counters: (exec, exit)."""
    ncpu = obj.lib.libbpf_num_possible_cpus()
    totals = []
    for _key, raw in sorted(obj.items("drops", 4, 8 * ncpu)):
        totals.append(sum(int.from_bytes(raw[i:i + 8], "little") for i in range(0, len(raw), 8)))
    return totals[0], totals[1]


@pytest.fixture(params=["ringbuf", "perfbuf"])
def tracer(
    request: pytest.FixtureRequest, need_root: None
) -> Iterator[tuple[LibbpfObject, RingReader | PerfReader]]:
    perf = request.param == "perfbuf"
    rodata = {"ignore_failed": False, "max_args": 4, "use_perfbuf": perf}
    # with use_perfbuf the ring buffer only has to exist: shrink it to one page
    sizes = {"events": 4096} if perf else {}
    with LibbpfObject(OBJ, rodata=rodata, max_entries=sizes) as obj:
        obj.attach()
        reader = PerfReader(obj, "events_perf") if perf else RingReader(obj, "events")
        try:
            yield obj, reader
        finally:
            reader.close()


def test_exec_and_exit_records(tracer: tuple[LibbpfObject, RingReader | PerfReader]) -> None:
    obj, reader = tracer
    long_arg = "L" * 200
    child = subprocess.run(["/bin/sh", "-c", "exit 7", long_arg, "b", "c", "d"])
    assert child.returncode == 7
    with pytest.raises(FileNotFoundError):
        subprocess.run(["/nonexistent/cf-execsnoop-test", "arg"])

    # the exec event of sh: the pid is only known from the event itself
    def sh_events() -> list[dict[str, object]]:
        return [e for e in _events(reader)
                if e["type"] == "exec" and e["filename"] == "/bin/sh" and long_arg[:50]
                in " ".join(map(str, e["args"]))]

    drain(reader, lambda: bool(sh_events()))
    [ev] = sh_events()
    pid = ev["pid"]
    _wait_for(reader, int(pid), {"exec", "exit"})
    assert ev["tgid"] == pid
    assert ev["ppid"] == os.getpid()
    assert ev["uid"] == os.getuid()
    assert ev["retval"] == 0
    assert ev["comm"] == "sh"
    assert ev["args"] == ["/bin/sh", "-c", "exit 7", "L" * (ARGSIZE - 1)]
    assert ev["args_count"] == 4
    assert ev["flags"] & EXEC_F_ARGS_TRUNCATED
    assert ev["filename_len"] == len("/bin/sh") + 1
    used = 64 + int(ev["filename_len"]) + int(ev["args_size"])
    if isinstance(reader, RingReader):
        assert ev["size"] == used
    else:
        assert used <= int(ev["size"]) < used + 8

    [ex] = [e for e in _for_pid(reader, int(pid)) if e["type"] == "exit"]
    assert ex["exit_code"] == 7 and ex["sig"] == 0
    assert ex["comm"] == "sh"
    assert ex["ppid"] == os.getpid()
    assert 0 < int(ex["duration_ns"]) == int(ex["ts"]) - int(ev["ts"])

    def failed_events() -> list[dict[str, object]]:
        return [e for e in _events(reader)
                if e["type"] == "exec" and e["filename"] == "/nonexistent/cf-execsnoop-test"]

    drain(reader, lambda: bool(failed_events()))
    failed = failed_events()
    assert len(failed) == 1
    assert failed[0]["retval"] == -errno.ENOENT
    assert failed[0]["args"] == ["/nonexistent/cf-execsnoop-test", "arg"]
    assert not failed[0]["flags"] & EXEC_F_ARGS_TRUNCATED
    assert not [e for e in _for_pid(reader, int(failed[0]["pid"])) if e["type"] == "exit"]
    assert _drops(obj) == (0, 0)


def test_ignore_failed_and_uid_filter(need_root: None) -> None:
    rodata = {"ignore_failed": True, "targ_uid": 65534}
    with LibbpfObject(OBJ, rodata=rodata) as obj:
        obj.attach()
        reader = RingReader(obj, "events")
        try:
            root_child = subprocess.Popen(["/bin/true", "cf-root"])
            root_child.wait()
            nobody = subprocess.Popen(["/bin/true", "cf-nobody"], user=65534, group=65534)
            nobody.wait()
            with pytest.raises(FileNotFoundError):
                subprocess.run(["/nonexistent/cf-x"], user=65534, group=65534)
            _wait_for(reader, nobody.pid, {"exec", "exit"})
            assert not _for_pid(reader, root_child.pid)
            [ev] = [e for e in _for_pid(reader, nobody.pid) if e["type"] == "exec"]
            assert ev["uid"] == 65534 and ev["args"] == ["/bin/true", "cf-nobody"]
            assert not [e for e in _events(reader) if e.get("filename") == "/nonexistent/cf-x"]
        finally:
            reader.close()


def _cgroup2_root() -> Path | None:
    with open("/proc/self/mounts") as f:
        for line in f:
            fields = line.split()
            if fields[2] == "cgroup2":
                return Path(fields[1])
    return None


def test_cgroup_filter(need_root: None) -> None:
    root = _cgroup2_root()
    if root is None:
        pytest.skip("no cgroup2 hierarchy mounted")
    cg = root / f"cf_test_execsnoop_{os.getpid()}"
    cg.mkdir()
    try:
        cg_fd = os.open(cg, os.O_RDONLY | os.O_DIRECTORY)
        try:
            with LibbpfObject(OBJ, rodata={"filter_cg": True}) as obj:
                key, value = ctypes.c_uint32(0), ctypes.c_uint32(cg_fd)
                assert obj.lib.bpf_map_update_elem(obj.map_fd("cgroup_map"), ctypes.byref(key),
                                                   ctypes.byref(value), 0) == 0
                obj.attach()
                reader = RingReader(obj, "events")
                try:
                    procs = str(cg / "cgroup.procs")

                    def enter_cgroup() -> None:
                        with open(procs, "w") as f:
                            f.write("0")

                    inside = subprocess.Popen(["/bin/true", "cf-inside"],
                                              preexec_fn=enter_cgroup)
                    inside.wait()
                    outside = subprocess.Popen(["/bin/true", "cf-outside"])
                    outside.wait()
                    _wait_for(reader, inside.pid, {"exec", "exit"})
                    assert [e["args"] for e in _for_pid(reader, inside.pid)
                            if e["type"] == "exec"] == [["/bin/true", "cf-inside"]]
                    assert not _for_pid(reader, outside.pid)
                finally:
                    reader.close()
        finally:
            os.close(cg_fd)
    finally:
        cg.rmdir()


def test_storm_every_exec_accounted(need_root: None, storm_bin: Path, tmp_path: Path) -> None:
    """Every exec of an exec storm is either delivered with the right fields or counted."""
    out = tmp_path / "storm.json"
    with LibbpfObject(OBJ, rodata={"ignore_failed": False},
                      max_entries={"events": 1 << 22}) as obj:
        obj.attach()
        reader = RingReader(obj, "events")
        try:
            storm = subprocess.Popen([str(storm_bin), "-n", "300", "-j", "2", "-o", str(out)])
            while storm.poll() is None:
                reader.poll(50)
            assert storm.returncode == 0
            run = json.loads(out.read_text())
            drain(reader, lambda: storm_checks.complete(_events(reader), run, _drops(obj)))
            drops = _drops(obj)
        finally:
            reader.close()
    storm_checks.check_storm(_events(reader), run, drops)


def test_max_args_capped_and_execveat(need_root: None) -> None:
    """max_args above TOTAL_MAX_ARGS (60) keeps 60; fexecve() goes through execveat."""
    many = ["/bin/true", *(f"a{i}" for i in range(1, 70))]
    fexecve = ("import os; fd = os.open('/bin/true', os.O_RDONLY); "
               "os.execve(fd, ['true', 'cf-via-execveat'], {})")
    with LibbpfObject(OBJ, rodata={"max_args": 100}) as obj:
        obj.attach()
        reader = RingReader(obj, "events")
        try:
            child = subprocess.Popen(many)
            child.wait()
            at = subprocess.Popen([sys.executable, "-c", fexecve])
            assert at.wait() == 0
            _wait_for(reader, child.pid, {"exec", "exit"})
            _wait_for(reader, at.pid, {"exec", "exit"})
            [ev] = [e for e in _for_pid(reader, child.pid) if e["type"] == "exec"]
            assert ev["args_count"] == 60 and ev["args"] == many[:60]
            assert ev["flags"] & EXEC_F_ARGS_TRUNCATED
            execs = [e for e in _for_pid(reader, at.pid) if e["type"] == "exec"]
            # the first exec is the python interpreter itself, the last one fexecve()
            ev = execs[-1]
            assert ev["args"] == ["true", "cf-via-execveat"] and ev["retval"] == 0
            assert ev["filename"] == "" and ev["filename_len"] == 1
        finally:
            reader.close()
