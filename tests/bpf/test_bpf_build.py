"""The committed BPF objects are exactly what the committed sources build to.

The Makefile is run in a fresh directory elsewhere on disk, in a mount namespace that
hides what a fresh Debian 12 lacks (``freshns``): matching bytes prove that the objects
are current, that the build does not leak the checkout path (BTF line_info records file
names), and that it needs nothing the project's setup does not install.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import freshns
import pytest

import coreframe
from coreframe.build import bpf_cflags, target_arch

ROOT = Path(__file__).resolve().parents[2]
# every example package's source, beside its tool module (the Makefile's EXAMPLE_SRCS)
EXAMPLE_SOURCES = sorted(ROOT.glob("examples/*/*/*.bpf.c"))
SOURCES = (sorted(ROOT.glob("bpf/*.bpf.c")) + sorted(ROOT.glob("tests/objects/*.bpf.c"))
           + EXAMPLE_SOURCES)


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
    freshns.require()
    top = tmp_path_factory.mktemp("bpf-rebuild") / "some" / "other" / "checkout"
    top.mkdir(parents=True)
    shutil.copy2(ROOT / "Makefile", top / "Makefile")
    shutil.copytree(ROOT / "bpf", top / "bpf")
    (top / "tests" / "objects").mkdir(parents=True)
    for f in (ROOT / "tests" / "objects").glob("*"):
        if f.suffix in (".c", ".h"):
            shutil.copy2(f, top / "tests" / "objects" / f.name)
    for f in EXAMPLE_SOURCES:
        rel = f.relative_to(ROOT)
        (top / rel.parent).mkdir(parents=True, exist_ok=True)
        shutil.copy2(f, top / rel)
    proc = subprocess.run(
        freshns.hiding([make, "-s", "objects", f"CLANG={clang}", f"LLVM_STRIP={strip}",
                        f"PYTHON={sys.executable}"], top.parents[2] / "ns"),
        cwd=top, capture_output=True, text=True,
    )
    assert proc.returncode == 0, f"make objects failed:\n{proc.stderr}"
    return top


def test_there_are_bpf_sources() -> None:
    names = {p.name for p in SOURCES}
    assert {"execsnoop.bpf.c", "readhist.bpf.c", "syscount.bpf.c", "opensnoop.bpf.c",
            "syslat.bpf.c"} <= names


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


# A source that needs the UAPI headers, as the docs' plugin author and the inline tests write.
UAPI_SOURCE = """#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("tracepoint/syscalls/sys_enter_getpid")
int count(void *ctx) { __u64 n = 0; return (int)n; }

char LICENSE[] SEC("license") = "GPL";
"""


def test_inline_compile_needs_no_usr_include_asm(tmp_path: Path) -> None:
    """compile_bpf works where /usr/include/asm is missing; plain -target bpf does not."""
    _tools()
    freshns.require()
    src = tmp_path / "uapi.bpf.c"
    src.write_text(UAPI_SOURCE)
    # control: without the shared flags the namespace really makes the build fail
    bare = subprocess.run(
        freshns.hiding(["clang", "-g", "-O2", "-target", "bpf", "-c", str(src),
                        "-o", str(tmp_path / "bare.o")], tmp_path / "ns1"),
        capture_output=True, text=True)
    assert bare.returncode != 0 and "asm/" in bare.stderr, bare.stderr
    code = ("import sys; from coreframe.build import compile_bpf; "
            "compile_bpf(sys.argv[1], sys.argv[2])")
    out = tmp_path / "uapi.bpf.o"
    proc = subprocess.run(
        freshns.hiding([sys.executable, "-c", code, str(src), str(out)], tmp_path / "ns2"),
        capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert out.read_bytes()[:4] == b"\x7fELF"


def test_flags_name_the_multiarch_directory() -> None:
    _tools()
    flags = bpf_cflags()
    dirs = [flags[i + 1] for i, f in enumerate(flags) if f == "-idirafter"]
    multiarch = subprocess.run(["clang", "-print-multiarch"], capture_output=True,
                               text=True).stdout.strip()
    assert f"/usr/include/{multiarch}" in dirs, dirs
    assert f"-D__TARGET_ARCH_{target_arch()}" in flags


def _docs_recipe() -> str:
    text = (ROOT / "docs" / "plugins.md").read_text()
    blocks = re.findall(r"```sh\n(.*?)```", text, re.S)
    recipe = [b for b in blocks if "coreframe cflags" in b]
    assert len(recipe) == 1, "docs/plugins.md should have one ```sh block using coreframe cflags"
    return recipe[0]


def test_docs_compile_recipe_builds_without_usr_include_asm(tmp_path: Path) -> None:
    """docs/plugins.md's compile recipe, run as written in a plugin's directory."""
    _tools()
    freshns.require()
    pkg = tmp_path / "acme-bpf-tools"
    (pkg / "acme_tools" / "objects").mkdir(parents=True)
    (pkg / "tcpcount.bpf.c").write_text(UAPI_SOURCE)
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    proc = subprocess.run(freshns.hiding(["sh", "-ec", _docs_recipe()], tmp_path / "ns"),
                          cwd=pkg, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    data = (pkg / "acme_tools" / "objects" / "tcpcount.bpf.o").read_bytes()
    assert b".BTF" in data and b".debug_info" not in data
    spec = coreframe.open(pkg / "acme_tools" / "objects" / "tcpcount.bpf.o")
    assert dir(spec.programs) == ["count"]
