"""bpf_usdt_arg()/bpf_usdt_arg_cnt()/bpf_usdt_cookie() under coreframe equal libbpf's.

tests/objects/usdt_args.bpf.o records, for every probe hit, what usdt.bpf.h
returns. The same object is loaded by libbpf (its own bpf_program__attach_usdt)
and by coreframe, both attached to the same probes of the same process at once,
so each hit yields one record in each loader's ring buffer and the two record
lists must be equal: argument count, values (including the pointers behind
function name and file, and the strings read through them), errors, the cookie
and the address. Each of coreframe's three ways to give the BPF side its spec id
(uprobe_multi with cookies, perf uprobes with cookies, perf uprobes with the
address map) is checked, and every semaphore is read from the process's memory
before, during and after.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import usdtkit

import coreframe
from coreframe.errors import AttachError

pytestmark = pytest.mark.skipif(usdtkit.LIBBPF is None, reason="libbpf not installed")
MODES = ["multi", "perf", "ipmap"]


def _load(pid: int) -> coreframe.Object:  # type: ignore[name-defined]
    spec = coreframe.open(str(usdtkit.OBJ))
    spec.rodata.targ_pid = pid
    spec.programs.py_entry_auto.autoload = False
    return spec.load()


@pytest.mark.parametrize("cookie_modes", MODES, indirect=True)
def test_python_args_equal_libbpf(py_probes: None, cookie_modes: str) -> None:
    py = usdtkit.PYTHON
    with usdtkit.py_workload(rounds=20, gcs=2) as w:
        sema_before = {p: usdtkit.semaphore(w.pid, py, "python", p)
                       for p in ("function__entry", "gc__start")}
        obj = _load(w.pid)
        try:
            man = obj.programs.usdt_strings.usdt
            assert man.has_cookie == (cookie_modes != "ipmap")
            links = [
                obj.programs.usdt_strings.attach_usdt(py, "python", "function__entry",
                                                      pid=w.pid, cookie=0xC0FFEE),
                obj.programs.usdt_any.attach_usdt(py, "python", "gc__start", pid=w.pid,
                                                  cookie=7),
            ]
            kinds = {link.kind for link in links}
            assert kinds == ({"usdt (uprobe_multi)"} if cookie_modes == "multi" else {"usdt"})
            if cookie_modes == "ipmap":
                assert len(list(obj.maps.__bpf_usdt_ip_to_spec_id.keys())) == 2
            line_before = usdtkit.semaphore(w.pid, py, "python", "line")
            links.append(usdtkit.line_semaphore_on(obj, w.pid))
            assert usdtkit.semaphore(w.pid, py, "python", "line") == line_before + 1
            during_cf = {p: usdtkit.semaphore(w.pid, py, "python", p) for p in sema_before}
            assert during_cf == {p: v + 1 for p, v in sema_before.items()}
            out: dict[str, object] = {}

            def run() -> None:
                out["done"] = w.round()
                out["during_both"] = {p: usdtkit.semaphore(w.pid, py, "python", p)
                                      for p in sema_before}

            want = usdtkit.libbpf_records(
                [("usdt_strings", w.pid, py, "python", "function__entry", 0xC0FFEE),
                 ("usdt_any", w.pid, py, "python", "gc__start", 7)], w.pid, run)
            got = usdtkit.coreframe_records(obj)
            for link in links:
                link.close()
        finally:
            obj.close()
        # the kernel counts a semaphore once per probed instruction and process, however
        # many consumers (here coreframe's and libbpf's) share that uprobe
        assert out["during_both"] == {p: v + 1 for p, v in sema_before.items()}
        after = {p: usdtkit.semaphore(w.pid, py, "python", p) for p in sema_before}
        assert after == sema_before
        assert usdtkit.semaphore(w.pid, py, "python", "line") == line_before
    assert out["done"] == "done gamma_fn=20 beta=100 alpha=100 keyfn=20 gc=2"
    assert got == want
    calls = [r for r in got if r.cookie == 0xC0FFEE]
    names = [r.str1 for r in calls if r.str0.endswith("py_workload.py")]
    assert names.count("gamma_fn") == 20 and names.count("beta") == 100
    assert names.count("alpha") == 100 and names.count("keyfn") == 20
    first = next(r for r in calls if r.str1 == "alpha")
    assert first.arg_cnt == 3 and first.errs == (0, 0, 0)
    assert first.args[2] == usdtkit.def_line("alpha")
    gcs = [r for r in got if r.cookie == 7]
    assert len(gcs) >= 2 and all(r.arg_cnt == 1 and r.args[0] in (0, 1, 2) for r in gcs)
    assert all(r.errs[1] == -2 for r in gcs)  # -ENOENT past arg_cnt, as libbpf


@pytest.mark.parametrize("cookie_modes", MODES, indirect=True)
def test_pie_and_library_args_equal_libbpf(need_root: None, sdt_bins: tuple[Path, Path],
                                           cookie_modes: str) -> None:
    exe, lib = (str(p) for p in sdt_bins)
    with usdtkit.Proc([exe]) as t:
        before = usdtkit.semaphore(t.pid, exe, "cftest", "tick")
        obj = _load(t.pid)
        try:
            # the library by bare name: found through /proc/PID/maps
            obj.links += [
                obj.programs.usdt_any.attach_usdt("libcftest.so", "cftest", "libtick",
                                                  pid=t.pid, cookie=3),
                obj.programs.usdt_any.attach_usdt(exe, "cftest", "plain", pid=t.pid, cookie=2),
                obj.programs.usdt_strings.attach_usdt(exe, "cftest", "tick", pid=t.pid,
                                                      cookie=1)]
            assert usdtkit.semaphore(t.pid, exe, "cftest", "tick") == before + 1
            out: dict[str, str] = {}

            def run() -> None:
                out["done"] = t.round("4")

            want = usdtkit.libbpf_records(
                [("usdt_any", t.pid, lib, "cftest", "libtick", 3),
                 ("usdt_any", t.pid, exe, "cftest", "plain", 2),
                 ("usdt_strings", t.pid, exe, "cftest", "tick", 1)], t.pid, run)
            got = usdtkit.coreframe_records(obj)
        finally:
            obj.close()
        assert usdtkit.semaphore(t.pid, exe, "cftest", "tick") == before
    assert out["done"] == "done 4"
    assert got == want
    ticks = [r for r in got if r.cookie == 1]
    assert [(r.arg_cnt, r.args[1:], r.str0) for r in ticks] == [
        (4, (i, -i), "tick-name") for i in range(4)]
    assert [r.args[0] for r in got if r.cookie == 2] == [3 * i for i in range(4)]
    assert [r.args[1:] for r in got if r.cookie == 3] == [(i, 1000 + i) for i in range(4)]


def test_pie_without_cookies_needs_pid(need_root: None, sdt_bins: tuple[Path, Path],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from coreframe import features

    monkeypatch.setattr(features, "has_bpf_cookie", lambda: False)
    monkeypatch.setattr(features, "has_uprobe_multi", lambda: False)
    with _load(0) as obj, pytest.raises(AttachError, match="needs a process id"):
        obj.programs.usdt_any.attach_usdt(str(sdt_bins[0]), "cftest", "plain")


def test_sec_auto_attach_and_bad_input(py_probes: None) -> None:
    with usdtkit.py_workload(rounds=3, gcs=0) as w:
        spec = coreframe.open(str(usdtkit.OBJ))
        spec.rodata.targ_pid = w.pid
        with spec.load() as obj:
            links = obj.attach()  # SEC("usdt//usr/bin/python3.11:python:function__entry")
            assert [link.target for link in links] == [
                "/usr/bin/python3.11:python:function__entry"]
            with usdtkit.line_semaphore_on(obj, w.pid):
                assert w.round().startswith("done gamma_fn=3")
            got = usdtkit.coreframe_records(obj)
            prog = obj.programs.usdt_any
            with pytest.raises(AttachError, match="did you mean python:gc__start"):
                prog.attach_usdt(usdtkit.PYTHON, "python", "gc_start")
            with pytest.raises(AttachError, match="process 999999999 does not exist"):
                prog.attach_usdt(usdtkit.PYTHON, "python", "gc__start", pid=999999999)
            with pytest.raises(AttachError, match="has no USDT probes"):
                prog.attach_usdt("/bin/true", "python", "gc__start")
    names = [r.str1 for r in got if r.str0.endswith("py_workload.py")]
    assert [names.count(f) for f in ("gamma_fn", "beta", "alpha", "keyfn")] == [3, 15, 15, 3]
    assert all(r.arg_cnt == 3 and r.cookie == 0 for r in got)


def test_tracefs_uprobe_fallback_counts_semaphore(need_root: None, sdt_bins: tuple[Path, Path],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the uprobe PMU, uprobes are made through tracefs' uprobe_events, which
    must carry the semaphore as PATH:OFFSET(REF_CTR)."""
    from coreframe import features, links, tracefs
    from coreframe.errors import Error

    try:
        if not Path(tracefs.tracefs_file("uprobe_events")).exists():
            pytest.skip("no tracefs uprobe_events")
    except Error:
        pytest.skip("no tracefs")
    monkeypatch.setattr(features, "has_uprobe_multi", lambda: False)
    real_pmu = links._pmu_type
    monkeypatch.setattr(links, "_pmu_type", lambda name: None if name == "uprobe"
                        else real_pmu(name))
    exe = str(sdt_bins[0])
    with usdtkit.Proc([exe]) as t:
        before = usdtkit.semaphore(t.pid, exe, "cftest", "tick")
        with _load(t.pid) as obj:
            link = obj.programs.usdt_strings.attach_usdt(exe, "cftest", "tick", pid=t.pid,
                                                         cookie=9)
            assert [c.kind for c in link.children] == ["uprobe"]
            assert usdtkit.semaphore(t.pid, exe, "cftest", "tick") == before + 1
            assert t.round("3") == "done 3"
            got = usdtkit.coreframe_records(obj)
            link.close()
        assert usdtkit.semaphore(t.pid, exe, "cftest", "tick") == before
    assert [(r.cookie, r.args[1], r.str0) for r in got] == [(9, i, "tick-name") for i in range(3)]
