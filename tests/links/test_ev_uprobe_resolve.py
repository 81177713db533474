"""Symbol and library resolution for uprobes (no kernel needed)."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from coreframe.errors import AttachError
from coreframe.link import symbols as uprobes


@pytest.mark.parametrize("target, expected", [
    ("/bin/bash:readline", ("/bin/bash", "readline", 0)),
    ("/bin/bash:readline+0x10", ("/bin/bash", "readline", 16)),
    ("libc.so.6:malloc+4", ("libc.so.6", "malloc", 4)),
    ("/usr/lib/libfoo.so:0x1234", ("/usr/lib/libfoo.so", None, 0x1234)),
])
def test_parse_target(target, expected):
    assert uprobes.parse_target(target) == expected


@pytest.mark.parametrize("bad", ["", "noseparator", "/path:", "/path:sym+zz"])
def test_parse_target_rejects(bad):
    with pytest.raises(AttachError, match="PATH:SYMBOL"):
        uprobes.parse_target(bad)


def test_libc_found_through_ld_cache_and_proc_maps():
    via_cache = uprobes.resolve_path("libc.so.6")
    assert os.path.basename(via_cache) == "libc.so.6" and os.path.exists(via_cache)
    via_maps = uprobes.resolve_path("libc.so.6", pid=os.getpid())
    assert os.path.realpath(via_maps) == os.path.realpath(via_cache)
    assert os.path.basename(uprobes.resolve_path("libc")).startswith("libc")


def test_missing_things_are_attach_errors():
    with pytest.raises(AttachError, match="does not exist"):
        uprobes.resolve_path("/no/such/binary")
    with pytest.raises(AttachError, match="cannot find 'libnosuchthing.so.9'"):
        uprobes.resolve_path("libnosuchthing.so.9")
    with pytest.raises(AttachError, match="symbol 'no_such_symbol_xyz' not found in"):
        uprobes.resolve("libc.so.6", "no_such_symbol_xyz")
    with pytest.raises(AttachError, match="not a valid ELF"):
        uprobes.symbol_offset("/etc/hostname", "x")


@pytest.mark.skipif(not shutil.which("nm"), reason="binutils nm not installed")
def test_libc_symbol_offset_matches_nm():
    """For libc the text segment has vaddr == file offset, so nm's value is the offset."""
    path = uprobes.resolve_path("libc.so.6")
    out = subprocess.run(["nm", "-D", "--defined-only", path], capture_output=True, text=True,
                         check=True).stdout
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[2].split("@")[0] == "getpid" and parts[1] in "TW":
            want = int(parts[0], 16)
            break
    else:
        pytest.skip("getpid not exported by libc")
    assert uprobes.symbol_offset(path, "getpid") == want
    _, off = uprobes.resolve("libc.so.6", "getpid", 8)
    assert off == want + 8
