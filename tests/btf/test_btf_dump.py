"""dump_raw must be byte-identical to `bpftool btf dump file F format raw`."""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from coreframe.btf import BTF, btf_from_path, kernel
from coreframe.btf.dump import dump_json, dump_raw, dump_raw_bytes
from coreframe.errors import ObjectError

VMLINUX = "/sys/kernel/btf/vmlinux"
REPO = Path(__file__).resolve().parents[2]
# Every compiled object in the repository (bpf/ holds sources only), but not the
# copies setuptools leaves under build/ directories.
OBJECTS = sorted(
    str(p.relative_to(REPO))
    for d in ("plugins/objects", "tests/objects", "examples")
    for p in (REPO / d).glob("**/*.bpf.o")
    if "build" not in p.relative_to(REPO).parts
)

Dump = Callable[[object], str]

needs_bpftool = pytest.mark.skipif(shutil.which("bpftool") is None,
                                   reason="bpftool not installed (oracle for raw dumps)")


def bpftool_bytes(path: Path, base: Path | None = None) -> bytes:
    """bpftool's raw dump as bytes (names need not be UTF-8), split on ``base`` if given."""
    cmd = ["bpftool", *(["-B", str(base)] if base else []), "btf", "dump", "file", str(path),
           "format", "raw"]
    return subprocess.run(cmd, check=True, capture_output=True).stdout


@pytest.mark.skipif(not os.path.exists(VMLINUX), reason="no kernel BTF")
def test_vmlinux_raw_dump_identical(bpftool_dump: Dump) -> None:
    ours = dump_raw(BTF.from_file(VMLINUX))
    theirs = bpftool_dump(VMLINUX)
    assert ours == theirs


@pytest.mark.parametrize("rel", OBJECTS or ["<none>"])
def test_repo_object_raw_dump_identical(rel: str, bpftool_dump: Dump) -> None:
    if rel == "<none>":
        pytest.skip("no *.bpf.o under plugins/objects, tests/objects or examples")
    path = REPO / rel
    assert dump_raw(btf_from_path(str(path))) == bpftool_dump(path)


def test_allkinds_object_raw_dump_identical(allkinds_obj: Path, bpftool_dump: Dump) -> None:
    assert dump_raw(btf_from_path(str(allkinds_obj))) == bpftool_dump(allkinds_obj)


def test_synthetic_kinds_raw_dump_identical(
    synthetic_blob: bytes, tmp_path: Path, bpftool_dump: Dump
) -> None:
    path = tmp_path / "synthetic.btf"
    path.write_bytes(synthetic_blob)
    text = dump_raw(BTF.from_bytes(synthetic_blob))
    assert text == bpftool_dump(path)
    for needle in ("ENUM64 'swide' encoding=SIGNED", "val=-2LL", "ULL", "fwd_kind=union",
                   "linkage=(unknown)", "encoding=UNKN", "bitfield_size=20"):
        assert needle in text


def test_dump_json_is_stable_and_complete(allkinds_obj: Path) -> None:
    btf = btf_from_path(str(allkinds_obj))
    doc = json.loads(dump_json(btf))
    assert doc["start_id"] == 1
    assert [t["id"] for t in doc["types"]] == list(range(1, len(btf)))
    by_name = {t["name"]: t for t in doc["types"] if t["name"]}
    bits = by_name["bits"]
    assert bits["kind"] == "STRUCT" and bits["members"][2] == {
        "name": "c", "type_id": bits["members"][2]["type_id"], "bits_offset": 8,
        "bitfield_size": 40}
    assert by_name["small"]["values"][0] == {"name": "A", "val": 0xFFFFFFFF}
    assert by_name[".data"]["kind"] == "DATASEC"
    assert dump_json(btf) == dump_json(btf_from_path(str(allkinds_obj)))


@needs_bpftool
def test_vmlinux_from_index_cache_raw_dump_identical(btf_cache_dir: Path) -> None:
    """The kernel BTF as a warm start loads it: mmap'ed bytes, offsets from the cache."""
    if not os.path.exists(VMLINUX):
        pytest.skip("no kernel BTF")
    kernel.vmlinux()
    kernel.save_pending_indexes()
    kernel.vmlinux.cache_clear()
    warm = kernel.vmlinux()
    assert warm._name_index is not None, "second load did not come from the index cache"
    assert dump_raw_bytes(warm) == bpftool_bytes(Path(VMLINUX))


def _odd_blob(raw_btf: Any) -> bytes:
    """Names with printf conversions, non-UTF-8 bytes and mid-string offsets; empty vlens."""
    b = raw_btf()
    i32 = b.int_("int", 4, signed=True)
    b.add(8, "pct%s%d%%", i32)
    b.add(8, "caf\u00e9", i32)
    tail = b.s("longname_tail") + 8  # "_tail": an offset into the middle of a string
    b.strings += b"bad\xff\xfe\0"
    bad = len(b.strings) - 6
    b.add(8, "", i32)
    b.types[-1] = struct.pack("<III", tail, 8 << 24, i32)
    b.add(8, "", i32)
    b.types[-1] = struct.pack("<III", bad, 8 << 24, i32)
    b.add(4, "s%n", 8, vlen=2, extra=struct.pack("<IIIIII", bad, i32, 0, tail, i32, 32))
    b.add(13, "", i32, vlen=2, extra=struct.pack("<IIII", b.s("%%"), i32, 0, 0))
    b.add(4, "empty", 0)
    b.add(5, "empty_u", 0)
    b.add(6, "empty_e", 4)
    b.add(19, "empty_e64", 8)
    b.add(13, "", 0)
    b.add(6, "e", 4, vlen=2, extra=struct.pack("<IIII", bad, 1, tail, 2))
    return b.blob()


@needs_bpftool
def test_odd_names_raw_dump_identical(raw_btf: Any, tmp_path: Path) -> None:
    blob = _odd_blob(raw_btf)
    path = tmp_path / "odd.btf"
    path.write_bytes(blob)
    theirs = bpftool_bytes(path)
    btf = BTF.from_bytes(blob)
    assert dump_raw_bytes(btf) == theirs
    assert dump_raw(btf) == theirs.decode("utf-8", "replace")
    for needle in (b"'pct%s%d%%'", b"'bad\xff\xfe'", b"'_tail'", b"'s%n'", b"\t'%%' type_id=1",
                   b"'empty_e64' encoding=UNSIGNED size=8 vlen=0\n"):
        assert needle in theirs


@needs_bpftool
def test_split_btf_raw_dump_identical(raw_btf: Any, tmp_path: Path) -> None:
    """Split BTF: ids and names continue from the base, DATASEC entries name base types."""
    base_b = raw_btf()
    i32 = base_b.int_("int", 4, signed=True)
    base_b.add(4, "base_s", 4, vlen=1, extra=struct.pack("<III", base_b.s("x"), i32, 0))
    base = BTF.from_bytes(base_b.blob())
    split_b = raw_btf(str_base=len(base_b.strings), first_id=len(base))
    ptr = split_b.add(2, "", i32)
    split_b.types[-1] = struct.pack("<III", 0, 2 << 24, i32)
    var = split_b.add(14, "mod_var", i32, extra=struct.pack("<I", 1))
    split_b.add(15, ".data", 8, vlen=3,
                extra=struct.pack("<9I", var, 0, 4, i32, 4, 4, 0, 8, 0))
    split_b.add(4, "mod_s", 16, vlen=2, extra=struct.pack(
        "<IIIIII", base_b.offsets["x"], ptr, 0, split_b.s("y"), i32, 64))
    split_b.add(8, "", i32)
    split_b.types[-1] = struct.pack("<III", base_b.offsets["int"], 8 << 24, i32)  # base string
    base_path, split_path = tmp_path / "base.btf", tmp_path / "split.btf"
    base_path.write_bytes(base_b.blob())
    split_path.write_bytes(split_b.blob())
    theirs = bpftool_bytes(split_path, base=base_path)
    assert dump_raw_bytes(BTF.from_bytes(split_b.blob(), base=base)) == theirs
    assert b"[3] PTR '(anon)' type_id=1\n" in theirs and b"(INT 'int')" in theirs
    assert b"[7] TYPEDEF 'int' type_id=1\n" in theirs


def test_empty_type_section_dumps_nothing(raw_btf: Any) -> None:
    btf = BTF.from_bytes(raw_btf().blob())
    assert len(btf) == 1
    assert dump_raw_bytes(btf) == b"" and dump_raw(btf) == ""


def test_entry_name_outside_string_table_raises(raw_btf: Any) -> None:
    for kind, extra in ((13, struct.pack("<II", 7777, 0)), (6, struct.pack("<II", 7777, 1)),
                        (19, struct.pack("<III", 7777, 1, 0))):
        b = raw_btf()
        b.add(kind, "t", 4, vlen=1, extra=extra)
        with pytest.raises(ObjectError, match="string offset 7777"):
            dump_raw_bytes(BTF.from_bytes(b.blob()))


def _int_encodings_blob(raw_btf: Any) -> bytes:
    """One INT per encoding value: the three named ones (SIGNED, CHAR, BOOL; pahole and
    clang emit only SIGNED and BOOL, so CHAR appears in no compiled object), none, and
    the combinations bpftool prints as UNKN; plus a CHAR-encoded struct member so the
    encoding also shows up through a reference."""
    b = raw_btf()
    b.int_("plain", 4)
    b.add(1, "s32", 4, extra=struct.pack("<I", (1 << 24) | 32))
    ch = b.add(1, "char", 1, extra=struct.pack("<I", (2 << 24) | 8))
    b.add(1, "_Bool", 1, extra=struct.pack("<I", (4 << 24) | 8))
    b.add(1, "sch", 1, extra=struct.pack("<I", (3 << 24) | 8))
    b.add(1, "bch", 1, extra=struct.pack("<I", (6 << 24) | 8))
    b.add(1, "wchar", 4, extra=struct.pack("<I", (2 << 24) | (4 << 16) | 12))
    b.add(4, "holder", 2, vlen=1, extra=struct.pack("<III", b.s("c"), ch, 8))
    return b.blob()


@needs_bpftool
def test_char_encoded_int_raw_dump_identical(raw_btf: Any, tmp_path: Path) -> None:
    blob = _int_encodings_blob(raw_btf)
    path = tmp_path / "encodings.btf"
    path.write_bytes(blob)
    theirs = bpftool_bytes(path)
    btf = BTF.from_bytes(blob)
    assert dump_raw_bytes(btf) == theirs
    assert dump_raw(btf) == theirs.decode()
    for needle in (b"[3] INT 'char' size=1 bits_offset=0 nr_bits=8 encoding=CHAR\n",
                   b"encoding=SIGNED", b"encoding=BOOL", b"encoding=(none)", b"encoding=UNKN",
                   b"bits_offset=4 nr_bits=12 encoding=CHAR"):
        assert needle in theirs, needle
