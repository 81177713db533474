"""The minimal BTF (btf.minimize, ``coreframe btf min``) relocates like the full one.

For every committed object with CO-RE relocations, the minimal BTF cut from the
running kernel's BTF must give each relocation the same outcome as the full BTF: the
same patched instruction, the same poisoning, the same error (type ids, which the
minimal BTF renumbers, compared through its id map). ``bpftool gen min_core_btf`` is
the oracle for what to keep: the same types, hence the same size. The synthetic
targets add what the kernel cannot show: several flavors, an ambiguity (which must
stay an ambiguity) and TYPE_MATCHES.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from test_core_matches import exists_to_matches
from test_core_support import (
    OBJECTS,
    VMLINUX,
    ObjInfo,
    compile_target,
    core_objects,
    read_object,
    relocate,
)

from coreframe.btf.core import BPF_CORE_TYPE_ID_TARGET, BPF_CORE_TYPE_MATCHES
from coreframe.btf.dump import dump_raw
from coreframe.btf.kinds import BTF_KIND_PTR
from coreframe.btf.minimize import MinBTF, min_core_btf
from coreframe.btf.types import BTF

needs_vmlinux = pytest.mark.skipif(not VMLINUX.exists(), reason="no kernel BTF")
needs_bpftool = pytest.mark.skipif(shutil.which("bpftool") is None, reason="no bpftool oracle")
needs_clang = pytest.mark.skipif(shutil.which("clang") is None, reason="clang missing")


@pytest.fixture(scope="module")
def vmlinux() -> BTF:
    if not VMLINUX.exists():
        pytest.skip("no kernel BTF")
    return BTF.from_file(str(VMLINUX))


def outcomes(info: ObjInfo, target: BTF, ids: dict[int, int] | None = None) -> dict:
    """Each relocation's outcome as comparable values; ``ids`` maps the full BTF's type
    ids to the minimal one's (a type-id relocation's value is an id)."""
    out = {}
    for key, oc in relocate(info, target).items():
        if oc.error is not None:
            out[key] = ("error", "ambiguous" in oc.error)
            continue
        res = oc.result
        assert res is not None
        after, imm64 = oc.after, oc.after_imm64
        new = res.new_value
        if res.kind == BPF_CORE_TYPE_ID_TARGET:
            # the instruction carries the id (new_value): compared as mapped below
            after = imm64 = None
            if ids is not None and not res.poison:
                new = ids.get(new, 0)
        out[key] = (res.kind, res.old_value, new, res.poison, res.orig_size, res.new_size,
                    res.fail_memsz_adjust, after, imm64, sorted(oc.poisoned))
    return out


def assert_same(info: ObjInfo, full: BTF, small: MinBTF | bytes) -> int:
    data = small.data if isinstance(small, MinBTF) else small
    ids = small.ids if isinstance(small, MinBTF) else None
    want = outcomes(info, full, ids)
    got = outcomes(info, BTF.from_bytes(data))
    if ids is None:  # bpftool's numbering: leave type-id relocations out
        for d in (want, got):
            for k in [k for k, v in d.items() if v[0] == BPF_CORE_TYPE_ID_TARGET]:
                del d[k]
    assert got == want
    return len(want)


@needs_vmlinux
@pytest.mark.parametrize("obj", core_objects(), ids=lambda p: p.name)
def test_min_relocates_like_full(obj: Path, vmlinux: BTF) -> None:
    info = read_object(obj)
    small = min_core_btf(vmlinux, [(info.btf, info.ext)])
    assert small.relocations == sum(map(len, info.ext.core_relos.values()))
    assert len(small.data) < len(vmlinux.to_bytes()) // 100
    assert assert_same(info, vmlinux, small) == small.relocations


@needs_vmlinux
def test_one_min_btf_for_every_object(vmlinux: BTF) -> None:
    """One BTF cut for all objects at once serves each of them."""
    infos = [read_object(p) for p in core_objects()]
    small = min_core_btf(vmlinux, [(i.btf, i.ext) for i in infos])
    assert small.objects == len(infos)
    for info in infos:
        assert_same(info, vmlinux, small)
    # what nothing reached is gone: pointers to such types point to void
    btf = BTF.from_bytes(small.data)
    assert len(btf) - 1 == len(small.ids) < 1000
    assert any(btf.raw(t)[2] == 0 for t in btf.ids_of_kinds(BTF_KIND_PTR))


@needs_vmlinux
@needs_bpftool
@pytest.mark.parametrize("obj", core_objects(), ids=lambda p: p.name)
def test_min_keeps_what_bpftool_keeps(obj: Path, vmlinux: BTF, tmp_path: Path) -> None:
    """bpftool's minimal BTF: the same types (so the same size), and relocating against
    it gives the same outcomes too."""
    theirs = tmp_path / "bpftool.btf"
    subprocess.run(["bpftool", "gen", "min_core_btf", str(VMLINUX), str(theirs), str(obj)],
                   check=True, capture_output=True)
    info = read_object(obj)
    ours = min_core_btf(vmlinux, [(info.btf, info.ext)])
    assert len(ours.data) == theirs.stat().st_size
    assert dump_raw(BTF.from_bytes(ours.data)) == dump_raw(BTF.from_file(str(theirs)))
    assert_same(info, vmlinux, theirs.read_bytes())


@needs_clang
@pytest.mark.parametrize("target", ["cf_target", "cf_agree", "cf_ambig"])
def test_flavors_and_ambiguity_survive(target: str, tmp_path: Path) -> None:
    """Several flavors of one type, agreeing or not: every match is kept, so an
    ambiguous relocation is ambiguous against the minimal BTF too."""
    info = read_object(OBJECTS / "core_flavors.bpf.o")
    _, full = compile_target(target, tmp_path)
    small = min_core_btf(full, [(info.btf, info.ext)])
    assert assert_same(info, full, small)
    errors = [v for v in outcomes(info, BTF.from_bytes(small.data)).values()
              if v[0] == "error"]
    assert bool(errors) == (target == "cf_ambig")


@needs_clang
def test_type_matches_survive(tmp_path: Path) -> None:
    """TYPE_MATCHES compares whole types: they are kept whole, both verdicts stay."""
    obj = tmp_path / "core_flavors.bpf.o"
    exists_to_matches(OBJECTS / "core_flavors.bpf.o", obj)
    info = read_object(obj)
    _, full = compile_target("cf_target", tmp_path)
    small = min_core_btf(full, [(info.btf, info.ext)])
    assert assert_same(info, full, small)
    verdicts = {v[2] for v in outcomes(info, BTF.from_bytes(small.data)).values()
                if v[0] == BPF_CORE_TYPE_MATCHES}
    assert verdicts == {0, 1}
