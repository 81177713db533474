"""The embedded-object extractor, on synthetic host files and on the real tools."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from corpus_extract import extract_all, extract_binary, find_bpf_objects, libbpf_tools_binaries

import coreframe

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "tests" / "objects" / "obj_calls.bpf.o"
E_MACHINE_OFF = 18
E_SHOFF_OFF = 40


def _with(data: bytes, off: int, fmt: str, value: int) -> bytes:
    buf = bytearray(data)
    struct.pack_into(fmt, buf, off, value)
    return bytes(buf)


def test_finds_objects_between_junk() -> None:
    obj = SAMPLE.read_bytes()
    host = b"\x7fELF" + b"\0" * 100 + obj + b"\x7fELFjunk" + obj + b"tail"
    found = list(find_bpf_objects(host))
    assert [e.data for e in found] == [obj, obj]
    assert found[0].offset == 104
    assert coreframe.open(found[1].data).programs.keys() == coreframe.open(SAMPLE).programs.keys()


def test_rejects_other_machines_and_truncation() -> None:
    obj = SAMPLE.read_bytes()
    x86 = _with(obj, E_MACHINE_OFF, "<H", 62)
    assert list(find_bpf_objects(x86)) == []
    assert list(find_bpf_objects(obj[:-1])) == []  # section header table cut short
    past_end = _with(obj, E_SHOFF_OFF, "<Q", len(obj))
    assert list(find_bpf_objects(past_end)) == []


def test_extract_binary_writes_and_reuses(tmp_path: Path) -> None:
    obj = SAMPLE.read_bytes()
    host = tmp_path / "mytool"
    host.write_bytes(b"prefix" + obj + b"middle" + obj)
    out = tmp_path / "out"
    out.mkdir()
    paths = extract_binary(host, out)
    assert [p.name for p in paths] == ["mytool.bpf.o", "mytool.1.bpf.o"]
    assert all(p.read_bytes() == obj for p in paths)
    mtime = paths[0].stat().st_mtime_ns
    assert extract_binary(host, out) == paths
    assert paths[0].stat().st_mtime_ns == mtime
    # identical objects from several binaries are kept once
    found = extract_all(tmp_path / "dedup", [host])
    assert [p.name for p in found["mytool"]] == ["mytool.bpf.o"]


def test_every_libbpf_tool_has_an_object(tmp_path: Path) -> None:
    binaries = libbpf_tools_binaries()
    if not binaries:
        pytest.skip("libbpf-tools is not installed (setup.sh --dev installs it)")
    for b in binaries:
        objs = list(find_bpf_objects(b.read_bytes()))
        assert len(objs) == 1, f"{b}: {len(objs)} embedded BPF objects"
        coreframe.open(objs[0].data, name=b.name)
