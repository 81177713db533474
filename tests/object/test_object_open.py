"""open(): programs, subprograms, relocations and maps found the way libbpf finds them."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from objpaths import all_objects, obj

import coreframe
from coreframe.build import compile_bpf
from coreframe.errors import ObjectError, RelocationError
from coreframe.object import MapSpec, ProgramSpec, internal_map_name
from coreframe.sys import consts as C


def _objdump_funcs(path: Path) -> dict[str, tuple[str, str]]:
    """{function: (binding flag, section)} from llvm-objdump -t."""
    out = subprocess.run(["llvm-objdump", "-t", str(path)], capture_output=True, text=True,
                         check=True).stdout
    funcs = {}
    for line in out.splitlines():
        m = re.match(r"^[0-9a-f]{16} (.)\s+F (\S+)\s+[0-9a-f]{16} (\S+)$", line)
        if m:
            funcs[m.group(3)] = (m.group(1), m.group(2))
    return funcs


def _btf_datasec_vars(path: Path, section: str) -> list[str]:
    out = subprocess.run(["bpftool", "btf", "dump", "file", str(path), "format", "raw"],
                         capture_output=True, text=True, check=True).stdout
    names, inside = [], False
    for line in out.splitlines():
        if line.startswith("["):
            inside = f"DATASEC '{section}'" in line
        elif inside:
            m = re.search(r"\(VAR '([^']+)'\)", line)
            if m:
                names.append(m.group(1))
    return names


@pytest.mark.parametrize("path", all_objects(), ids=lambda p: p.name)
def test_open_matches_toolchain_view(path: Path) -> None:
    spec = coreframe.open(path)
    funcs = _objdump_funcs(path)
    entry = {n for n, (b, sec) in funcs.items() if sec != ".text" and b in ("g", "w")}
    assert set(spec.programs) == entry
    for name, p in spec.programs.items():
        assert p.section == funcs[name][1]
        assert p.section_def is not None and p.prog_type == p.section_def.prog_type
        assert len(p.insns) % 8 == 0 and p.insn_cnt > 0
        assert p.license == spec.license == "GPL"
    btf_maps = set(_btf_datasec_vars(path, ".maps"))
    assert {k for k, m in spec.maps.items() if m.section == ".maps"} == btf_maps
    for sec in (".rodata", ".data", ".bss"):
        names = _btf_datasec_vars(path, sec)
        if names:
            assert sorted(spec.datasec(sec).names()) == sorted(names)


def test_programs_and_subprograms() -> None:
    spec = coreframe.open(obj("obj_calls"))
    assert list(spec.programs) == ["calls_a", "calls_b", "calls_c"]
    a = spec.programs.calls_a
    assert isinstance(a, ProgramSpec)
    assert a.section == "tracepoint/syscalls/sys_enter_getppid"
    assert a.attach_to == "syscalls/sys_enter_getppid"
    assert a.prog_type == C.BPF_PROG_TYPE_TRACEPOINT and a.autoload
    assert spec.programs.calls_c.prog_type == C.BPF_PROG_TYPE_RAW_TRACEPOINT
    subs = {f.name for f in spec.subprograms.values()}
    assert subs == {"leaf", "middle", "global_helper", "loop_cb"}
    kinds = {(r.kind, r.target) for r in a.relocations}
    assert ("func_addr", "loop_cb") in kinds
    assert ("call", "middle") in kinds and ("call", "global_helper") in kinds
    for r in a.relocations:
        idx, kind, target, offset, section = r  # a record: every field, in order
        assert 0 <= idx < a.insn_cnt
        assert (kind, target) == (r.kind, r.target)
        if kind == "call":
            assert section == ".text" and offset >= 0


def test_data_relocation_offsets() -> None:
    spec = coreframe.open(obj("obj_globals"))
    p = spec.programs.globals_prog
    ro = spec.datasec(".rodata")
    data_relocs = [r for r in p.relocations if r.kind == "data"]
    targets = {r.target for r in data_relocs}
    assert {".rodata", ".data", ".bss", ".rodata.custom", ".data.custom"} <= targets
    offsets = {r.offset for r in data_relocs if r.target == ".rodata"}
    assert ro.variable("targ_uid").offset in offsets


def test_static_function_in_program_section() -> None:
    spec = coreframe.open(obj("obj_static_call"))
    assert set(spec.programs) == {"static_a", "static_b"}
    (sub,) = spec.subprograms.values()
    assert sub.name == "twist" and sub.section == "tracepoint/syscalls/sys_enter_getppid"


def test_btf_maps() -> None:
    spec = coreframe.open(obj("obj_maps"))
    m = spec.maps
    assert isinstance(m.counts, MapSpec)
    assert (m.counts.type, m.counts.key_size, m.counts.value_size, m.counts.max_entries,
            m.counts.map_flags) == (C.BPF_MAP_TYPE_LRU_HASH, 8, 8, 128,
                                    C.BPF_F_NO_COMMON_LRU)
    assert spec.btf.c_type_name(m.counts.key_type_id) == "struct count_key"
    assert (m.sized.key_size, m.sized.value_size, m.sized.key_type_id) == (8, 12, 0)
    assert (m.ring.type, m.ring.max_entries, m.ring.key_size) == (C.BPF_MAP_TYPE_RINGBUF,
                                                                  5000, 0)
    assert (m.perf.max_entries, m.perf.key_size, m.perf.value_size) == (0, 4, 4)
    assert m.counts.pinning == 0
    assert m.outer.inner is not None and m.outer.inner.type == C.BPF_MAP_TYPE_ARRAY
    assert (m.outer.inner.max_entries, m.outer.inner.value_size) == (2, 8)
    assert m.outer.init_slots == {0: "inner_a", 2: "inner_b"}
    assert m.jumps.init_slots == {1: "tail_target"}
    assert m.jumps.value_size == 4
    m.ring.max_entries = 1 << 16  # writable until load
    assert spec.maps["ring"].max_entries == 65536
    with pytest.raises(AttributeError, match="did you mean counts"):
        spec.maps.countz  # noqa: B018


def test_global_data_maps() -> None:
    spec = coreframe.open(obj("obj_globals"))
    ro, data, bss = spec.maps[".rodata"], spec.maps[".data"], spec.maps[".bss"]
    assert ro.name == "obj_glob.rodata" and data.name == "obj_glob.data"
    assert bss.name == "obj_glob.bss"
    assert spec.maps[".rodata.custom"].name == ".rodata.custom"
    assert ro.map_flags == C.BPF_F_RDONLY_PROG | C.BPF_F_MMAPABLE
    assert data.map_flags == C.BPF_F_MMAPABLE
    assert (ro.type, ro.key_size, ro.max_entries) == (C.BPF_MAP_TYPE_ARRAY, 4, 1)
    assert ro.value_size == len(ro.data)
    assert bss.data == bytearray(bss.value_size)


@pytest.mark.parametrize("obj_name,real,expected", [
    ("execsnoop", ".rodata", "execsnoo.rodata"),
    ("execsnoop", ".bss", "execsnoo.bss"),
    ("a", ".data", "a.data"),
    ("execsnoop", ".kconfig", "execsno.kconfig"),
    ("x", ".rodata.str1.1", ".rodata.str1.1"),
    ("x", ".data.a_very_long_name", ".data.a_very_lo"),
    ("my-obj", ".bss", "my_obj.bss"),
])
def test_internal_map_name(obj_name: str, real: str, expected: str) -> None:
    assert internal_map_name(obj_name, real) == expected


def test_kconfig_externs() -> None:
    spec = coreframe.open(obj("obj_kconfig"))
    ext = spec.externs
    assert {e.kind for e in ext.values()} == {"kconfig"}
    assert ext["CONFIG_COREFRAME_DOES_NOT_EXIST"].weak
    assert not ext["CONFIG_HZ"].weak
    kc = spec.maps[".kconfig"]
    assert kc.map_flags == C.BPF_F_RDONLY_PROG | C.BPF_F_MMAPABLE
    ends = [e.offset + e.size for e in ext.values()]
    assert kc.value_size == max(ends)
    # libbpf's layout: by alignment (larger first), then by name.
    assert ext["CONFIG_BPF_JIT"].offset == 0 and ext["CONFIG_LOCALVERSION"].offset == 17


def test_open_bytes() -> None:
    with open(obj("obj_globals"), "rb") as f:
        spec = coreframe.open(f.read(), name="blob")
    assert spec.maps[".rodata"].name == "blob.rodata"
    assert "globals_prog" in spec.programs


@pytest.mark.parametrize("source", ["/bin/true", b"\x00" * 64, os.urandom(1000)])
def test_not_a_bpf_object(source: object) -> None:
    with pytest.raises(ObjectError):
        coreframe.open(source)


# ---- malformed sources, built on the fly -------------------------------------------------

HEADER = '#include <linux/bpf.h>\n#include <bpf/bpf_helpers.h>\n'


def _build(tmp_path: Path, body: str, name: str = "t") -> str:
    if shutil.which("clang") is None:
        pytest.skip("clang not installed")
    src = tmp_path / f"{name}.bpf.c"
    src.write_text(HEADER + body + '\nchar LICENSE[] SEC("license") = "GPL";\n')
    out = tmp_path / f"{name}.bpf.o"
    compile_bpf(src, out)
    return str(out)


def test_unknown_map_field(tmp_path: Path) -> None:
    path = _build(tmp_path, """
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 4); __uint(bogus, 1);
         __type(key, int); __type(value, int); } m SEC(".maps");
SEC("xdp") int p(void *ctx) { return bpf_map_lookup_elem(&m, &(int){0}) != 0; }
""")
    with pytest.raises(ObjectError, match="map 'm': unknown field 'bogus'"):
        coreframe.open(path)


def test_conflicting_key_size(tmp_path: Path) -> None:
    path = _build(tmp_path, """
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 4); __uint(key_size, 8);
         __type(key, int); __type(value, int); } m SEC(".maps");
SEC("xdp") int p(void *ctx) { return bpf_map_lookup_elem(&m, &(int){0}) != 0; }
""")
    with pytest.raises(ObjectError, match="conflicting key_size 8 != 4"):
        coreframe.open(path)


def test_unknown_section_program(tmp_path: Path) -> None:
    path = _build(tmp_path, 'SEC("bogus/thing") int p(void *ctx) { return 0; }')
    spec = coreframe.open(path)
    p = spec.programs.p
    assert p.prog_type == 0 and p.section_def is None


def test_relocation_to_non_map_data(tmp_path: Path) -> None:
    path = _build(tmp_path, """
int weird SEC("mydata") = 1;
SEC("xdp") int p(void *ctx) { return weird; }
""")
    with pytest.raises(RelocationError, match="function 'p' .* insn 0: relocation against "
                                              "'weird' in section 'mydata'"):
        coreframe.open(path)


def test_no_btf_maps_need_btf(tmp_path: Path) -> None:
    path = _build(tmp_path, """
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 1);
         __type(key, int); __type(value, int); } m SEC(".maps");
SEC("xdp") int p(void *ctx) { return bpf_map_lookup_elem(&m, &(int){0}) != 0; }
""")
    subprocess.run(["llvm-objcopy", "--remove-section=.BTF", "--remove-section=.BTF.ext",
                    path], check=True)
    with pytest.raises(ObjectError, match="needs BTF"):
        coreframe.open(path)


def test_legacy_maps_section_refused(tmp_path: Path) -> None:
    path = _build(tmp_path, """
struct bpf_map_def { unsigned int type, key_size, value_size, max_entries, map_flags; };
struct bpf_map_def SEC("maps") old = { BPF_MAP_TYPE_ARRAY, 4, 4, 1, 0 };
SEC("xdp") int p(void *ctx) { return bpf_map_lookup_elem(&old, &(int){0}) != 0; }
""")
    with pytest.raises(ObjectError, match="legacy 'maps' section"):
        coreframe.open(path)


def test_optional_section_is_not_autoloaded(tmp_path: Path) -> None:
    path = _build(tmp_path, """
SEC("?tp/syscalls/sys_enter_getppid") int maybe(void *ctx) { return 0; }
SEC("tp/syscalls/sys_enter_getppid") int always(void *ctx) { return 0; }
""")
    spec = coreframe.open(path)
    assert not spec.programs.maybe.autoload and spec.programs.always.autoload
    assert spec.programs.maybe.section_def.attach_target == "syscalls/sys_enter_getppid"
    assert spec.programs.maybe.prog_type == C.BPF_PROG_TYPE_TRACEPOINT
