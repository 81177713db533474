"""Running where the kernel has no BTF: a minimal BTF stands in for it.

Each test hides ``/sys/kernel/btf/vmlinux`` the way a kernel built without
``CONFIG_DEBUG_INFO_BTF`` lacks it: in a private mount namespace (``unshare -m``, so
nothing leaks to the rest of the machine) an empty file is bind-mounted over it, and
coreframe runs inside. Outside, ``coreframe btf min`` cuts the kernel's full BTF down
to what the objects' CO-RE relocations need. Inside:

* without a BTF, ``coreframe run`` and ``object load`` print one line saying how to get
  one and exit 2, before anything is loaded;
* execsnoop runs from the minimal BTF (``--btf``, ``COREFRAME_BTF``, ``run --btf FILE
  NAME``, and a BTFHub-layout ``.btf.tar.xz`` on ``COREFRAME_BTF_PATH``) and reports a
  real exec;
* every plugin object that loads here loads from the minimal BTF too (less its
  programs that attach by the kernel's BTF ids, tp_btf/fentry/..., which need the
  kernel's own BTF whatever CO-RE uses), and every CO-RE result the loader applied
  (``Object.core_results``) equals the one it applies against the kernel's full BTF.

Runs on the host and in every guest of ``make test-kernels``; the sizes of the
minimal BTFs against the full one are recorded (``min_btf_bytes``, ``full_btf_bytes``).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kernkit import IN_GUEST, ROOT

from coreframe.btf.locate import relative_paths

pytestmark = pytest.mark.kernel

VMLINUX = Path("/sys/kernel/btf/vmlinux")
PLUGIN_OBJECTS = sorted((ROOT / "plugins" / "objects").glob("*.bpf.o"))
EXECSNOOP = ROOT / "plugins" / "objects" / "execsnoop.bpf.o"
CLI = [sys.executable, "-m", "coreframe.cli"]
# generous caps so a slow emulated guest never flakes; not timing assertions
READY_WAIT = 300.0
EVENT_WAIT = 120.0

# Loads each object given on the command line with the loader's default target (what
# `coreframe run` uses) and prints one JSON line per object: what it relocated against
# and every CO-RE result applied, or the error that stopped the load.
LOAD_SCRIPT = r"""
import json, sys
import coreframe
from coreframe.btf.kernel import load_target
from coreframe.btf.relo import BPF_CORE_TYPE_ID_TARGET
# programs verified against the kernel's own BTF (attach_btf_id) need that BTF itself,
# whatever CO-RE relocates against: left out of both loads
BY_BTF_ID = ("tp_btf", "fentry", "fexit", "fmod_ret", "lsm", "iter")
for path in sys.argv[1:]:
    spec = coreframe.open(path)
    for prog in spec.programs.values():
        if prog.section_def is not None and prog.section_def.attach_kind in BY_BTF_ID:
            prog.autoload = False
    try:
        with spec.load() as obj:
            target = obj.core_target
            btf = None
            rows = []
            for prog, idx, relo, res in obj.core_results:
                new = res.new_value
                if relo.kind == BPF_CORE_TYPE_ID_TARGET and new:
                    btf = btf or load_target(target.path)
                    new = btf.name_of(new)  # ids differ between BTFs; names do not
                rows.append([prog, idx, relo.kind, relo.access_str, res.old_value, new,
                             res.poison, res.orig_size, res.new_size])
            print(json.dumps({"object": path, "target": list(target) if target else None,
                              "results": rows}))
    except coreframe.Error as exc:
        print(json.dumps({"object": path, "error": str(exc)}))
"""


def _hidden(cmd: list[str]) -> list[str]:
    """``cmd`` run in a private mount namespace where the kernel's BTF file is empty."""
    empty = Path(os.environ.get("TMPDIR", "/tmp")) / f"cf-nobtf-empty-{os.getpid()}"
    empty.touch()
    return ["unshare", "-m", "--propagation", "private", "sh", "-c",
            f'mount --bind "{empty}" {VMLINUX} && exec "$@"', "sh", *cmd]


@pytest.fixture(scope="module")
def full_btf() -> Path:
    if not VMLINUX.exists() or VMLINUX.stat().st_size == 0:
        pytest.fail("no kernel BTF in the guest") if IN_GUEST else pytest.skip("no kernel BTF")
    if shutil.which("unshare") is None:
        pytest.skip("no unshare(1) to hide the kernel's BTF in a mount namespace")
    return VMLINUX


@pytest.fixture(scope="module")
def min_dir(tmp_path_factory: pytest.TempPathFactory, full_btf: Path) -> Path:
    return tmp_path_factory.mktemp("nobtf")


def _btf_min(objects: list[Path], out: Path) -> str:
    proc = subprocess.run([*CLI, "btf", "min", *map(str, objects), "--btf", str(VMLINUX),
                           "-o", str(out)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert out.stat().st_size > 24, "the minimal BTF holds no type"
    return proc.stdout.strip()


@pytest.fixture(scope="module")
def execsnoop_btf(min_dir: Path) -> Path:
    out = min_dir / "execsnoop.btf"
    _btf_min([EXECSNOOP], out)
    return out


@pytest.fixture(scope="module")
def plugins_btf(min_dir: Path) -> Path:
    out = min_dir / "plugins.btf"
    _btf_min(PLUGIN_OBJECTS, out)
    return out


def test_min_btf_sizes(min_dir: Path, full_btf: Path,
                       record_property: Callable[[str, object], None]) -> None:
    """`btf min` reports the minimal size against the full one; both are recorded."""
    line = _btf_min([EXECSNOOP], min_dir / "size.btf")
    size = (min_dir / "size.btf").stat().st_size
    full = len(full_btf.read_bytes())
    assert f"{size} bytes" in line and f"{full} bytes" in line, line
    assert size < full // 100, f"minimal BTF {size} bytes is no cut of {full}"
    record_property("min_btf_bytes", size)
    record_property("full_btf_bytes", full)


def test_no_btf_is_one_line_exit_2(full_btf: Path) -> None:
    """Hidden BTF, none given: one line naming BTFHub, `btf min` and --btf; exit 2."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("COREFRAME_BTF", "COREFRAME_BTF_PATH")}
    for cmd in ([*CLI, "run", "execsnoop", "--duration", "5"],
                [*CLI, "object", "load", str(EXECSNOOP)]):
        proc = subprocess.run(_hidden(cmd), capture_output=True, text=True, env=env,
                              timeout=READY_WAIT, check=False)
        assert proc.returncode == 2, (cmd, proc.returncode, proc.stderr)
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1, proc.stderr
        line = lines[0]
        assert line.startswith("coreframe: error: this kernel has no BTF"), line
        for needed in ("btfhub-archive", os.uname().release, "coreframe btf min", "--btf",
                       "COREFRAME_BTF_PATH"):
            assert needed in line, (needed, line)
        assert "Tracing" not in proc.stdout + proc.stderr  # nothing was loaded


def _search_dir(root: Path, btf: Path) -> Path:
    """A BTFHub-style archive holding ``btf`` as this kernel's RELEASE.btf.tar.xz."""
    rel = next(p for p in relative_paths() if p.endswith(".tar.xz"))
    archive = root / rel
    archive.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "w:xz") as tar:
        tar.add(btf, arcname=os.uname().release + ".btf")
    return root


class _Run:
    """A ``coreframe run execsnoop --json`` process; lines are collected by threads."""

    def __init__(self, cmd: list[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, env=env)
        self.out: list[str] = []
        self.err: list[str] = []
        self.ready = threading.Event()
        for stream, sink in ((self.proc.stdout, self.out), (self.proc.stderr, self.err)):
            threading.Thread(target=self._pump, args=(stream, sink), daemon=True).start()

    def _pump(self, stream: io.TextIOBase, sink: list[str]) -> None:
        for line in stream:
            sink.append(line)
            if "Tracing" in line:
                self.ready.set()
        self.ready.set()  # ended: the waiter looks at the exit status

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(2)
            try:
                self.proc.wait(READY_WAIT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def run_hidden() -> Iterator[Callable[[list[str], dict[str, str]], _Run]]:
    runs: list[_Run] = []

    def start(args: list[str], extra_env: dict[str, str]) -> _Run:
        env = {k: v for k, v in os.environ.items()
               if k not in ("COREFRAME_BTF", "COREFRAME_BTF_PATH")}
        env.update(extra_env)
        run = _Run(_hidden([*CLI, *args]), env)
        runs.append(run)
        return run

    yield start
    for run in runs:
        run.stop()


def _sees_exec(run: _Run) -> dict[str, object]:
    assert run.ready.wait(READY_WAIT), "execsnoop never started tracing"
    assert run.proc.poll() is None, "".join(run.err)
    marker = f"cf-nobtf-{uuid.uuid4().hex[:12]}"
    child = subprocess.run(["/bin/echo", marker], capture_output=True, check=True)
    assert child.stdout.strip() == marker.encode()
    end = time.monotonic() + EVENT_WAIT
    while time.monotonic() < end and run.proc.poll() is None:
        for line in list(run.out):
            ev = json.loads(line)
            if ev.get("event") == "exec" and marker in ev.get("args", []):
                return ev
        time.sleep(0.05)
    pytest.fail(f"no exec event for {marker}: {''.join(run.out)[-2000:]} "
                f"{''.join(run.err)[-2000:]}")


@pytest.mark.parametrize("how", ["--btf", "run --btf", "COREFRAME_BTF", "search path"])
def test_execsnoop_runs_from_min_btf(how: str, execsnoop_btf: Path, min_dir: Path,
                                     run_hidden: Callable[[list[str], dict[str, str]], _Run]
                                     ) -> None:
    """execsnoop relocated against its minimal BTF reports a real exec."""
    env: dict[str, str] = {}
    args = ["run", "execsnoop", "--json"]
    if how == "--btf":
        args += ["--btf", str(execsnoop_btf)]
    elif how == "run --btf":
        args = ["run", "--btf", str(execsnoop_btf), "execsnoop", "--json"]
    elif how == "COREFRAME_BTF":
        env["COREFRAME_BTF"] = str(execsnoop_btf)
    else:
        root = _search_dir(min_dir / "btfhub", execsnoop_btf)
        env["COREFRAME_BTF_PATH"] = f"{min_dir / 'empty-dir'}{os.pathsep}{root}"
    ev = _sees_exec(run_hidden(args, env))
    assert ev["comm"] == "echo"
    assert ev["filename"] == "/bin/echo"
    assert ev["retval"] == 0


def _load_all(cmd_prefix: list[str], env: dict[str, str]) -> dict[str, dict[str, object]]:
    proc = subprocess.run([*cmd_prefix, sys.executable, "-c", LOAD_SCRIPT,
                           *map(str, PLUGIN_OBJECTS)], capture_output=True, text=True,
                          env=env, timeout=20 * READY_WAIT, check=False)
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    return {row["object"]: row for row in rows}


def test_loader_results_equal_full_btf(plugins_btf: Path,
                                       record_property: Callable[[str, object], None]) -> None:
    """Every CO-RE result the loader applies from the minimal BTF (kernel BTF hidden)
    equals the one it applies against the kernel's full BTF, object by object."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("COREFRAME_BTF", "COREFRAME_BTF_PATH")}
    full = _load_all([], env)
    minimal = _load_all(_hidden([]), {**env, "COREFRAME_BTF": str(plugins_btf)})
    compared = 0
    loaded = []
    for path, want in full.items():
        if "error" in want:
            continue  # this kernel refuses the object whatever the BTF (not our subject)
        got = minimal[path]
        assert "error" not in got, (path, got)
        if want["target"] is None:  # nothing to relocate (profile): no BTF wanted
            assert got["target"] is None and not got["results"], got
            continue
        assert want["target"] == ["/sys/kernel/btf/vmlinux", "kernel"]
        assert got["target"] == [str(plugins_btf), "COREFRAME_BTF"]
        assert got["results"] == want["results"], path
        compared += len(want["results"])
        loaded.append(Path(path).name)
    assert "execsnoop.bpf.o" in loaded, full[str(EXECSNOOP)]
    assert compared >= 100, f"only {compared} relocations compared ({loaded})"
    record_property("plugins_min_btf_bytes", plugins_btf.stat().st_size)
    record_property("nobtf_relos", compared)
    record_property("nobtf_objects", ",".join(loaded))


def test_every_tool_ready_from_min_btf(plugins_btf: Path) -> None:
    """Each tool ready here is ready with the kernel's BTF hidden and the plugins'
    minimal BTF given (attach methods that need the kernel's own BTF, tp_btf, give way
    to raw tracepoints and tracepoints); without it, each tool that relocates says how
    to get a BTF."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("COREFRAME_BTF", "COREFRAME_BTF_PATH")}

    def ready(prefix: list[str], extra: dict[str, str]) -> dict[str, dict[str, object]]:
        proc = subprocess.run([*prefix, *CLI, "list", "--json"], capture_output=True,
                              text=True, env={**env, **extra}, timeout=READY_WAIT,
                              check=False)
        assert proc.returncode == 0, proc.stderr
        return {row["name"]: row for row in json.loads(proc.stdout)}

    full = ready([], {})
    hidden = ready(_hidden([]), {"COREFRAME_BTF": str(plugins_btf)})
    bare = ready(_hidden([]), {})
    for name, row in full.items():
        if row["distribution"] != "coreframe" or not row["ready"]:
            continue
        assert hidden[name]["ready"], (name, hidden[name]["reason"])
        if name in ("execsnoop", "biolatency", "runqlat", "tcplife"):  # requires "btf"
            assert not bare[name]["ready"]
            assert "COREFRAME_BTF_PATH" in str(bare[name]["reason"])
    assert full["execsnoop"]["ready"] and full["biolatency"]["ready"]


def test_raw_tp_tool_runs_from_min_btf(plugins_btf: Path) -> None:
    """cpudist, whose programs read the scheduler's task pointers with CO-RE, attaches
    by raw tracepoint with the kernel's BTF hidden and counts real context switches."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("COREFRAME_BTF", "COREFRAME_BTF_PATH")}
    proc = subprocess.run(_hidden([*CLI, "run", "cpudist", "--btf", str(plugins_btf),
                                   "--duration", "3", "--json"]),
                          capture_output=True, text=True, env=env, timeout=READY_WAIT,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    assert "(raw_tp)" in proc.stderr, proc.stderr
    hist = json.loads(proc.stdout.strip().splitlines()[-1])["hist"]
    assert sum(slot["count"] for slot in hist) > 0, proc.stdout
