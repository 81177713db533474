"""Object BTF sanitizing and loading, checked against the kernel and libbpf (via bpftool)."""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import uuid
from pathlib import Path

import pytest

from coreframe.btf import kinds as K
from coreframe.btf.sanitize import sanitize
from coreframe.build import compile_bpf
from coreframe.errors import ObjectError
from coreframe.object.loader import load_object_btf
from coreframe.sys.bpf import btf_info, btf_load

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
    pytest.mark.skipif(shutil.which("clang") is None, reason="needs clang"),
]

SOURCE = r"""
typedef unsigned int u32;
typedef unsigned long long u64;
#define SEC(x) __attribute__((section(x), used))
const volatile u32 targ_pid = 0;
const volatile u64 targ_min = 5;
u64 counter = 1;
u32 other = 7;
u64 zeros;
u32 zeros2;
static u64 hidden;
float ff = 1.5f;
char LICENSE[] SEC("license") = "GPL";
int __attribute__((btf_decl_tag("tagged"))) tagged_var;
SEC("tracepoint/syscalls/sys_enter_openat")
int handle(void *ctx)
{
    if (targ_pid == 1) return 0;
    counter += targ_min + zeros + zeros2 + other + hidden + sizeof(ff) + tagged_var;
    hidden++;
    return 0;
}
"""


def _elf_facts(obj: Path) -> tuple[bytes, dict[str, int], dict[str, dict[str, int]]]:
    from elftools.elf.elffile import ELFFile

    with obj.open("rb") as f:
        elf = ELFFile(f)
        sizes = {s.name: s["sh_size"] for s in elf.iter_sections()}
        offsets: dict[str, dict[str, int]] = {}
        for sym in elf.get_section_by_name(".symtab").iter_symbols():
            if sym["st_info"]["type"] == "STT_OBJECT":
                sec = elf.get_section(sym["st_shndx"]).name
                offsets.setdefault(sec, {})[sym.name] = sym["st_value"]
        raw = elf.get_section_by_name(".BTF").data()
    return raw, sizes, offsets


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("sanitize")
    src = d / "g.bpf.c"
    src.write_text(SOURCE)
    obj = d / "g.bpf.o"
    compile_bpf(src, obj)
    return obj


def test_raw_clang_btf_is_rejected_and_sanitized_loads(compiled: Path) -> None:
    raw, sizes, offsets = _elf_facts(compiled)
    with pytest.raises(OSError):
        btf_load(raw).close()
    fixed = sanitize(raw, sizes, offsets)
    fd = load_object_btf(fixed)
    assert fd is not None
    with fd:
        assert btf_info(fd).btf_size == len(fixed)


def test_sanitized_btf_matches_libbpf(compiled: Path, tmp_path: Path) -> None:
    if shutil.which("bpftool") is None or not os.path.ismount("/sys/fs/bpf"):
        pytest.skip("needs bpftool and bpffs")
    raw, sizes, offsets = _elf_facts(compiled)
    ours = tmp_path / "ours.btf"
    ours.write_bytes(sanitize(raw, sizes, offsets))
    pin = f"/sys/fs/bpf/cf_sanitize_{uuid.uuid4().hex[:8]}"
    subprocess.run(["bpftool", "prog", "load", str(compiled), pin], check=True)
    try:
        show = json.loads(subprocess.run(["bpftool", "prog", "show", "pinned", pin, "-j"],
                                         check=True, capture_output=True, text=True).stdout)
        oracle = subprocess.run(["bpftool", "btf", "dump", "id", str(show["btf_id"])],
                                check=True, capture_output=True, text=True).stdout
    finally:
        os.unlink(pin)
    mine = subprocess.run(["bpftool", "btf", "dump", "file", str(ours)], check=True,
                          capture_output=True, text=True).stdout
    assert mine == oracle
    assert "DATASEC '.bss' size=28 vlen=4" in mine


def test_fallbacks_for_older_kernels_still_load(compiled: Path) -> None:
    raw, sizes, offsets = _elf_facts(compiled)
    old = dict(func_global=False, float=False, decl_tag=False, type_tag=False, enum64=False)
    fixed = sanitize(raw, sizes, offsets, kernel_kinds=old)
    assert len(fixed) == len(raw)  # rewritten in place, ids unchanged
    kinds = _kinds(fixed)
    assert K.BTF_KIND_FLOAT not in kinds.values()
    assert K.BTF_KIND_DECL_TAG not in kinds.values()
    fd = load_object_btf(fixed)
    assert fd is not None
    fd.close()


def test_enum64_and_type_tag_fallbacks() -> None:
    from coreframe.features import btf_blob

    strings = b"\0int\0e\0v\0tag\0"
    types = struct.pack("<IIII", 1, (K.BTF_KIND_INT << 24), 4, (1 << 24) | 32)
    types += struct.pack("<III", 5, (K.BTF_KIND_ENUM64 << 24) | 1, 8) + struct.pack("<III", 7, 1, 2)
    types += struct.pack("<III", 9, K.BTF_KIND_TYPE_TAG << 24, 1)
    types += struct.pack("<III", 0, K.BTF_KIND_PTR << 24, 3)
    blob = btf_blob(types, strings)
    fixed = sanitize(blob, {}, {}, kernel_kinds=dict(enum64=False, type_tag=False))
    kinds = _kinds(fixed)
    assert kinds[2] == K.BTF_KIND_UNION and kinds[3] == K.BTF_KIND_CONST
    assert kinds[5] == K.BTF_KIND_INT  # appended 8-byte member type
    fd = load_object_btf(fixed)
    assert fd is not None
    fd.close()


def test_rejected_btf_returns_none_with_warning(caplog: pytest.LogCaptureFixture) -> None:
    from coreframe.features import btf_blob

    bad = btf_blob(struct.pack("<III", 0, K.BTF_KIND_PTR << 24, 99), b"\0")
    with caplog.at_level("WARNING"):
        assert load_object_btf(bad) is None
    assert "without BTF" in caplog.text


def test_malformed_btf_is_object_error() -> None:
    with pytest.raises(ObjectError, match="magic"):
        sanitize(b"\0" * 24, {}, {})
    with pytest.raises(ObjectError, match="truncated"):
        sanitize(b"\x9f\xeb", {}, {})


def _kinds(blob: bytes) -> dict[int, int]:
    hdr_len, type_off, type_len = struct.unpack_from("<III", blob, 4)
    pos, end, tid, out = hdr_len + type_off, hdr_len + type_off + type_len, 1, {}
    extra = {1: 4, 3: 12, 14: 4, 17: 4}
    per = {4: 12, 5: 12, 6: 8, 13: 8, 15: 12, 19: 12}
    while pos < end:
        info = struct.unpack_from("<I", blob, pos + 4)[0]
        kind, vlen = (info >> 24) & 0x1F, info & 0xFFFF
        out[tid] = kind
        pos += 12 + extra.get(kind, 0) + per.get(kind, 0) * vlen
        tid += 1
    return out


REPO = Path(__file__).resolve().parents[2]
REPO_OBJECTS = ["plugins/objects/execsnoop.bpf.o", "tests/objects/obj_kfunc.bpf.o",
                "tests/objects/obj_globals.bpf.o", "tests/objects/obj_maps.bpf.o",
                "tests/objects/core_task.bpf.o"]


@pytest.mark.parametrize("rel", REPO_OBJECTS)
def test_repo_objects_match_libbpf(rel: str, tmp_path: Path) -> None:
    """Same BTF as libbpf loads for the repository's objects (incl. .ksyms kfuncs)."""
    obj = REPO / rel
    if not obj.exists():
        pytest.skip(f"{rel} not built")
    if shutil.which("bpftool") is None or not os.path.ismount("/sys/fs/bpf"):
        pytest.skip("needs bpftool and bpffs")
    pin_dir = f"/sys/fs/bpf/cf_sanitize_{uuid.uuid4().hex[:8]}"
    r = subprocess.run(["bpftool", "prog", "loadall", str(obj), pin_dir], capture_output=True,
                       text=True)
    try:
        if r.returncode:
            pytest.skip(f"bpftool cannot load {rel} here")
        first = sorted(os.listdir(pin_dir))[0]
        show = json.loads(subprocess.run(
            ["bpftool", "prog", "show", "pinned", f"{pin_dir}/{first}", "-j"],
            check=True, capture_output=True, text=True).stdout)
        # Dump while the pins hold the program: unpinning frees the program and, after an RCU
        # grace period, its BTF, so the id can be gone by the time bpftool looks it up.
        oracle = subprocess.run(["bpftool", "btf", "dump", "id", str(show["btf_id"])],
                                check=True, capture_output=True, text=True).stdout
    finally:
        if os.path.isdir(pin_dir):
            for name in os.listdir(pin_dir):
                os.unlink(os.path.join(pin_dir, name))
            os.rmdir(pin_dir)
    raw, sizes, offsets = _elf_facts(obj)
    ours = tmp_path / "ours.btf"
    ours.write_bytes(sanitize(raw, sizes, offsets))
    mine = subprocess.run(["bpftool", "btf", "dump", "file", str(ours)], check=True,
                          capture_output=True, text=True).stdout
    assert mine == oracle
    fd = load_object_btf(ours.read_bytes())
    assert fd is not None
    fd.close()
