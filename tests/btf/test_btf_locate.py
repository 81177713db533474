"""Which BTF CO-RE relocates against (btf.locate) and reading each form of it.

The precedence (named > COREFRAME_BTF > the kernel's > the BTF search path), the
BTFHub layout of the search path, and the one line said when nothing is found. The
kernel's file is pointed at a temporary one to play a kernel with and without BTF;
nothing here touches the kernel.
"""

from __future__ import annotations

import os
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from coreframe.btf import kernel, locate
from coreframe.btf.minimize import min_core_btf
from coreframe.btf.types import BTF
from coreframe.errors import BTFError, FeatureMissing

REPO = Path(__file__).resolve().parents[2]
EXECSNOOP = REPO / "plugins" / "objects" / "execsnoop.bpf.o"


@pytest.fixture
def fake_kernel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The kernel's BTF file is ``tmp/vmlinux`` (absent until a test writes it), the
    os-release is ``tmp/os-release``, and no environment or earlier choice leaks in."""
    vmlinux = tmp_path / "vmlinux"
    monkeypatch.setattr(locate, "VMLINUX_BTF", str(vmlinux))
    release = tmp_path / "os-release"
    release.write_text('NAME="Debian GNU/Linux"\nID=debian\nVERSION_ID="12"\n')
    monkeypatch.setattr(locate, "OS_RELEASE", (str(release),))
    monkeypatch.delenv(locate.ENV_BTF, raising=False)
    monkeypatch.delenv(locate.ENV_BTF_PATH, raising=False)
    monkeypatch.setattr(locate, "_explicit", [])
    monkeypatch.setattr(locate, "_package_dirs", [])
    yield vmlinux


def _btfhub(root: Path, data: bytes, compressed: bool) -> Path:
    rel = locate.relative_paths()[1 if compressed else 0]
    path = root / rel
    path.parent.mkdir(parents=True)
    if compressed:
        plain = root / "plain.btf"
        plain.write_bytes(data)
        with tarfile.open(path, "w:xz") as tar:
            tar.add(plain, arcname=os.uname().release + ".btf")
    else:
        path.write_bytes(data)
    return path


def test_btfhub_layout() -> None:
    os_id, version, arch, release = locate.kernel_key()
    assert release == os.uname().release
    assert arch == {"aarch64": "arm64"}.get(os.uname().machine, os.uname().machine)
    assert locate.relative_paths() == [f"{os_id}/{version}/{arch}/{release}.btf",
                                       f"{os_id}/{version}/{arch}/{release}.btf.tar.xz"]


def test_precedence(fake_kernel: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hub = tmp_path / "hub"
    shipped = _btfhub(hub, b"x", compressed=False)
    pkg = tmp_path / "pkg"
    monkeypatch.setenv(locate.ENV_BTF_PATH, str(hub))
    assert locate.find() == (str(shipped), "search path")
    fake_kernel.write_bytes(b"")  # hidden under an empty file: still no BTF
    assert locate.find().origin == "search path"
    fake_kernel.write_bytes(b"btf")
    assert locate.find() == (str(fake_kernel), "kernel")
    monkeypatch.setenv(locate.ENV_BTF, "/env.btf")
    assert locate.find() == ("/env.btf", "COREFRAME_BTF")
    locate.set_default("/flag.btf")
    assert locate.find() == ("/flag.btf", "--btf")
    assert locate.find(Path("/arg.btf")) == ("/arg.btf", "btf argument")
    locate.set_default(None)
    assert locate.find().origin == "COREFRAME_BTF"
    # the search path: COREFRAME_BTF_PATH's directories in order, then the packages'
    locate.add_search_dir(str(pkg))
    monkeypatch.setenv(locate.ENV_BTF_PATH, f"{tmp_path / 'nothing'}:{hub}")
    assert locate.search_dirs() == [str(tmp_path / "nothing"), str(hub), str(pkg)]


def test_package_dir_and_compressed(fake_kernel: Path, tmp_path: Path) -> None:
    pkg = tmp_path / "pkg" / "btf"
    shipped = _btfhub(pkg, b"x", compressed=True)
    locate.add_search_dir(str(pkg))
    assert locate.find() == (str(shipped), "search path")


def test_nothing_found_says_how(fake_kernel: Path, tmp_path: Path,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(locate.ENV_BTF_PATH, str(tmp_path))
    with pytest.raises(FeatureMissing) as info:
        locate.find()
    line = str(info.value)
    assert "\n" not in line
    assert info.value.exit_code == 2
    release = os.uname().release
    assert (f"https://github.com/aquasecurity/btfhub-archive/raw/main/debian/12/"
            f"{locate.kernel_key()[2]}/{release}.btf.tar.xz") in line
    for needed in (str(tmp_path), "coreframe btf min", "--btf FILE", "COREFRAME_BTF=FILE",
                   f"debian/12/{locate.kernel_key()[2]}/{release}.btf[.tar.xz]"):
        assert needed in line


@pytest.fixture(scope="module")
def small_btf() -> bytes:
    import coreframe

    if not Path("/sys/kernel/btf/vmlinux").exists():
        pytest.skip("no kernel BTF to cut")
    spec = coreframe.open(EXECSNOOP)
    assert spec.btf is not None and spec.btf_ext is not None
    return min_core_btf(kernel.vmlinux(), [(spec.btf, spec.btf_ext)]).data


@pytest.mark.parametrize("form", ["raw", "tar.xz"])
def test_load_target_forms(form: str, small_btf: bytes, tmp_path: Path) -> None:
    path = (_btfhub(tmp_path, small_btf, compressed=True) if form == "tar.xz"
            else tmp_path / "min.btf")
    if form == "raw":
        path.write_bytes(small_btf)
    btf = kernel.load_target(str(path))
    assert btf.to_bytes() == BTF.from_bytes(small_btf).to_bytes()
    assert btf.find("task_struct")


def test_load_target_refuses_other_files(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("not btf at all\n")
    with pytest.raises(BTFError, match="not BTF"):
        kernel.load_target(str(text))
    broken = tmp_path / "broken.btf.tar.xz"
    broken.write_bytes(b"\xfd7zXZ\x00" + b"\x00" * 40)
    with pytest.raises(BTFError, match="cannot read the BTFHub archive"):
        kernel.load_target(str(broken))


def test_python_api_takes_a_path(small_btf: bytes, tmp_path: Path) -> None:
    """``coreframe.open(path, btf=FILE)`` and ``load(target_btf=PATH)``: the loader
    says what it relocated against and records every result."""
    import coreframe

    if os.geteuid() != 0:
        pytest.skip("loading needs root")
    path = tmp_path / "min.btf"
    path.write_bytes(small_btf)
    with coreframe.open(EXECSNOOP, btf=str(path)).load() as obj:
        assert obj.core_target == (str(path), "btf argument")
        assert len(obj.core_results) >= 10
        assert all(not res.poison for *_, res in obj.core_results)
    with coreframe.open(EXECSNOOP).load(target_btf=path) as obj:
        assert obj.core_target == (str(path), "btf argument")
    with coreframe.open(EXECSNOOP).load() as obj:
        assert obj.core_target is not None and obj.core_target.origin == "kernel"
