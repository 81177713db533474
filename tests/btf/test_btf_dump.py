"""dump_raw must be byte-identical to `bpftool btf dump file F format raw`."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from coreframe.btf import BTF, btf_from_path
from coreframe.btf.dump import dump_json, dump_raw

VMLINUX = "/sys/kernel/btf/vmlinux"
REPO = Path(__file__).resolve().parents[2]
OBJECTS = sorted(
    str(p.relative_to(REPO))
    for d in ("plugins/objects", "tests/objects")
    for p in (REPO / d).glob("**/*.bpf.o")
)

Dump = Callable[[object], str]


@pytest.mark.skipif(not os.path.exists(VMLINUX), reason="no kernel BTF")
def test_vmlinux_raw_dump_identical(bpftool_dump: Dump) -> None:
    ours = dump_raw(BTF.from_file(VMLINUX))
    theirs = bpftool_dump(VMLINUX)
    assert ours == theirs


@pytest.mark.parametrize("rel", OBJECTS or ["<none>"])
def test_repo_object_raw_dump_identical(rel: str, bpftool_dump: Dump) -> None:
    if rel == "<none>":
        pytest.skip("no *.bpf.o under plugins/objects or tests/objects")
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
