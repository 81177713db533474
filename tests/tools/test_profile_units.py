"""coreframe.symbolize and coreframe.flamegraph on their own (no BPF).

Oracles: binutils' `nm` for an ELF's symbols, pyelftools' own symbol iterator for
the fast Elf64 reader, ctypes for where libc's functions are mapped in this process.
"""

from __future__ import annotations

import ctypes
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from test_profile import build_burn

from coreframe import flamegraph, symbolize
from coreframe.symbolize import ElfSymbols, KernelSymbols, ProcessMaps, Symbolizer

LIBC = "/usr/lib/x86_64-linux-gnu/libc.so.6"


@pytest.fixture(autouse=True)
def _private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COREFRAME_CACHE_DIR", str(tmp_path / "cache"))


@pytest.mark.parametrize("pie", [True, False])
def test_elf_symbols_match_nm(tmp_path: Path, pie: bool) -> None:
    if shutil.which("nm") is None:
        pytest.skip("no nm (binutils)")
    exe = build_burn(tmp_path / "burn", pie=pie)
    nm = subprocess.run(["nm", "-S", "--defined-only", str(exe)], capture_output=True,
                        text=True, check=True).stdout
    syms = ElfSymbols.read(str(exe))
    checked = 0
    for line in nm.splitlines():
        m = re.match(r"([0-9a-f]+) ([0-9a-f]+) [Tt] (\S+)$", line)
        if not m:
            continue
        start, size, name = int(m.group(1), 16), int(m.group(2), 16), m.group(3)
        assert syms.lookup(start) == name
        assert syms.lookup(start + size - 1) == name
        checked += 1
    assert checked >= 4  # main, burn_a, burn_b, zero_reader at least
    # a file offset inside burn_a maps back to its address (PIE: vaddr == offset here)
    a = syms.starts[syms.names.index("burn_a")]
    off = next(o for o, v, n in syms.segments if v <= a < v + n)
    assert syms.vaddr(a - next(v for o, v, n in syms.segments if v <= a < v + n) + off) == a


def test_fast_reader_equals_pyelftools() -> None:
    from elftools.elf.elffile import ELFFile

    if not os.path.exists(LIBC):
        pytest.skip(f"no {LIBC}")
    with open(LIBC, "rb") as f:
        elf = ELFFile(f)
        slow = []
        for sec_name in (".symtab", ".dynsym"):
            sec = elf.get_section_by_name(sec_name)
            if sec is None:
                continue
            for sym in sec.iter_symbols():
                if (sym["st_value"] and sym["st_info"]["type"] in symbolize._CODE_TYPES
                        and sym.name and sym["st_shndx"] != "SHN_UNDEF"):
                    slow.append((sym["st_value"], sym["st_size"], sym.name))
        fast = symbolize._code_symbols(elf)
    assert len(fast) > 1000 and sorted(fast) == sorted(slow)


def test_cached_by_build_id(tmp_path: Path) -> None:
    exe = build_burn(tmp_path / "burn")
    first = ElfSymbols.read(str(exe))
    assert first.build_id
    cached = list((tmp_path / "cache").glob(f"elfsyms-{first.build_id}.*"))
    assert len(cached) == 1
    again = ElfSymbols.read(str(exe))
    assert (again.starts, again.names, again.segments) == (
        first.starts, first.names, first.segments)


def test_libc_function_in_this_process() -> None:
    """ctypes says where libc's getpid() is mapped here; the symbolizer names it."""
    libc = ctypes.CDLL(None)
    addr = ctypes.cast(libc.getpid, ctypes.c_void_p).value
    assert addr
    sym = Symbolizer()
    # leaf frame: looked up as is; a return address is looked up one byte back
    assert sym.user_stack(os.getpid(), [addr, addr + 1]) == ["getpid", "getpid"]
    assert sym.user_stack(os.getpid(), [8]) == [symbolize.UNKNOWN]
    maps = ProcessMaps.read(os.getpid())
    assert maps is not None and maps.find(addr) is not None
    assert ProcessMaps.read(2**22 + 7) is None  # no such process: None, not an error


def test_kernel_symbols() -> None:
    if os.geteuid() != 0:
        pytest.skip("kallsyms addresses are zero without root")
    k = KernelSymbols()
    i = k.names.index("vfs_read")
    assert k.lookup(k.addrs[i]) == "vfs_read"
    assert k.lookup(k.addrs[i] + 1) in ("vfs_read",) or k.addrs[i + 1] == k.addrs[i] + 1
    assert k.lookup(1) == symbolize.UNKNOWN
    assert k.addrs == sorted(k.addrs)


def test_flamegraph_tree_and_escaping() -> None:
    stacks = [(["prog", "main", "a<b>&c"], 30), (["prog", "main", "b"], 10),
              ([("prog", "comm"), ("main", "user"), ("sys_read", "kernel")], 5),
              (["prog", "main", "tiny"], 0)]
    root = flamegraph.build_tree(stacks)
    assert root.count == 45
    prog = root.children["prog", "comm"]
    assert prog.count == 5  # the comm-kind frame is its own node
    assert root.children["prog", "user"].children["main", "user"].count == 40
    svg = flamegraph.render_svg(stacks, title="T & <t>")
    assert "a&lt;b&gt;&amp;c (30 samples, 66.67%)" in svg
    assert "<title>T" not in svg and "T &amp; &lt;t&gt;" in svg
    assert "tiny" not in svg  # no samples, no box
    assert 'data-total="45"' in svg
    html = flamegraph.render_html(stacks)
    assert html.startswith("<!DOCTYPE html>") and "<?xml" not in html and "<svg" in html
    # a box narrower than MIN_W pixels is left out
    many = [(["p", f"f{i}"], 1) for i in range(20000)]
    assert flamegraph.render_svg(many).count('class="f"') < 20000
