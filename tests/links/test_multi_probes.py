"""uprobe.multi / uretprobe.multi: one link for N functions of a real binary, each
function's calls counted, and the per-function uprobe fallback forced through
COREFRAME_DISABLE_LINKS; kprobe.multi's pattern resolution and its error on a
kernel without kprobes (the guests attach it for real: tests/kernel/test_kern_multi.py).
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

import coreframe
from coreframe import features
from coreframe.errors import AttachError, Error, FeatureMissing
from coreframe.link import attach_uprobe_multi, kprobe_multi, symbols
from coreframe.link.base import glob_matcher
from coreframe.sys import consts as C

ROOT = Path(__file__).resolve().parents[2]
OBJ = ROOT / "tests" / "objects" / "multi_probes.bpf.o"
SRC = Path(__file__).with_name("multi_target.c")
NFUNCS = 8
ROUNDS = 3
# function i runs i + 1 times per round, with argument and return value i
EXPECTED = [ROUNDS * (i + 1) for i in range(NFUNCS)]
U64 = struct.Struct("<Q")

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> str:
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler to build the uprobe target")
    out = tmp_path_factory.mktemp("multi") / "multi_target"
    subprocess.run([cc, "-O2", "-o", str(out), str(SRC)], check=True)
    return str(out)


def _counts(m: coreframe.maps.Map) -> list[int]:
    return [U64.unpack(m.raw.lookup(i))[0] for i in range(NFUNCS + 1)]


def _load(target: str, pattern: str = "cf_multi_fn*") -> coreframe.object.loader.Object:
    spec = coreframe.open(str(OBJ))
    for name, p in spec.programs.items():
        p.autoload = name.startswith("umulti")
        if p.autoload:
            p.attach_to = f"{target}:{pattern}"  # SEC("uprobe.multi") names no binary
    return spec.load()


MODES = {
    "link": ("", C.BPF_TRACE_UPROBE_MULTI),
    "uprobes": ("uprobe_multi", 0),
}


@root_only
@pytest.mark.kernel
@pytest.mark.parametrize("mode", list(MODES))
def test_uprobe_multi_counts_every_function(target: str, mode: str,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    disable, load_type = MODES[mode]
    if disable:
        monkeypatch.setenv(features.DISABLE_LINKS_ENV, disable)
    elif not features.has_uprobe_multi():
        pytest.skip("kernel has no uprobe_multi links (6.6+)")
    with _load(target) as obj:
        assert {p.expected_attach_type for p in obj.programs.values()} == {load_type}
        links = obj.attach()
        assert len(links) == 2
        for i, link in enumerate(links):
            kind = ("uprobe.multi", "uretprobe.multi")[i]
            info = link.info()
            if mode == "link":
                # one kernel link carries all eight functions
                assert link.kind == kind
                assert info["type"] == "BPF_LINK_TYPE_UPROBE_MULTI"
            else:
                assert link.kind == f"{kind} (uprobes)"
                assert len(info["links"]) == NFUNCS
                assert {c["type"] for c in info["links"]} == {"BPF_LINK_TYPE_PERF_EVENT"}
            assert f"{target}:cf_multi_fn* ({NFUNCS} functions)" in link.target
        subprocess.run([target, str(ROUNDS)], check=True)
        assert _counts(obj.maps.entries) == EXPECTED + [0]
        assert _counts(obj.maps.returns) == EXPECTED + [0]
        obj.detach()
        subprocess.run([target, str(ROUNDS)], check=True)  # detached: nothing more counted
        assert _counts(obj.maps.entries) == EXPECTED + [0]


@root_only
@pytest.mark.kernel
def test_uprobe_multi_api_exact_name_and_glob(target: str) -> None:
    """attach_uprobe_multi directly: an exact name is one target, '?' one character."""
    with _load(target) as obj:
        prog = obj.programs.umulti_entry
        with attach_uprobe_multi(prog, target, "cf_multi_fn3") as one:
            assert "(1 functions)" in one.target
            subprocess.run([target, "2"], check=True)
        with attach_uprobe_multi(prog, target, "cf_multi_fn?"):
            subprocess.run([target, "1"], check=True)
        counts = _counts(obj.maps.entries)
        assert counts == [(i + 1) + (2 * 4 if i == 3 else 0) for i in range(NFUNCS)] + [0]


@root_only
@pytest.mark.kernel
def test_uprobe_multi_errors_are_one_line(target: str) -> None:
    with _load(target) as obj:
        prog = obj.programs.umulti_entry
        with pytest.raises(AttachError, match=r"no function of .* matches 'nothing_\*'"):
            attach_uprobe_multi(prog, target, "nothing_*")
        with pytest.raises(AttachError, match="exactly one of pattern= or offsets="):
            attach_uprobe_multi(prog, target)
    spec = coreframe.open(str(OBJ))
    for name, p in spec.programs.items():
        p.autoload = name == "umulti_entry"
    spec.programs.umulti_entry.attach_to = target  # no ':PATTERN'
    with spec.load() as obj, pytest.raises(AttachError, match="expected PATH:PATTERN"):
        obj.attach()


def test_function_offsets_match_nm(target: str) -> None:
    """The glob over the symbol table finds what nm lists, at the file offsets the
    single-symbol resolver gives (oracle: binutils' nm, and symbol_offset)."""
    nm = subprocess.run(["nm", "--defined-only", target], capture_output=True, text=True,
                        check=True).stdout.split("\n")
    names = sorted(line.split()[2] for line in nm
                   if line.split()[2:3] and line.split()[2].startswith("cf_multi_fn"))
    found = symbols.function_offsets(target, "cf_multi_fn*")
    assert sorted(n for n, _ in found) == names == [f"cf_multi_fn{i}" for i in range(NFUNCS)]
    for name, off in found:
        assert off == symbols.symbol_offset(target, name)
    assert len(symbols.function_offsets(target, "cf_multi_*")) == NFUNCS + 1
    assert symbols.function_offsets(target, "cf_multi_fn[0]") == []  # no classes


def test_glob_matcher_is_libbpfs() -> None:
    m = glob_matcher("__x64_sys_getp*id")
    assert m("__x64_sys_getpid") and m("__x64_sys_getppid") and m("__x64_sys_getpgid")
    assert not m("__x64_sys_getpriority")
    assert glob_matcher("a?c")("abc") and not glob_matcher("a?c")("ac")
    assert glob_matcher("*")("") and glob_matcher("a.b")("a.b") and not glob_matcher("a.b")("axb")
    assert glob_matcher("x[1]")("x[1]")


def test_disable_links_rejects_unknown_kinds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(features.DISABLE_LINKS_ENV, "uprobe_multi, kprobe_mutli")
    with pytest.raises(Error, match="unknown link kind 'kprobe_mutli'"):
        features.link_disabled("uprobe_multi")
    monkeypatch.setenv(features.DISABLE_LINKS_ENV, "all")
    assert features.link_disabled("xdp") and features.link_disabled("kprobe_multi")
    monkeypatch.delenv(features.DISABLE_LINKS_ENV)
    assert not features.link_disabled("tcx")


@root_only
@pytest.mark.kernel
def test_kprobe_multi_loads_for_the_path_it_will_take(monkeypatch: pytest.MonkeyPatch) -> None:
    """Loaded for the multi link where the kernel has it, else as a plain kprobe program;
    with neither kprobe_multi nor kprobes, attaching says so in one error."""
    spec = coreframe.open(str(OBJ))
    for name, p in spec.programs.items():
        p.autoload = name == "kmulti_entry"
    with spec.load() as obj:
        want = C.BPF_TRACE_KPROBE_MULTI if features.has_kprobe_multi() else 0
        assert obj.programs.kmulti_entry.expected_attach_type == want
        if not features.has_kprobe_multi() and not features.has_kprobe():
            with pytest.raises(FeatureMissing, match="neither kprobe_multi links nor kprobes"):
                obj.attach()
    monkeypatch.setenv(features.DISABLE_LINKS_ENV, "kprobe_multi")
    spec = coreframe.open(str(OBJ))
    for name, p in spec.programs.items():
        p.autoload = name == "kmulti_entry"
    with spec.load() as obj:
        assert obj.programs.kmulti_entry.expected_attach_type == 0
    assert kprobe_multi.use_multi_link() is False
