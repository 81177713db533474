"""coreframe's CO-RE results must equal libbpf's, relocation by relocation.

Against the running kernel the oracle is ``bpftool -d prog loadall`` (libbpf
1.1's debug log); against synthetic target BTFs it is a tiny C program linked
with libbpf and ``btf_custom_path``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from test_core_support import (
    OBJECTS,
    VMLINUX,
    bpftool_log,
    build_oracle,
    compare,
    compile_target,
    core_objects,
    have_root,
    oracle_log,
    parse_libbpf_log,
    read_object,
    relocate,
)

from coreframe.btf.types import BTF

needs_root = pytest.mark.skipif(not have_root(), reason="needs root (bpftool loads programs)")
needs_bpftool = pytest.mark.skipif(shutil.which("bpftool") is None, reason="bpftool missing")
needs_clang = pytest.mark.skipif(shutil.which("clang") is None, reason="clang missing")


@pytest.fixture(scope="module")
def vmlinux() -> BTF:
    if not VMLINUX.exists():
        pytest.skip("no /sys/kernel/btf/vmlinux")
    return BTF.from_file(str(VMLINUX))


@pytest.fixture(scope="module")
def oracle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    exe = build_oracle(tmp_path_factory.mktemp("oracle"))
    if exe is None:
        pytest.skip("cannot build the libbpf oracle (cc or libbpf-dev missing)")
    return exe


@pytest.mark.kernel
@needs_root
@needs_bpftool
@pytest.mark.parametrize("obj", core_objects(), ids=lambda p: p.name)
def test_matches_libbpf_on_running_kernel(obj: Path, vmlinux: BTF) -> None:
    info = read_object(obj)
    theirs = parse_libbpf_log(bpftool_log(obj))
    ours = relocate(info, vmlinux)
    total = sum(map(len, info.ext.core_relos.values()))
    assert len(ours) == total
    assert compare(ours, theirs) == total


@needs_root
@needs_clang
@pytest.mark.parametrize("target", ["cf_target", "cf_agree", "cf_ambig", "cf_split"])
def test_matches_libbpf_on_synthetic_target(target: str, oracle: Path, tmp_path: Path) -> None:
    obj = OBJECTS / "core_flavors.bpf.o"
    target_obj, target_btf = compile_target(target, tmp_path)
    theirs = parse_libbpf_log(oracle_log(oracle, obj, target_obj))
    ours = relocate(read_object(obj), target_btf)
    assert compare(ours, theirs) == len(ours)
    errors = [oc.error for oc in ours.values() if oc.error]
    if target == "cf_ambig":
        assert errors and "ambiguous" in errors[0]
    else:
        assert not errors


def test_all_kinds_covered_by_test_objects() -> None:
    """The committed objects exercise every kind clang 14 can emit (all but TYPE_MATCHES)."""
    kinds: set[int] = set()
    for name in ("core_task.bpf.o", "core_flavors.bpf.o"):
        for relos in read_object(OBJECTS / name).ext.core_relos.values():
            kinds.update(r.kind for r in relos)
    assert kinds == set(range(12))
