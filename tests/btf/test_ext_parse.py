""".BTF.ext parsing: the test objects, and hand-built sections for edge cases."""

from __future__ import annotations

import re
import shutil
import struct
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_core_support import OBJECTS, bpftool_log, core_objects, have_root, read_object

from coreframe.btf.ext import BTFExt, CoreRelo, FuncInfo, LineInfo
from coreframe.btf.types import BTF, Kind
from coreframe.errors import ObjectError

# --------------------------------------------------------------- real objects


@pytest.mark.parametrize("name", ["core_task.bpf.o", "core_flavors.bpf.o"])
def test_func_info_points_at_program_symbols(name: str) -> None:
    info = read_object(OBJECTS / name)
    assert info.ext.func_info
    for sec, records in info.ext.func_info.items():
        assert sec in info.sections
        for rec in records:
            assert isinstance(rec, FuncInfo)
            t = info.btf[rec.type_id]
            assert t.kind == Kind.FUNC
            prog, start = info.program_at(sec, rec.insn_off)
            assert start * 8 == rec.insn_off
            assert t.name == prog


@pytest.mark.parametrize("name", ["core_task.bpf.c", "core_flavors.bpf.c"])
def test_line_info_matches_source_lines(name: str) -> None:
    source = (OBJECTS / name).read_text().splitlines()
    info = read_object(OBJECTS / name.replace(".c", ".o"))
    n = 0
    for sec, records in info.ext.line_info.items():
        size = len(info.sections[sec])
        offs = [r.insn_off for r in records]
        assert offs == sorted(offs)
        for rec in records:
            assert isinstance(rec, LineInfo)
            assert rec.insn_off % 8 == 0 and rec.insn_off < size
            assert rec.file_name.endswith(name)
            if rec.line == 0:  # compiler-generated code has no source line
                assert rec.line_text == ""
                continue
            assert rec.line <= len(source)
            assert source[rec.line - 1] == rec.line_text
            if rec.col:
                assert rec.col <= len(rec.line_text) + 1
            n += 1
    assert n > 20


def test_core_relos_of_core_task() -> None:
    info = read_object(OBJECTS / "core_task.bpf.o")
    relos = info.ext.core_relos
    assert {k: len(v) for k, v in relos.items()} == {
        "tp_btf/sched_process_exec": 14,
        "raw_tp/sys_enter": 30,
        "tracepoint/syscalls/sys_enter_getpid": 27,
    }
    direct = relos["tp_btf/sched_process_exec"]
    assert all(isinstance(r, CoreRelo) for r in direct)
    # task->pid: struct task_struct member #3 in the local header
    pid = [r for r in direct if r.access_str == "0:3" and r.kind == 0]
    assert len(pid) == 1 and info.btf.name_of(pid[0].type_id) == "task_struct"
    kinds = {r.kind for v in relos.values() for r in v}
    assert kinds == set(range(12))
    assert all(r.insn_off % 8 == 0 for v in relos.values() for r in v)


@pytest.mark.kernel
@pytest.mark.skipif(not have_root(), reason="needs root (bpftool loads programs)")
@pytest.mark.skipif(shutil.which("bpftool") is None, reason="bpftool missing")
@pytest.mark.parametrize("obj", core_objects(), ids=lambda p: p.name)
def test_core_relo_counts_match_libbpf(obj: Path) -> None:
    log = bpftool_log(obj)
    theirs = {
        m[1]: int(m[2]) for m in re.finditer(r"sec '([^']+)': found (\d+) CO-RE relocations", log)
    }
    ours = {k: len(v) for k, v in read_object(obj).ext.core_relos.items()}
    assert ours == theirs


# ------------------------------------------------------ hand-built sections


def _btf_with_strings(strings: list[str]) -> tuple[BTF, dict[str, int]]:
    """A BTF with one INT type and the given strings; returns string offsets."""
    tab = b"\0"
    offs: dict[str, int] = {}
    for s in ["int", *strings]:
        offs[s] = len(tab)
        tab += s.encode() + b"\0"
    types = struct.pack("<III", offs["int"], 1 << 24, 4) + struct.pack("<I", (1 << 24) | 32)
    hdr = struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, len(types), len(types), len(tab))
    return BTF.from_bytes(hdr + types + tab), offs


def _blob(rec_size: int, blocks: list[tuple[int, list[bytes]]]) -> bytes:
    out = struct.pack("<I", rec_size)
    for name_off, recs in blocks:
        out += struct.pack("<II", name_off, len(recs))
        for r in recs:
            out += r.ljust(rec_size, b"\xee")
    return out


def _ext(fi: bytes = b"", li: bytes = b"", cr: bytes = b"", hdr_len: int = 32) -> bytes:
    fields = [0, len(fi), len(fi), len(li), len(fi) + len(li), len(cr)]
    hdr = struct.pack("<HBBI", 0xEB9F, 1, 0, hdr_len) + struct.pack("<6I", *fields)
    hdr = hdr[:hdr_len].ljust(hdr_len, b"\0")
    return hdr + fi + li + cr


@pytest.fixture
def strs() -> tuple[BTF, dict[str, int]]:
    return _btf_with_strings(["prog_sec", "file.c", "  return 0;", "0:1", ".text"])


def test_hand_built_section(strs: tuple[BTF, dict[str, int]]) -> None:
    btf, o = strs
    fi = _blob(8, [(o["prog_sec"], [struct.pack("<II", 0, 1), struct.pack("<II", 16, 1)])])
    li = _blob(16, [(o["prog_sec"], [struct.pack("<IIII", 8, o["file.c"], o["  return 0;"],
                                                 (42 << 10) | 7)])])
    cr = _blob(16, [(o[".text"], [struct.pack("<IIII", 24, 1, o["0:1"], 0)]),
                    (o["prog_sec"], [struct.pack("<IIII", 0, 1, o["0:1"], 2)])])
    ext = BTFExt.from_bytes(_ext(fi, li, cr), btf)
    assert ext.func_info == {"prog_sec": [FuncInfo(0, 1), FuncInfo(16, 1)]}
    assert ext.line_info == {"prog_sec": [LineInfo(8, "file.c", "  return 0;", 42, 7)]}
    assert ext.core_relos == {
        ".text": [CoreRelo(24, 1, "0:1", 0)],
        "prog_sec": [CoreRelo(0, 1, "0:1", 2)],
    }


def test_larger_records_and_header_are_accepted(strs: tuple[BTF, dict[str, int]]) -> None:
    """Newer producers may append fields: unknown tails are skipped."""
    btf, o = strs
    fi = _blob(12, [(o["prog_sec"], [struct.pack("<II", 0, 1), struct.pack("<II", 8, 1)])])
    cr = _blob(24, [(o["prog_sec"], [struct.pack("<IIII", 8, 1, o["0:1"], 0)] * 2)])
    data = _ext(fi, b"", cr, hdr_len=40)
    ext = BTFExt.from_bytes(data, btf)
    assert ext.func_info["prog_sec"] == [FuncInfo(0, 1), FuncInfo(8, 1)]
    assert ext.core_relos["prog_sec"] == [CoreRelo(8, 1, "0:1", 0)] * 2
    assert ext.line_info == {}


def test_old_header_without_core_relos(strs: tuple[BTF, dict[str, int]]) -> None:
    btf, o = strs
    fi = _blob(8, [(o["prog_sec"], [struct.pack("<II", 0, 1)])])
    ext = BTFExt.from_bytes(_ext(fi, hdr_len=24), btf)
    assert ext.func_info["prog_sec"] == [FuncInfo(0, 1)]
    assert ext.core_relos == {}


@pytest.mark.parametrize(
    "mutate, match",
    [
        (lambda d: d[:10], "truncated header"),
        (lambda d: b"\xeb\x9f" + d[2:], "bad magic"),
        (lambda d: d[:2] + b"\x02" + d[3:], "unsupported version"),
        (lambda d: d[:4] + struct.pack("<I", 4096) + d[8:], "bad header length"),
        (lambda d: d[:-4], "past the end|outside"),
        (lambda d: d[:32] + struct.pack("<I", 4) + d[36:], "record size 4"),
    ],
)
def test_malformed_sections_raise_object_error(
    strs: tuple[BTF, dict[str, int]], mutate: Callable[[bytes], bytes], match: str
) -> None:
    btf, o = strs
    fi = _blob(8, [(o["prog_sec"], [struct.pack("<II", 0, 1), struct.pack("<II", 8, 1)])])
    data = _ext(fi)
    BTFExt.from_bytes(data, btf)
    with pytest.raises(ObjectError, match=match):
        BTFExt.from_bytes(mutate(data), btf)


def test_bad_string_offset_names_the_offset(strs: tuple[BTF, dict[str, int]]) -> None:
    btf, o = strs
    cr = _blob(16, [(o["prog_sec"], [struct.pack("<IIII", 0, 1, 99999, 0)])])
    with pytest.raises(ObjectError, match=r"offset \d+"):
        BTFExt.from_bytes(_ext(b"", b"", cr), btf)


def test_block_overrunning_blob_is_rejected(strs: tuple[BTF, dict[str, int]]) -> None:
    btf, o = strs
    fi = struct.pack("<III", 8, o["prog_sec"], 5) + struct.pack("<II", 0, 1)
    with pytest.raises(ObjectError, match="claims 5 records"):
        BTFExt.from_bytes(_ext(fi), btf)


def test_misaligned_insn_off_is_rejected(strs: tuple[BTF, dict[str, int]]) -> None:
    btf, o = strs
    cr = _blob(16, [(o["prog_sec"], [struct.pack("<IIII", 12, 1, o["0:1"], 0)])])
    with pytest.raises(ObjectError, match="insn_off 12"):
        BTFExt.from_bytes(_ext(b"", b"", cr), btf)


def test_raw_btf_bytes_are_accepted_for_strings() -> None:
    """Callers holding only the .BTF bytes get the same result as with a parsed BTF."""
    from elftools.elf.elffile import ELFFile

    with open(OBJECTS / "core_task.bpf.o", "rb") as f:
        elf = ELFFile(f)
        raw_btf = elf.get_section_by_name(".BTF").data()
        raw_ext = elf.get_section_by_name(".BTF.ext").data()
    parsed = BTFExt.from_bytes(raw_ext, BTF.from_bytes(raw_btf))
    raw = BTFExt.from_bytes(raw_ext, raw_btf)
    assert raw.core_relos == parsed.core_relos
    assert raw.line_info == parsed.line_info
    assert raw.func_info == parsed.func_info


def _real_ext() -> tuple[bytes, BTF]:
    from elftools.elf.elffile import ELFFile

    with open(OBJECTS / "core_flavors.bpf.o", "rb") as f:
        elf = ELFFile(f)
        return (
            elf.get_section_by_name(".BTF.ext").data(),
            BTF.from_bytes(elf.get_section_by_name(".BTF").data()),
        )


_EXT, _EXT_BTF = _real_ext()


@settings(max_examples=300, deadline=None)
@given(
    cut=st.integers(min_value=0, max_value=len(_EXT)),
    flips=st.lists(
        st.tuples(st.integers(0, len(_EXT) - 1), st.integers(0, 255)), max_size=6
    ),
)
def test_corrupted_sections_only_raise_object_error(cut: int, flips: list[tuple[int, int]]) -> None:
    data = bytearray(_EXT)
    for pos, val in flips:
        data[pos] = val
    try:
        BTFExt.from_bytes(bytes(data[:cut]), _EXT_BTF)
    except ObjectError:
        pass


def _raw_btf_with_strings(strings: bytes) -> bytes:
    """A raw .BTF blob with no types and exactly ``strings`` as its string section."""
    return struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, 0, 0, len(strings)) + strings


@pytest.mark.parametrize(("strings", "off", "why"), [
    (b"\0abc\0", 9, "past string table of 5 bytes"),
    (b"\0abc", 1, "runs past the end of the string table"),
    (b"\0\xff\xfe\0", 1, "not UTF-8"),
])
def test_raw_string_lookup_bounds(strings: bytes, off: int, why: str) -> None:
    """Strings read from a raw .BTF (callers without a parsed BTF) are bounds-checked
    where they are read: an ObjectError naming the cause, never IndexError/ValueError."""
    from coreframe.btf.ext import _StringTable

    table = _StringTable(_raw_btf_with_strings(strings))
    assert table.get(0, "file name", 8) == ""
    with pytest.raises(ObjectError, match=f"file name string offset {off} at offset 8 is "
                       f"invalid .*{why}"):
        table.get(off, "file name", 8)
