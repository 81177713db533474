"""USDT notes and argument specs, read from real binaries; readelf is the oracle."""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest
import usdtkit

from coreframe import usdt
from coreframe.errors import AttachError


def readelf_notes(path: str) -> list[tuple[str, str, int, int, int, str]]:
    """(provider, name, location, base, semaphore, arguments) as binutils prints them."""
    if shutil.which("readelf") is None:
        pytest.skip("readelf (binutils) not installed")
    text = subprocess.run(["readelf", "-n", path], capture_output=True, text=True,
                          check=True).stdout
    out = []
    pat = re.compile(r"Provider: (\S+)\s+Name: (\S+)\s+Location: (0x[0-9a-f]+), "
                     r"Base: (0x[0-9a-f]+), Semaphore: (0x[0-9a-f]+)\s+Arguments: ?(.*)")
    for m in pat.finditer(text):
        out.append((m[1], m[2], int(m[3], 16), int(m[4], 16), int(m[5], 16), m[6].strip()))
    return out


def ours(path: str) -> list[tuple[str, str, int, int, int, str]]:
    return [(n.provider, n.name, n.loc_addr, n.base_addr, n.sema_addr, n.args)
            for n in usdt.read_binary(path).notes]


def test_python_notes_match_readelf() -> None:
    if not Path(usdtkit.PYTHON).exists():
        pytest.skip(f"no {usdtkit.PYTHON}")
    want = readelf_notes(usdtkit.PYTHON)
    assert want, "readelf found no probes"
    assert ours(usdtkit.PYTHON) == want
    assert ("python", "function__entry") in usdt.read_binary(usdtkit.PYTHON).probes()


def test_sdt_target_notes_match_readelf(sdt_bins: tuple[Path, Path]) -> None:
    for path in sdt_bins:
        assert ours(str(path)) == readelf_notes(str(path))


def test_targets_of_pie_and_library(sdt_bins: tuple[Path, Path]) -> None:
    exe, lib = sdt_bins
    b = usdt.read_binary(str(exe))
    assert b.e_type == usdt.ET_DYN
    (t,) = usdt.find_targets(b, "cftest", "tick")
    note = next(n for n in b.notes if n.name == "tick")
    seg = b.segment_of(note.loc_addr)
    assert t.rel_ip == note.loc_addr - seg[0] + seg[2]
    assert t.sema_off == b.file_offset(note.sema_addr) and t.sema_off
    (lt,) = usdt.find_targets(usdt.read_binary(str(lib)), "cftest", "libtick")
    assert lt.sema_off == 0
    with pytest.raises(AttachError, match="needs a process id"):
        usdt.find_targets(b, "cftest", "tick", need_abs_ip=True)


def test_prelink_adjustment(sdt_bins: tuple[Path, Path], tmp_path: Path) -> None:
    """A prelinked file moved .stapsdt.base but not the notes: addresses follow the base."""
    exe, _ = sdt_bins
    data = bytearray(exe.read_bytes())
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    str_off = struct.unpack_from("<Q", data, shoff + shstrndx * shentsize + 24)[0]
    delta = 0x10
    for i in range(shnum):
        at = shoff + i * shentsize
        name_off = struct.unpack_from("<I", data, at)[0]
        name = data[str_off + name_off:data.index(b"\0", str_off + name_off)]
        if name == b".stapsdt.base":
            addr = struct.unpack_from("<Q", data, at + 16)[0]
            struct.pack_into("<Q", data, at + 16, addr + delta)
            break
    else:
        pytest.fail("no .stapsdt.base section")
    moved = tmp_path / "moved"
    moved.write_bytes(bytes(data))
    (orig,) = usdt.find_targets(usdt.read_binary(str(exe)), "cftest", "tick")
    (adj,) = usdt.find_targets(usdt.read_binary(str(moved)), "cftest", "tick")
    assert adj.rel_ip == orig.rel_ip + delta
    assert adj.abs_ip == orig.abs_ip + delta
    assert adj.sema_off == orig.sema_off + delta


@pytest.mark.parametrize(("text", "kind", "size", "signed", "val_off", "reg_off"), [
    ("-4@%eax", usdt.ARG_REG, 4, True, 0, 80),
    ("8@%rdx", usdt.ARG_REG, 8, False, 0, 96),
    ("-1@%sil", usdt.ARG_REG, 1, True, 0, 104),
    ("8@-8(%rbp)", usdt.ARG_REG_DEREF, 8, False, -8, 32),
    ("-4@112(%rsp)", usdt.ARG_REG_DEREF, 4, True, 112, 152),
    ("8@(%rsp)", usdt.ARG_REG_DEREF, 8, False, 0, 152),
    ("-4@$5", usdt.ARG_CONST, 4, True, 5, 0),
    ("-4@$-9", usdt.ARG_CONST, 4, True, -9, 0),
    ("2@%r9w", usdt.ARG_REG, 2, False, 0, 64),
])
def test_arg_forms(text: str, kind: int, size: int, signed: bool, val_off: int,
                   reg_off: int) -> None:
    a = usdt.parse_arg(text)
    assert (a.kind, a.size, a.signed, a.val_off, a.reg_off) == (kind, size, signed, val_off,
                                                                 reg_off)
    assert a.bitshift == 64 - 8 * size


def test_sib_form_parsed_and_refused_by_old_header() -> None:
    a = usdt.parse_arg("8@(%rax,%rdx,8)")
    assert (a.kind, a.reg_off, a.idx_reg_off, a.scale_shift, a.val_off) == (
        usdt.ARG_SIB, 80, 96, 3, 0)
    b = usdt.parse_arg("-1@-96(%rbp,%rax)")
    assert (b.kind, b.val_off, b.reg_off, b.idx_reg_off, b.scale_shift) == (
        usdt.ARG_SIB, -96, 32, 80, 0)
    # Debian 12's usdt.bpf.h (libbpf 1.1) has no SIB case: say so, naming the argument.
    layout = usdt.SpecLayout.from_btf(None)
    with pytest.raises(AttachError, match=r"'8@\(%rax,%rdx,8\)'.*scale-index-base"):
        layout.encode([a], 0, "8@(%rax,%rdx,8)")


@pytest.mark.parametrize(("text", "fragment"), [
    ("8@%xmm0", "names register %xmm0"),
    ("3@%eax", "has size 3"),
    ("-4@cf_global(%rip)", "bad number 'cf_global'"),
    ("4@[sp, 8]", "is not understood"),
    ("8@(%rax,%rdx,3)", "index scale 3"),
    ("eax", "expected SIZE@LOCATION"),
])
def test_unknown_specs_are_named(text: str, fragment: str) -> None:
    with pytest.raises(AttachError) as e:
        usdt.parse_args(f"8@%rdi {text}")
    assert text in str(e.value) and fragment in str(e.value)


def test_layout_from_object_btf_matches_libbpf_1_1() -> None:
    """The object's BTF says how usdt.bpf.h lays the spec out; Debian's is libbpf 1.1's."""
    import coreframe

    spec = coreframe.open(str(usdtkit.OBJ))
    layout = usdt.SpecLayout.from_btf(spec.btf)
    default = usdt.SpecLayout.default()
    assert (layout.size, layout.args_off, layout.arg_size, layout.cookie_off,
            layout.cnt_off) == (default.size, default.args_off, default.arg_size,
                                default.cookie_off, default.cnt_off)
    assert not layout.has_sib
    raw = layout.encode(usdt.parse_args("-4@$-9 8@-8(%rbp)"), 0x1122, "")
    val0, type0, reg0, sign0, shift0 = struct.unpack_from("<QIhBB", raw, 0)
    assert (val0, type0, sign0, shift0) == ((-9) & (2**64 - 1), usdt.ARG_CONST, 1, 32)
    val1, type1, reg1, sign1, shift1 = struct.unpack_from("<QIhBB", raw, 16)
    assert (val1, type1, reg1, sign1, shift1) == ((-8) & (2**64 - 1), usdt.ARG_REG_DEREF,
                                                  32, 0, 0)
    assert struct.unpack_from("<Qh", raw, 192) == (0x1122, 2)


def test_no_such_probe_did_you_mean() -> None:
    if not Path(usdtkit.PYTHON).exists():
        pytest.skip(f"no {usdtkit.PYTHON}")
    b = usdt.read_binary(usdtkit.PYTHON)
    with pytest.raises(AttachError, match="no USDT probe python:function_entry; did you mean "
                                          "python:function__entry"):
        usdt.find_targets(b, "python", "function_entry")
    with pytest.raises(AttachError, match=r"has no USDT probes .*readelf -n /bin/true"):
        usdt.find_targets(usdt.read_binary("/bin/true"), "python", "function__entry")
