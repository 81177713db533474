"""`coreframe run pycalls` on a known workload, with bpftrace's usdt: probes as the oracle.

py_workload.py calls gamma_fn, beta, alpha and keyfn known numbers of times
while both tracers are attached to the same process; pycalls' per-function
counts (JSON rows) must equal bpftrace's function__entry and function__return
counts for every function, its GC count bpftrace's gc__start/gc__done counts,
and the workload's own numbers.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections import Counter
from pathlib import Path

import pytest
import usdtkit

sys.path.insert(0, str(usdtkit.ROOT / "tests" / "tools"))
from tool_proc import COREFRAME, ToolProcess  # noqa: E402

ROUNDS, GCS = 40, 3
PY = usdtkit.PYTHON


def bpftrace_script(pid: int) -> str:
    u = f"usdt:{PY}:python"
    return (f"{u}:function__entry /pid == {pid}/ {{ @e[str(arg0), str(arg1), arg2] = count(); }}"
            f" {u}:function__return /pid == {pid}/ {{ @r[str(arg0), str(arg1)] = count(); }}"
            f" {u}:gc__start /pid == {pid}/ {{ @gs = count(); }}"
            f" {u}:gc__done /pid == {pid}/ {{ @gd = count(); }}")


def split_keys(m: object, parts: int) -> dict[tuple[str, ...], int]:
    assert isinstance(m, dict)
    return {tuple(k.rsplit(",", parts - 1)): v for k, v in m.items()}


@pytest.mark.skipif(shutil.which("bpftrace") is None, reason="bpftrace not installed")
def test_counts_equal_bpftrace(py_probes: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BPFTRACE_STRLEN", "128")
    with usdtkit.py_workload(ROUNDS, GCS) as w:
        with ToolProcess(["pycalls", "-p", str(w.pid), "--json", "--top", "1000"]) as tool:
            with usdtkit.Bpftrace(bpftrace_script(w.pid)) as bt:
                done = w.round()
                maps = bt.close()
            assert tool.stop() == 0, tool.stderr
            rows = tool.json_records()
    assert done == (f"done gamma_fn={ROUNDS} beta={5 * ROUNDS} alpha={5 * ROUNDS} "
                    f"keyfn={ROUNDS} gc={GCS}")
    funcs = {(r["file"], r["function"], r["line"]): r for r in rows if "function" in r}
    entries = {(f, fn, int(line)): n for (f, fn, line), n in split_keys(maps["@e"], 3).items()}
    returns = split_keys(maps["@r"], 2)
    assert {k: r["count"] for k, r in funcs.items()} == entries
    per_function: Counter[tuple[str, str]] = Counter()
    for (f, fn, _line), r in funcs.items():
        per_function[(f, fn)] += r["count"]
    assert dict(per_function) == returns
    wl = str(usdtkit.WORKLOAD)
    want = {"gamma_fn": ROUNDS, "beta": 5 * ROUNDS, "alpha": 5 * ROUNDS, "keyfn": ROUNDS}
    for fn, n in want.items():
        r = funcs[(wl, fn, usdtkit.def_line(fn))]
        assert r["count"] == n
        assert r["name"] == f"py_workload:{fn}:{usdtkit.def_line(fn)}"
        assert sum(h["count"] for h in r["hist"]) == n
        assert 0 < r["total_ns"] and all(h["lo"] <= h["hi"] for h in r["hist"])
    for fn in ("catcher", "boom"):
        assert funcs[(wl, fn, usdtkit.def_line(fn))]["count"] == ROUNDS
    gen_rows = {k[2]: r["count"] for k, r in funcs.items() if k[:2] == (wl, "gen")}
    assert gen_rows == {usdtkit.def_line("gen"): ROUNDS, usdtkit.def_line("gen") + 1: 2 * ROUNDS}
    # gamma_fn's time includes its five beta calls, each including an alpha call
    g, b = funcs[(wl, "gamma_fn", usdtkit.def_line("gamma_fn"))], funcs[
        (wl, "beta", usdtkit.def_line("beta"))]
    assert g["total_ns"] > b["total_ns"]
    (gc,) = [r for r in rows if r.get("event") == "gc"]
    assert gc["count"] == maps["@gs"] == maps["@gd"] >= GCS


def test_text_report_and_semaphores(py_probes: None) -> None:
    with usdtkit.py_workload(ROUNDS, 1) as w:
        before = {p: usdtkit.semaphore(w.pid, PY, "python", p)
                  for p in ("function__entry", "function__return", "gc__start", "gc__done",
                            "line")}
        with ToolProcess(["pycalls", "-p", str(w.pid), "--sort", "time", "--hist"]) as tool:
            during = {p: usdtkit.semaphore(w.pid, PY, "python", p) for p in before}
            w.round()
            assert tool.stop() == 0, tool.stderr
            out = tool.stdout
        after = {p: usdtkit.semaphore(w.pid, PY, "python", p) for p in before}
    assert during == {p: v + 1 for p, v in before.items()}
    assert after == before
    assert out[0].split() == ["FUNCTION", "CALLS", "TOTAL_ms", "AVG_us"]
    rows = []
    for line in out[1:]:  # function rows, each followed by its histogram (--hist)
        if line.startswith("GC pauses"):
            break
        f = line.split()
        if len(f) == 4 and f[0].count(":") >= 2 and f[1].isdigit():
            rows.append((f[0], int(f[1]), float(f[2])))
    assert [r[2] for r in rows] == sorted((r[2] for r in rows), reverse=True)  # --sort time
    by_name = {r[0]: r[1] for r in rows}
    assert by_name[f"py_workload:gamma_fn:{usdtkit.def_line('gamma_fn')}"] == ROUNDS
    assert by_name[f"py_workload:alpha:{usdtkit.def_line('alpha')}"] == 5 * ROUNDS
    assert any("nsecs" in line for line in out) and any("GC pauses" in line for line in out)


def run_bad(args: list[str]) -> tuple[int, list[str]]:
    import subprocess

    p = subprocess.run([COREFRAME, "run", "pycalls", *args], capture_output=True, text=True,
                       timeout=60)
    return p.returncode, [ln for ln in p.stderr.splitlines() if ln.strip()]


def test_bad_input(need_root: None, sdt_bins: tuple[Path, Path]) -> None:
    code, err = run_bad(["--python", "/bin/true"])
    assert code == 2 and len(err) == 1
    assert "has no USDT probes" in err[0] and "readelf -n" in err[0]
    code, err = run_bad(["--python", str(sdt_bins[0])])
    assert code == 2 and len(err) == 1
    assert "no python:function__entry USDT probe" in err[0] and "readelf -n" in err[0]
    code, err = run_bad(["--python", "/no/such/python"])
    assert (code, err) == (2, ["pycalls: --python /no/such/python: no such file"])
    code, err = run_bad(["-p", "999999999"])
    assert (code, err) == (2, ["pycalls: process 999999999 does not exist"])
    code, err = run_bad(["-p", str(os.getpid())])  # pytest's interpreter: no dtrace probes
    assert code == 2 and len(err) == 1 and "function__entry" in err[0], err
    code, err = run_bad(["--sort", "bogus"])
    assert code == 2 and "bogus" in "\n".join(err)


def test_every_process_of_an_interpreter(py_probes: None) -> None:
    """--python: processes started after attach are traced too (the kernel installs the
    probes and counts the semaphores up when the interpreter is mapped)."""
    with ToolProcess(["pycalls", "--python", PY, "--json", "--top", "1000"]) as tool:
        with usdtkit.py_workload(ROUNDS, 0) as w:
            assert usdtkit.semaphore(w.pid, PY, "python", "function__entry") == 1
            assert usdtkit.semaphore(w.pid, PY, "python", "line") == 1
            w.round()
        assert tool.stop() == 0, tool.stderr
        rows = tool.json_records()
    wl = str(usdtkit.WORKLOAD)
    got = {r["function"]: r["count"] for r in rows if r.get("file") == wl}
    assert {k: got.get(k) for k in ("gamma_fn", "beta", "alpha", "keyfn")} == {
        "gamma_fn": ROUNDS, "beta": 5 * ROUNDS, "alpha": 5 * ROUNDS, "keyfn": ROUNDS}


def test_unknown_arg_spec_is_a_usage_error(need_root: None, tmp_path: Path) -> None:
    """An interpreter whose function__entry spec coreframe cannot read: exit 2, the
    argument named, before anything is loaded. The copy differs from python3.11 only
    in one argument string of its notes (same length, so the layout stays valid)."""
    if not Path(PY).exists():
        pytest.skip(f"no {PY}")
    data = bytearray(Path(PY).read_bytes())
    old = b"8@%rbp 8@%r12 -4@%eax"
    at = data.find(old)
    assert at > 0 and data.count(old) >= 1
    new = b"8@%rbp 8@%r12 -4@%xmm"
    data[at:at + len(old)] = new
    fake = tmp_path / "python3.11"
    fake.write_bytes(bytes(data))
    fake.chmod(0o755)
    code, err = run_bad(["--python", str(fake)])
    assert code == 2 and len(err) == 1, err
    assert "'-4@%xmm'" in err[0] and "names register %xmm" in err[0]
