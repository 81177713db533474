"""BPF_CORE_TYPE_MATCHES against libbpf.

clang 14 cannot emit bpf_core_type_matches(), so the test objects' TYPE_EXISTS
records (same access string "0", same instruction form, same local value 1) are
rewritten to TYPE_MATCHES in a copy of the object; libbpf then answers the
"match" question for every one of them, and coreframe must agree.
"""

from __future__ import annotations

import shutil
import struct
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile
from test_core_support import (
    OBJECTS,
    VMLINUX,
    bpftool_log,
    build_oracle,
    compare,
    compile_target,
    have_root,
    oracle_log,
    parse_libbpf_log,
    read_object,
    relocate,
)

from coreframe.btf.core import BPF_CORE_TYPE_EXISTS, BPF_CORE_TYPE_MATCHES
from coreframe.btf.types import BTF

needs_root = pytest.mark.skipif(not have_root(), reason="needs root (libbpf loads programs)")


def exists_to_matches(src: Path, dst: Path) -> int:
    """Copy ``src`` to ``dst`` with every TYPE_EXISTS core_relo turned into TYPE_MATCHES."""
    data = bytearray(src.read_bytes())
    with open(src, "rb") as f:
        sec = ELFFile(f).get_section_by_name(".BTF.ext")
        base = sec["sh_offset"]
    hdr_len = struct.unpack_from("<I", data, base + 4)[0]
    off, length = struct.unpack_from("<II", data, base + 24)
    pos = base + hdr_len + off
    end = pos + length
    rec_size = struct.unpack_from("<I", data, pos)[0]
    pos += 4
    changed = 0
    while pos < end:
        _name, num = struct.unpack_from("<II", data, pos)
        pos += 8
        for _ in range(num):
            if struct.unpack_from("<I", data, pos + 12)[0] == BPF_CORE_TYPE_EXISTS:
                struct.pack_into("<I", data, pos + 12, BPF_CORE_TYPE_MATCHES)
                changed += 1
            pos += rec_size
    dst.write_bytes(bytes(data))
    return changed


@pytest.fixture(scope="module")
def oracle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    exe = build_oracle(tmp_path_factory.mktemp("oracle"))
    if exe is None:
        pytest.skip("cannot build the libbpf oracle (cc or libbpf-dev missing)")
    return exe


@pytest.mark.kernel
@needs_root
@pytest.mark.skipif(shutil.which("bpftool") is None, reason="bpftool missing")
@pytest.mark.parametrize("name", ["core_task.bpf.o", "core_flavors.bpf.o"])
def test_type_matches_on_running_kernel(name: str, tmp_path: Path) -> None:
    if not VMLINUX.exists():
        pytest.skip("no /sys/kernel/btf/vmlinux")
    obj = tmp_path / name
    assert exists_to_matches(OBJECTS / name, obj) > 0
    info = read_object(obj)
    ours = relocate(info, BTF.from_file(str(VMLINUX)))
    assert compare(ours, parse_libbpf_log(bpftool_log(obj))) == len(ours)
    kinds = [r.kind for v in info.ext.core_relos.values() for r in v]
    assert BPF_CORE_TYPE_MATCHES in kinds and BPF_CORE_TYPE_EXISTS not in kinds


@needs_root
@pytest.mark.skipif(shutil.which("clang") is None, reason="clang missing")
def test_type_matches_on_synthetic_target(oracle: Path, tmp_path: Path) -> None:
    obj = tmp_path / "core_flavors.bpf.o"
    exists_to_matches(OBJECTS / "core_flavors.bpf.o", obj)
    target_obj, target_btf = compile_target("cf_target", tmp_path)
    ours = relocate(read_object(obj), target_btf)
    theirs = parse_libbpf_log(oracle_log(oracle, obj, target_obj))
    assert compare(ours, theirs) == len(ours)
    verdicts = {
        oc.result.target_spec or oc.result.local_spec: oc.result.new_value
        for oc in ours.values()
        if oc.result is not None and oc.result.kind == BPF_CORE_TYPE_MATCHES
    }
    assert 0 in verdicts.values() and 1 in verdicts.values()
