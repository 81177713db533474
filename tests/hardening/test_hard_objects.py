"""Hostile objects found by fuzzing, kept as deterministic regressions.

Each case patches one field of a real clang-built object (so everything else
stays valid) and expects a one-line ``ObjectError`` or a bounded result, never
a struct.error, a hang or an allocation the size of the lie.
"""

from __future__ import annotations

import struct
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from coreframe.btf.types import BTF
from coreframe.errors import ObjectError
from coreframe.object import open as open_object
from coreframe.object.elf import ElfFile

GLOBALS = Path(__file__).resolve().parents[2] / "tests" / "objects" / "obj_globals.bpf.o"


def _section_header(data: bytes, index: int) -> int:
    shoff = struct.unpack_from("<Q", data, 0x28)[0]
    shentsize = struct.unpack_from("<H", data, 0x3A)[0]
    return shoff + index * shentsize


def _with_section_size(name: str, size: int) -> bytes:
    data = bytearray(GLOBALS.read_bytes())
    sec = ElfFile(bytes(data)).section(name)
    assert sec is not None
    struct.pack_into("<Q", data, _section_header(data, sec.index) + 32, size)
    return bytes(data)


def _btf_patch(edit: Any) -> bytes:
    """Apply ``edit(btf, blob)`` to a copy of the object's .BTF, in place in the file."""
    data = bytearray(GLOBALS.read_bytes())
    raw = ElfFile(bytes(data)).section(".BTF").data
    start = bytes(data).find(raw)
    blob = bytearray(raw)
    edit(BTF.from_bytes(raw), blob)
    data[start:start + len(blob)] = blob
    return bytes(data)


def _var_type(btf: BTF, name: str) -> int:
    (var,) = [t for t in range(1, len(btf)) if btf.name_of(t) == name]
    return btf.resolve(btf[var].type)


@pytest.mark.parametrize("size", [1 << 31, 1 << 33, 1 << 40, (1 << 64) - 1])
def test_huge_bss_is_refused_without_allocating(size: int) -> None:
    """.bss (SHT_NOBITS) may claim any size: it must not become a bytearray of that size."""
    tracemalloc.start()
    try:
        with pytest.raises(ObjectError, match=r"\.bss"):
            open_object(_with_section_size(".bss", size))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 << 20


@pytest.mark.parametrize("size", [1 << 20, 1 << 40])
def test_section_past_end_of_file(size: int) -> None:
    with pytest.raises(ObjectError, match="past end of file|over 4 GiB"):
        open_object(_with_section_size(".rodata", size))


def test_array_variable_with_absurd_nelems_decodes_bounded() -> None:
    """An ARRAY claiming 2^31 elements inside a 32-byte variable: read only what exists."""
    def edit(btf: BTF, blob: bytearray) -> None:
        arr = _var_type(btf, "sizes")
        struct.pack_into("<I", blob, btf.type_offset(arr) + 12 + 8, 0x7FFFFFFF)

    # Refusing it (at open or at first access) is the expected outcome; a bounded
    # decode would be acceptable too.
    try:
        spec = open_object(_btf_patch(edit))
        value = spec.rodata.sizes
    except ObjectError as e:
        assert "sizes" in str(e)
        return
    assert value == [1, 2, 4, 8]


def test_self_containing_struct_is_an_object_error() -> None:
    """struct limits { struct limits lo; ... }: decoding must stop, not recurse forever."""
    def edit(btf: BTF, blob: bytearray) -> None:
        st = _var_type(btf, "lim")
        off = btf.type_offset(st)
        struct.pack_into("<I", blob, off + 12 + 4, st)  # member 0 ('lo') -> the struct

    try:
        spec = open_object(_btf_patch(edit))
    except ObjectError:
        return
    with pytest.raises(ObjectError, match="loop|too deep|chain"):
        spec.rodata.lim  # noqa: B018


def test_datasec_size_beyond_u32_is_an_object_error() -> None:
    """A section larger than a DATASEC's u32 size field is refused, not a struct.error."""
    with pytest.raises(ObjectError):
        open_object(_with_section_size(".bss", (1 << 32) + 16))


def test_btf_ext_record_counts_larger_than_the_section() -> None:
    """func_info claiming 2^32-1 records of 2^31 bytes: refused before any allocation."""
    from coreframe.btf.ext import BTFExt

    elf = ElfFile(GLOBALS.read_bytes())
    btf = BTF.from_bytes(elf.section(".BTF").data)
    ext = bytearray(elf.section(".BTF.ext").data)
    hdr_len, fi_off = struct.unpack_from("<II", ext, 4)
    start = hdr_len + fi_off
    for rec_size, num in ((8, 0xFFFFFFFF), (1 << 31, 2), (0xFFFFFFFC, 0xFFFFFFFF)):
        blob = bytearray(ext)
        struct.pack_into("<I", blob, start, rec_size)
        struct.pack_into("<I", blob, start + 8, num)
        tracemalloc.start()
        try:
            with pytest.raises(ObjectError, match="func_info"):
                BTFExt.from_bytes(bytes(blob), btf)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < 1 << 20


def test_short_list_zero_fills_array_variable_in_place() -> None:
    spec = open_object(GLOBALS.read_bytes())
    image = spec.maps[".rodata"].data
    size = len(image)
    spec.rodata.sizes = [3]
    assert spec.rodata.sizes == [3, 0, 0, 0]
    assert len(spec.maps[".rodata"].data) == size
