"""ElfFile: validation of the ELF header and decoding of sections, symbols, relocations."""

from __future__ import annotations

import os
import subprocess

import pytest
from objpaths import all_objects, obj

from coreframe.errors import ObjectError
from coreframe.object.elf import EM_BPF, R_BPF_64_64, SHT_PROGBITS, STT_FUNC, ElfFile


def test_reads_sections_symbols_license() -> None:
    elf = ElfFile(obj("obj_globals"))
    assert elf.license == "GPL"
    assert elf.kernel_version == 0
    sec = elf.section("tracepoint/syscalls/sys_enter_getppid")
    assert sec is not None and sec.executable and sec.type == SHT_PROGBITS
    funcs = [s.name for s in elf.symbols_in(sec.index) if s.type == STT_FUNC]
    assert funcs == ["globals_prog"]
    rels = elf.relocations[sec.index]
    assert rels and all(r.type == R_BPF_64_64 for r in rels)
    assert elf.section(".bss").data == b""  # SHT_NOBITS has no file contents
    assert elf.section(".bss").size > 0


@pytest.mark.parametrize("path", all_objects(), ids=lambda p: p.name)
def test_sections_match_llvm_objdump(path: os.PathLike[str]) -> None:
    out = subprocess.run(["llvm-objdump", "-h", str(path)], capture_output=True, text=True,
                         check=True).stdout
    expected = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[0].isdigit() and parts[0] != "0":
            expected[parts[1]] = int(parts[2], 16)
    elf = ElfFile(path)
    got = {s.name: s.size for s in elf.sections if s.index}
    assert got == expected


def test_bytes_and_path_agree() -> None:
    path = obj("obj_calls")
    with open(path, "rb") as f:
        data = f.read()
    a, b = ElfFile(path), ElfFile(data)
    assert [(s.name, s.data) for s in a.sections] == [(s.name, s.data) for s in b.sections]
    assert b.name == "<bytes>"


def test_not_bpf_machine() -> None:
    with pytest.raises(ObjectError, match="not a BPF object: machine is x86-64"):
        ElfFile("/bin/true")


@pytest.mark.parametrize("data", [b"", b"hello world" * 10, os.urandom(4096)],
                         ids=["empty", "text", "random"])
def test_not_elf(data: bytes) -> None:
    with pytest.raises(ObjectError, match="not an ELF file"):
        ElfFile(data)


def _header_patched(offset: int, value: bytes) -> bytes:
    with open(obj("obj_globals"), "rb") as f:
        data = bytearray(f.read())
    data[offset:offset + len(value)] = value
    return bytes(data)


def test_big_endian_rejected() -> None:
    with pytest.raises(ObjectError, match="big-endian BPF objects are not supported"):
        ElfFile(_header_patched(5, b"\x02"))


def test_32bit_rejected() -> None:
    with pytest.raises(ObjectError, match="32-bit"):
        ElfFile(_header_patched(4, b"\x01"))


def test_other_machine_named() -> None:
    with pytest.raises(ObjectError, match="machine is AArch64"):
        ElfFile(_header_patched(18, (183).to_bytes(2, "little")))
    assert EM_BPF == 247


def test_truncated_object_names_file() -> None:
    with open(obj("obj_globals"), "rb") as f:
        data = f.read()
    with pytest.raises(ObjectError, match="trunc.o"):
        ElfFile(data[:len(data) // 2], name="trunc.o")


def test_garbage_section_table() -> None:
    data = _header_patched(0x28, (2**40).to_bytes(8, "little"))  # e_shoff far past the end
    with pytest.raises(ObjectError):
        ElfFile(data)


def test_missing_file() -> None:
    with pytest.raises(ObjectError, match="cannot read"):
        ElfFile("/nonexistent/x.bpf.o")
