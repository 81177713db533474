"""Start-up shortcuts of the BTF layer: the per-boot digest memo, .BTF.ext records, CoreResult."""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import Any

import pytest

from coreframe.btf import Kind, kernel
from coreframe.btf.core import BPF_CORE_FIELD_BYTE_OFFSET, CoreResult
from coreframe.btf.ext import BTFExt, CoreRelo, FuncInfo, LineInfo
from coreframe.errors import ObjectError

VMLINUX = "/sys/kernel/btf/vmlinux"
need_vmlinux = pytest.mark.skipif(not os.path.exists(VMLINUX), reason="no kernel BTF")


def _stamps(d: Path) -> list[Path]:
    return sorted(d.glob("vmlinux-*.sum"))


@need_vmlinux
def _vmlinux() -> Any:
    """vmlinux(), then write the index a cold start defers to exit."""
    btf = kernel.vmlinux()
    kernel.save_pending_indexes()
    return btf


def test_warm_start_skips_hashing(btf_cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cold = _vmlinux()
    want = cold.find("task_struct", Kind.STRUCT)
    assert len(_stamps(btf_cache_dir)) == 1
    kernel.vmlinux.cache_clear()

    def no_hash(data: object) -> bytes:
        raise AssertionError("a warm start in the same boot must not hash vmlinux again")

    monkeypatch.setattr(kernel, "content_hash", no_hash)
    monkeypatch.setattr("coreframe.btf.types.scan_types", no_hash)
    warm = _vmlinux()
    assert warm.find("task_struct", Kind.STRUCT) == want


@need_vmlinux
@pytest.mark.parametrize("damage", ["truncate", "magic", "length", "digest"])
def test_bad_stamp_falls_back_to_hashing(btf_cache_dir: Path, damage: str) -> None:
    _vmlinux()
    (stamp,) = _stamps(btf_cache_dir)
    good = stamp.read_bytes()
    blob = bytearray(good)
    if damage == "truncate":
        blob = blob[:20]
    elif damage == "magic":
        blob[0] ^= 0xFF
    elif damage == "length":
        struct.pack_into("<Q", blob, 8, 12345)
    else:
        blob[-1] ^= 0xFF  # names an index file that does not exist: re-hashed, fixed
    stamp.write_bytes(bytes(blob))
    kernel.vmlinux.cache_clear()
    btf = _vmlinux()
    (tid,) = btf.find("task_struct", Kind.STRUCT)
    assert btf[tid].name == "task_struct"
    assert stamp.read_bytes() == good  # recomputed and rewritten
    assert len(list(btf_cache_dir.glob("btf-*.idx"))) == 1


@need_vmlinux
def test_other_boots_stamps_are_pruned(btf_cache_dir: Path) -> None:
    btf_cache_dir.mkdir(mode=0o700)
    old = btf_cache_dir / "vmlinux-00000000-0000-0000-0000-000000000000.sum"
    old.write_bytes(b"x" * 48)
    _vmlinux()
    stamps = _stamps(btf_cache_dir)
    assert len(stamps) == 1 and stamps[0] != old
    assert stamps[0].stat().st_mode & 0o777 == 0o600


def _ext_blob(rec_size: int, insn_offs: list[int]) -> tuple[bytes, bytes]:
    """A .BTF (strings only) and a .BTF.ext with line_info records of ``rec_size`` bytes."""
    strings = b"\0sec\0file.c\0  x = 1;\0"
    btf = struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, 0, 0, len(strings)) + strings
    recs = b"".join(struct.pack("<IIII", off, 5, 12, (7 << 10) | 3).ljust(rec_size, b"\xee")
                    for off in insn_offs)
    li = struct.pack("<I", rec_size) + struct.pack("<II", 1, len(insn_offs)) + recs
    hdr = struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, 0, 0, len(li))
    return btf, hdr + li


def test_line_info_records_are_shared_tuples() -> None:
    btf, ext = _ext_blob(16, [0, 8, 16])
    parsed = BTFExt.from_bytes(ext, btf)
    lines = parsed.line_info["sec"]
    assert lines == [LineInfo(o, "file.c", "  x = 1;", 7, 3) for o in (0, 8, 16)]
    assert lines[0].file_name is lines[2].file_name  # each string decoded once
    with pytest.raises(AttributeError):
        lines[0].line = 9  # type: ignore[misc]
    assert len({CoreRelo(0, 1, "0:1", 0), CoreRelo(0, 1, "0:1", 0)}) == 1
    assert FuncInfo(8, 2).type_id == 2


def test_larger_records_keep_working() -> None:
    btf, ext = _ext_blob(24, [0, 8])
    lines = BTFExt.from_bytes(ext, btf).line_info["sec"]
    assert [li.insn_off for li in lines] == [0, 8]
    assert lines[1].line == 7 and lines[1].col == 3


def test_misaligned_insn_off_names_the_record() -> None:
    btf, ext = _ext_blob(16, [0, 12])
    parsed = BTFExt.from_bytes(ext, btf)  # line_info is parsed on first use
    with pytest.raises(ObjectError, match=r"line_info record at offset 52 has insn_off 12"):
        _ = parsed.line_info


def test_core_result_is_immutable_value() -> None:
    a = CoreResult(BPF_CORE_FIELD_BYTE_OFFSET, 8, 16, False, "x", target_btf=object())
    b = CoreResult(BPF_CORE_FIELD_BYTE_OFFSET, 8, 16, False, "x", target_btf=object())
    assert a == b and hash(a) == hash(b)  # target_btf takes no part in equality
    assert a != CoreResult(BPF_CORE_FIELD_BYTE_OFFSET, 8, 24, False, "x")
    assert "target_btf" not in repr(a) and "new_value=16" in repr(a)
    assert a.kind_name == "byte_off" and a.validate and a.target_spec is None
    with pytest.raises(AttributeError):
        a.new_value = 0  # type: ignore[misc]


def test_core_result_spells_out_its_text_once_and_only_when_read() -> None:
    calls: list[int] = []

    def describe() -> tuple[str, str, str, str]:
        calls.append(1)
        return "expl", "struct t", "[1] struct t.f", "[9] struct t.f"

    r = CoreResult(BPF_CORE_FIELD_BYTE_OFFSET, 8, 16, False, describe=describe)
    assert r.new_value == 16 and not calls  # numbers need no text
    assert (r.explanation, r.target_type_name, r.local_spec, r.target_spec) == (
        "expl", "struct t", "[1] struct t.f", "[9] struct t.f")
    assert r == CoreResult(BPF_CORE_FIELD_BYTE_OFFSET, 8, 16, False, "expl", None, "struct t",
                           local_spec="[1] struct t.f", target_spec="[9] struct t.f")
    assert calls == [1]
    with pytest.raises(AttributeError):
        r.explanation = "other"  # type: ignore[misc]
