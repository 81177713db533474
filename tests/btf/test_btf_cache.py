"""The on-disk vmlinux index cache: cold build, warm reuse, corruption, ownership."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from coreframe.btf import BTF, Kind, kernel

VMLINUX = "/sys/kernel/btf/vmlinux"
pytestmark = pytest.mark.skipif(not os.path.exists(VMLINUX), reason="no kernel BTF")


def _vmlinux() -> BTF:
    """vmlinux(), then write the index a cold start defers to exit."""
    btf = kernel.vmlinux()
    kernel.save_pending_indexes()
    return btf


def _index_files(d: Path) -> list[Path]:
    return sorted(d.glob("btf-*.idx"))


def test_cold_build_writes_private_cache(btf_cache_dir: Path) -> None:
    assert not btf_cache_dir.exists()
    btf = _vmlinux()
    assert btf.find("task_struct", Kind.STRUCT)
    assert stat.S_IMODE(btf_cache_dir.stat().st_mode) == 0o700
    files = _index_files(btf_cache_dir)
    assert len(files) == 1
    assert stat.S_IMODE(files[0].stat().st_mode) == 0o600
    assert not list(btf_cache_dir.glob("*.tmp"))
    assert _vmlinux() is btf  # memoized per process


def test_warm_read_uses_cache(btf_cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cold = _vmlinux()
    expect = cold.find("sk_buff", Kind.STRUCT)
    kernel.vmlinux.cache_clear()

    def no_scan(*args: object, **kwargs: object) -> None:
        raise AssertionError("warm start must not scan the type section")

    monkeypatch.setattr("coreframe.btf.types.scan_types", no_scan)
    monkeypatch.setattr("coreframe.btf.types.BTF.build_name_index", no_scan)
    warm = _vmlinux()
    assert warm is not cold
    assert warm.find("sk_buff", Kind.STRUCT) == expect
    assert len(warm) == len(cold)
    assert warm[expect[0]].size == cold[expect[0]].size


@pytest.mark.parametrize("damage", ["truncate", "flip_payload", "flip_magic", "wrong_hash",
                                    "empty"])
def test_corrupt_cache_is_ignored_and_rebuilt(btf_cache_dir: Path, damage: str) -> None:
    _vmlinux()
    (path,) = _index_files(btf_cache_dir)
    good = path.read_bytes()
    blob = bytearray(good)
    if damage == "truncate":
        blob = blob[: len(blob) // 2]
    elif damage == "flip_payload":
        blob[len(blob) - 1000] ^= 0xFF
    elif damage == "flip_magic":
        blob[0] ^= 0xFF
    elif damage == "wrong_hash":
        blob[40] ^= 0x01
    else:
        blob = bytearray()
    path.write_bytes(bytes(blob))
    kernel.vmlinux.cache_clear()
    btf = _vmlinux()
    ids = btf.find("task_struct", Kind.STRUCT)
    assert btf[ids[0]].name == "task_struct"
    assert path.read_bytes() == good  # rebuilt and rewritten


def test_foreign_owned_dir_not_trusted(btf_cache_dir: Path) -> None:
    if os.getuid() != 0:
        pytest.skip("needs root to chown a directory to another user")
    btf_cache_dir.mkdir(mode=0o700)
    os.chown(btf_cache_dir, 65534, 65534)
    assert kernel.cache_dir() is None
    btf = _vmlinux()  # still works, just without the cache
    assert btf.find("task_struct")
    assert _index_files(btf_cache_dir) == []


def test_group_writable_dir_not_trusted(btf_cache_dir: Path) -> None:
    btf_cache_dir.mkdir(mode=0o700)
    os.chmod(btf_cache_dir, 0o777)
    assert kernel.cache_dir() is None


def test_symlinked_dir_not_trusted(btf_cache_dir: Path, tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    btf_cache_dir.symlink_to(real)
    assert kernel.cache_dir() is None


def test_default_dir_follows_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("COREFRAME_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert kernel.cache_dir() == str(tmp_path / "xdg" / "coreframe")
    assert stat.S_IMODE((tmp_path / "xdg" / "coreframe").stat().st_mode) == 0o700
