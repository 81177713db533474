"""`coreframe btf dump` through the console script, against bpftool as the oracle."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from cli_helpers import REPO, run_cli

bpftool = shutil.which("bpftool")
OBJECTS = sorted((REPO / "plugins" / "objects").glob("*.bpf.o"))


@pytest.mark.skipif(bpftool is None, reason="bpftool not installed (./setup.sh --dev)")
@pytest.mark.parametrize("path", [Path("/sys/kernel/btf/vmlinux"), *OBJECTS],
                         ids=lambda p: p.name)
def test_raw_dump_matches_bpftool(path: Path) -> None:
    if not path.exists():
        pytest.skip(f"{path} not present")
    ours = run_cli("btf", "dump", str(path), "--format", "raw")
    assert ours.returncode == 0, ours.stderr
    theirs = subprocess.run([bpftool, "btf", "dump", "file", str(path), "format", "raw"],
                            capture_output=True, text=True, check=True)
    assert ours.stdout == theirs.stdout


def test_json_dump_parses() -> None:
    r = run_cli("btf", "dump", str(OBJECTS[0]), "--format", "json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["types"][0]["id"] == 1


def test_dump_of_non_btf_file_is_one_line(tmp_path: Path) -> None:
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"\x00" * 64)
    r = run_cli("btf", "dump", str(junk))
    assert r.returncode == 1
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr


@pytest.mark.skipif(bpftool is None, reason="bpftool not installed (./setup.sh --dev)")
def test_raw_dump_of_char_encoded_ints_matches_bpftool(tmp_path: Path) -> None:
    """INTs with each encoding, CHAR included (no compiled object has one)."""
    import struct

    strings = b"\0plain\0char\0_Bool\0s8\0"
    types = b"".join(struct.pack("<IIII", name, 1 << 24, size, enc) for name, size, enc in (
        (1, 4, 32), (7, 1, (2 << 24) | 8), (12, 1, (4 << 24) | 8), (18, 1, (1 << 24) | 8)))
    path = tmp_path / "ints.btf"
    path.write_bytes(struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, len(types), len(types),
                                 len(strings)) + types + strings)
    ours = run_cli("btf", "dump", str(path), "--format", "raw")
    assert ours.returncode == 0, ours.stderr
    theirs = subprocess.run([bpftool, "btf", "dump", "file", str(path), "format", "raw"],
                            capture_output=True, text=True, check=True)
    assert "[2] INT 'char' size=1 bits_offset=0 nr_bits=8 encoding=CHAR" in theirs.stdout
    assert ours.stdout == theirs.stdout
