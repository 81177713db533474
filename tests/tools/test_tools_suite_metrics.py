"""Issue 22's tools on the fleet layer: each declares Prometheus metrics of bounded
cardinality, and ``coreframe run TOOL --prometheus HOST:PORT`` serves them from real
events of a known workload (opensnoop, syscount, biolatency, runqlat), the same
numbers the tool prints.

The histogram and count tools take from their kernel maps at every scrape and at
every print under one lock, so a scrape never steals what the printout shows: each
test scrapes mid-run, then checks the printout still holds everything.
"""

from __future__ import annotations

import importlib
import socket
import textwrap
import urllib.request
from pathlib import Path

import pytest
from oracle import DIRECT_IO, SLEEPER, helper, loop_device
from tool_proc import ToolProcess

from coreframe.metrics import Histogram
from coreframe.tool import run_params

TOOLS = ("opensnoop", "exitsnoop", "syscount", "killsnoop", "biolatency", "biosnoop",
         "runqlat", "cpudist", "tcplife", "tcpconnect", "profile")
# Label names whose values come from a small set (programs are bounded by the
# family's top-N, docs/metrics.md); per-process and per-thread ids only where an
# option asks for one histogram per process or thread, as the tool prints them.
BOUNDED = {"comm", "errno", "code", "signal", "syscall", "disk", "op", "flags", "family",
           "dport", "result"}
PER_TASK = {"pid", "tid", "pidns"}
# the options that make a family per process, thread or namespace
PER_TASK_OPTIONS = {"runqlat": ("per_process", "per_thread", "per_pidns"),
                    "cpudist": ("per_process", "per_thread"), "syscount": ("process",)}


def _tool(name: str) -> type:
    module = importlib.import_module(f"coreframe_plugins.{name}")
    return next(v for v in vars(module).values()
                if isinstance(v, type) and getattr(v, "name", None) == name)


def _defaults(cls: type) -> dict[str, object]:
    return {p.name: getattr(p, "default", None) for p in run_params(cls)}


@pytest.mark.parametrize("name", TOOLS)
def test_every_tool_declares_bounded_metrics(name: str) -> None:
    cls = _tool(name)
    assert cls.metrics, f"{name} declares no metrics"
    assert {"prometheus", "otlp"} <= {p.name for p in run_params(cls)}
    runs = [_defaults(cls)]
    for option in PER_TASK_OPTIONS.get(name, ()):
        runs.append(dict(runs[0], **{option: True}))
    for options in runs:
        per_task = any(options.get(o) for o in PER_TASK_OPTIONS.get(name, ()))
        families = cls(**options).metric_families()
        assert families
        for m in families:
            assert m.name.startswith(f"coreframe_{name}_"), m.name
            allowed = BOUNDED | (PER_TASK if per_task else set())
            assert set(m.labels) <= allowed, (m.name, m.labels, options)
            if isinstance(m, Histogram):
                assert m.name.endswith("_seconds") and m.scale < 1, m.name


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    parser = pytest.importorskip("prometheus_client.parser")
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    out = {}
    for fam in parser.text_string_to_metric_families(text):
        for s in fam.samples:
            labels = tuple(sorted((k, v) for k, v in s.labels.items() if k != "tool"))
            assert s.labels.get("tool") is not None
            out[(s.name, labels)] = s.value
    return out


COMM_SETTER = """
import ctypes
ctypes.CDLL(None).prctl(15, sys.argv[1].encode(), 0, 0, 0)   # PR_SET_NAME
"""

OPENER = textwrap.dedent("""
    import ctypes, os, sys
""") + COMM_SETTER + textwrap.dedent("""
    d = sys.argv[2]
    sys.stdin.readline()
    for i in range(5):
        os.close(os.open(os.path.join(d, "cf-present"), os.O_RDONLY))
    for i in range(3):
        try:
            os.open(os.path.join(d, f"cf-missing-{i}"), os.O_RDONLY)
        except FileNotFoundError:
            pass
    print("done", flush=True)
    sys.stdin.readline()
""")


def test_opensnoop_counts_opens_and_errors(need_root: None, tmp_path: Path) -> None:
    (tmp_path / "cf-present").write_text("x")
    name = f"cfo{__import__('os').getpid() % 100000}"
    port = _free_port()
    with helper(OPENER, name, str(tmp_path)) as h, \
            ToolProcess(["opensnoop", "--json", "--prometheus", f"127.0.0.1:{port}"]) as t:
        assert h.step() == "done"
        got = _scrape(port)
        assert t.stop() == 0, t.stderr
    printed = [r for r in t.json_records() if r.get("comm") == name]
    assert len(printed) == 8 and sum(1 for r in printed if r["err"] == 2) == 3
    assert got[("coreframe_opensnoop_opens_total", (("comm", name),))] == 8
    assert got[("coreframe_opensnoop_errors_total",
                (("comm", name), ("errno", "ENOENT")))] == 3


GETPPID = textwrap.dedent("""
    import ctypes, os, sys
""") + COMM_SETTER + textwrap.dedent("""
    sys.stdin.readline()
    for _ in range(1000):
        os.getppid()
    print("done", flush=True)
    sys.stdin.readline()
""")


def test_syscount_counts_and_prints_the_same(need_root: None) -> None:
    port = _free_port()
    with helper(GETPPID, "cfsyscount") as h, \
            ToolProcess(["syscount", "-p", str(h.pid), "-L", "--json", "--prometheus",
                         f"127.0.0.1:{port}"]) as t:
        assert h.step() == "done"
        got = _scrape(port)
        assert t.stop() == 0, t.stderr
    assert got[("coreframe_syscount_syscalls_total", (("syscall", "getppid"),))] == 1000
    assert got[("coreframe_syscount_seconds_total", (("syscall", "getppid"),))] > 0
    # the scrape took the counts out of the map; the printout still has every one
    rows = [r for r in t.json_records() if r.get("syscall") == "getppid"]
    assert [r["count"] for r in rows] == [1000]


WRITES, READS = 40, 24


def test_biolatency_histogram_is_the_requests(need_root: None, tmp_path: Path) -> None:
    port = _free_port()
    with loop_device(tmp_path) as dev, \
            helper(DIRECT_IO, dev, str(WRITES), "4096", str(READS), "65536") as h:
        disk = Path(dev).name
        with ToolProcess(["biolatency", "-d", disk, "-D", "--json", "--prometheus",
                          f"127.0.0.1:{port}"]) as t:
            assert h.step() == "done"
            got = _scrape(port)
            assert t.stop() == 0, t.stderr
    labels = (("disk", disk),)
    count = got[("coreframe_biolatency_seconds_count", labels)]
    assert count == WRITES + READS
    assert got[("coreframe_biolatency_seconds_bucket", labels + (("le", "+Inf"),))] == count
    assert got[("coreframe_biolatency_seconds_sum", labels)] > 0
    # buckets are the printed log2 slots: the same counts at the same bounds (usecs)
    buckets = {float(dict(k[1])["le"]): v for k, v in got.items()
               if k[0] == "coreframe_biolatency_seconds_bucket" and ("disk", disk) in k[1]}
    (doc,) = [d for d in t.json_records() if d.get("disk") == disk]
    running = 0
    for row in doc["hist"]:
        running += row["count"]
        assert buckets[row["hi"] / 1e6] == running, (row, buckets)


def test_runqlat_per_process_histogram(need_root: None) -> None:
    port = _free_port()
    with helper(SLEEPER) as h, \
            ToolProcess(["runqlat", "-p", str(h.pid), "-P", "--json", "--prometheus",
                         f"127.0.0.1:{port}"]) as t:
        assert h.step() == "done"
        got = _scrape(port)
        assert t.stop() == 0, t.stderr
    labels = (("comm", "python"), ("pid", str(h.pid)))
    count = got[("coreframe_runqlat_latency_seconds_count", labels)]
    assert count >= 200
    # the helper slept from before the scrape to the end: what printed is what was exported
    (doc,) = t.json_records()
    assert sum(r["count"] for r in doc["hist"]) == count
