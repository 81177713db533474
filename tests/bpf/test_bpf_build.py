"""The committed BPF objects are exactly what the committed sources build to.

The Makefile is run in a fresh directory elsewhere on disk: matching bytes prove
both that the objects are current and that the build does not leak the checkout
path (BTF line_info records file names).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = Path("examples/coreframe-syscount/coreframe_syscount")
SOURCES = (sorted(ROOT.glob("bpf/*.bpf.c")) + sorted(ROOT.glob("tests/objects/*.bpf.c"))
           + sorted((ROOT / EXAMPLE).glob("*.bpf.c")))


def _object_for(src: Path) -> Path:
    rel = src.relative_to(ROOT)
    name = src.name.removesuffix(".c") + ".o"
    if rel.parts[0] == "bpf":
        return Path("plugins/objects") / name
    if rel.parts[0] == "examples":
        return rel.parent / "objects" / name
    return rel.parent / name


def _tools() -> tuple[str, str, str]:
    tools = (shutil.which("make"), shutil.which("clang"), shutil.which("llvm-strip"))
    if not all(tools):
        pytest.skip("make, clang and llvm-strip are needed to rebuild BPF objects")
    return tools  # type: ignore[return-value]


@pytest.fixture(scope="module")
def fresh_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build every object with the repository's Makefile in an unrelated directory."""
    make, clang, strip = _tools()
    top = tmp_path_factory.mktemp("bpf-rebuild") / "some" / "other" / "checkout"
    top.mkdir(parents=True)
    shutil.copy2(ROOT / "Makefile", top / "Makefile")
    shutil.copytree(ROOT / "bpf", top / "bpf")
    (top / "tests" / "objects").mkdir(parents=True)
    for f in (ROOT / "tests" / "objects").glob("*"):
        if f.suffix in (".c", ".h"):
            shutil.copy2(f, top / "tests" / "objects" / f.name)
    (top / EXAMPLE).mkdir(parents=True)
    for f in (ROOT / EXAMPLE).glob("*.bpf.c"):
        shutil.copy2(f, top / EXAMPLE / f.name)
    proc = subprocess.run(
        [make, "-s", "objects", f"CLANG={clang}", f"LLVM_STRIP={strip}"],
        cwd=top, capture_output=True, text=True,
    )
    assert proc.returncode == 0, f"make objects failed:\n{proc.stderr}"
    return top


def test_there_are_bpf_sources() -> None:
    names = {p.name for p in SOURCES}
    assert {"execsnoop.bpf.c", "readhist.bpf.c"} <= names


@pytest.mark.parametrize("src", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_committed_object_is_current(src: Path, fresh_build: Path) -> None:
    obj = _object_for(src)
    committed = ROOT / obj
    assert committed.exists(), f"{obj} is missing: run `make objects` and commit it"
    rebuilt = (fresh_build / obj).read_bytes()
    assert committed.read_bytes() == rebuilt, (
        f"{obj} differs from a fresh build of {src.relative_to(ROOT)}: run `make objects`"
    )


@pytest.mark.parametrize("src", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_object_has_btf_and_no_build_paths(src: Path, fresh_build: Path) -> None:
    data = (fresh_build / _object_for(src)).read_bytes()
    assert str(fresh_build).encode() not in data
    assert str(ROOT).encode() not in data
    assert b".BTF" in data and b".BTF.ext" in data
    assert b".debug_info" not in data, "DWARF should be stripped (llvm-strip -g)"
    rel = str(src.relative_to(ROOT)).encode()
    assert b"./" + rel in data, "line_info should name the source relative to the root"


def test_makefile_targets_exist() -> None:
    make, _clang, _strip = _tools()
    for target in ("objects", "check-objects", "test", "lint", "bench", "test-kernels"):
        proc = subprocess.run([make, "-n", target], cwd=ROOT, capture_output=True, text=True)
        assert proc.returncode == 0, f"make -n {target}: {proc.stderr}"
