"""USDT on every kernel of the matrix: CPython's probes through usdt.bpf.h, pycalls.

Kernels without uprobe_multi links (6.1) take the perf-event uprobe path with
BPF cookies; 6.12 and later one uprobe_multi link. Either way the argument
values must equal libbpf's for the same hits, the counts the workload's own,
and every semaphore must be back to its value after detach.
"""

from __future__ import annotations

import sys

import pytest
from kernkit import ROOT, Expect

sys.path.insert(0, str(ROOT / "tests" / "usdt"))
sys.path.insert(0, str(ROOT / "tests" / "tools"))
import usdtkit  # noqa: E402
from tool_proc import ToolProcess  # noqa: E402

import coreframe  # noqa: E402
from coreframe import features  # noqa: E402

pytestmark = pytest.mark.kernel
ROUNDS = 4
PROBES = ("function__entry", "gc__start", "line")


def _skip_without_python() -> None:
    if not usdtkit.python_has_probes():
        pytest.skip(f"{usdtkit.PYTHON} is missing or has no USDT probes")


def test_usdt_args_equal_libbpf(expect_feature: Expect) -> None:
    _skip_without_python()
    if not expect_feature(features.has_uprobe(), "uprobes"):
        return
    py = usdtkit.PYTHON
    with usdtkit.py_workload(ROUNDS, 1) as w:
        before = {p: usdtkit.semaphore(w.pid, py, "python", p) for p in PROBES}
        spec = coreframe.open(str(usdtkit.OBJ))
        spec.rodata.targ_pid = w.pid
        spec.programs.py_entry_auto.autoload = False
        with spec.load() as obj:
            obj.links += [
                obj.programs.usdt_strings.attach_usdt(py, "python", "function__entry",
                                                      pid=w.pid, cookie=11),
                obj.programs.usdt_any.attach_usdt(py, "python", "gc__start", pid=w.pid),
                usdtkit.line_semaphore_on(obj, w.pid)]
            multi = features.has_uprobe_multi()
            assert obj.links[0].kind == ("usdt (uprobe_multi)" if multi else "usdt")
            during = {p: usdtkit.semaphore(w.pid, py, "python", p) for p in PROBES}
            out: dict[str, str] = {}

            def run() -> None:
                out["done"] = w.round()

            if usdtkit.LIBBPF is not None:
                want = usdtkit.libbpf_records(
                    [("usdt_strings", w.pid, py, "python", "function__entry", 11),
                     ("usdt_any", w.pid, py, "python", "gc__start", 0)], w.pid, run)
            else:
                run()
                want = None
            got = usdtkit.coreframe_records(obj)
        after = {p: usdtkit.semaphore(w.pid, py, "python", p) for p in PROBES}
    assert during == {p: v + 1 for p, v in before.items()}
    assert after == before
    if want is not None:
        assert got == want
    names = [r.str1 for r in got if r.cookie == 11 and r.str0 == str(usdtkit.WORKLOAD)]
    assert [names.count(f) for f in ("gamma_fn", "beta", "alpha", "keyfn")] == [
        ROUNDS, 5 * ROUNDS, 5 * ROUNDS, ROUNDS]
    assert out["done"].endswith("gc=1")


def test_pycalls_counts(expect_feature: Expect) -> None:
    _skip_without_python()
    if not expect_feature(features.has_uprobe(), "uprobes"):
        return
    with usdtkit.py_workload(ROUNDS, 1) as w:
        with ToolProcess(["pycalls", "-p", str(w.pid), "--json", "--top", "1000"]) as tool:
            w.round()
            assert tool.stop() == 0, tool.stderr
            rows = tool.json_records()
    got = {r["function"]: r["count"] for r in rows if r.get("file") == str(usdtkit.WORKLOAD)}
    assert {f: got.get(f) for f in ("gamma_fn", "beta", "alpha", "keyfn")} == {
        "gamma_fn": ROUNDS, "beta": 5 * ROUNDS, "alpha": 5 * ROUNDS, "keyfn": ROUNDS}
    assert [r["count"] for r in rows if r.get("event") == "gc"][0] >= 1
