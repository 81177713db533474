"""ObjectSpec.load(): maps, relocations, CO-RE and programs in the real kernel.

The reference is libbpf itself: each object is also loaded by libbpf (through
ctypes, tests only) and every program's xlated instructions must be identical,
map references compared by the map they name.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest
from objpaths import all_objects, obj
from xlated_oracle import compare_one_program, libbpf, libbpf_xlated, program_insns

import coreframe
from coreframe import features
from coreframe.build import compile_bpf
from coreframe.errors import (
    FeatureMissing,
    MapError,
    ObjectError,
    RelocationError,
    VerifierError,
)
from coreframe.maps import possible_cpus
from coreframe.object.sections import TRAMPOLINE_ATTACH_KINDS
from coreframe.sys import bpf as sysbpf
from coreframe.sys import consts as C

pytestmark = pytest.mark.kernel

# object -> why libbpf (and so bpftool) cannot be the oracle for it
LIBBPF_REFUSES = {"obj_static_call.bpf.o": "libbpf refuses a static function in a program "
                  "section, so it is no oracle for this object (coreframe's result is checked "
                  "by test_programs_run_static_section_call)",
                  "multi_probes.bpf.o": "Debian's libbpf 1.1 predates SEC(\"uprobe.multi\") "
                  "(libbpf 1.3); tests/links/test_multi_probes.py checks these programs "
                  "by their counts",
                  "netdev_count.bpf.o": "Debian's libbpf 1.1 predates SEC(\"tcx/egress\") "
                  "(libbpf 1.3); tests/links/test_netdev_cli.py checks these programs by "
                  "their counts"}
NO_TRAMPOLINES = ("this kernel has no BPF trampolines (it refuses fentry/fexit even to root); "
                  "make test-kernels compares it with libbpf in the 6.1 and 6.12 guests "
                  "(tests/kernel/test_kern_xlated.py)")


@pytest.fixture(autouse=True)
def _root(need_root: None) -> None:
    pass


def _trampoline_progs(spec: coreframe.object.spec.ObjectSpec) -> list[str]:
    return [n for n, p in spec.programs.items()
            if p.section_def and p.section_def.attach_kind in TRAMPOLINE_ATTACH_KINDS]


def _objects() -> list[object]:
    """Every committed object; those libbpf cannot load are skips that say why."""
    return [pytest.param(p, id=p.name, marks=pytest.mark.skip(reason=LIBBPF_REFUSES[p.name]))
            if p.name in LIBBPF_REFUSES else pytest.param(p, id=p.name) for p in all_objects()]


def _trampoline_programs() -> list[object]:
    return [pytest.param(p, name, id=f"{p.name}:{name}") for p in all_objects()
            if p.name not in LIBBPF_REFUSES for name in _trampoline_progs(coreframe.open(p))]


@pytest.mark.parametrize("path", _objects())
def test_xlated_identical_to_libbpf(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """All programs but the trampoline ones, loaded together (those are compared one by
    one below, where the kernel has trampolines)."""
    if libbpf() is None:
        pytest.skip("libbpf.so not installed (test oracle)")
    # SEC("usdt") programs are loaded for uprobe_multi links where the kernel has them
    # (the kernel then gives bpf_get_attach_cookie() its uprobe_multi implementation);
    # Debian's libbpf 1.1 predates that and loads them for perf uprobes: compare that.
    from coreframe import features

    monkeypatch.setattr(features, "has_uprobe_multi", lambda: False)
    spec = coreframe.open(path)
    skip = _trampoline_progs(spec)
    for name in skip:
        spec.programs[name].autoload = False
    if not set(spec.programs) - set(skip):
        pytest.skip("every program runs through a BPF trampoline: compared one by one in "
                    "test_xlated_trampoline_program_identical_to_libbpf")
    pinned = [k for k, m in spec.maps.items() if m.pinning]
    for k in pinned:
        spec.maps[k].pinning = 0
    ref = libbpf_xlated(str(path), list(spec.programs), skip, unpin=pinned)
    with spec.load() as loaded:
        assert set(loaded.programs) == set(ref)
        for name, prog in loaded.programs.items():
            assert program_insns(prog.fd) == ref[name], name


@pytest.mark.parametrize(("path", "prog"), _trampoline_programs())
def test_xlated_trampoline_program_identical_to_libbpf(path: Path, prog: str) -> None:
    """fentry/fexit/... programs, each loaded alone by libbpf and by coreframe."""
    if libbpf() is None:
        pytest.skip("libbpf.so not installed (test oracle)")
    if not features.has_trampoline():
        kind = coreframe.open(path).programs[prog].section_def.attach_kind
        pytest.skip(f"{kind} program: {NO_TRAMPOLINES}")
    assert compare_one_program(str(path), prog) > 0


def _fd_closed(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return True
    return False


def test_close_releases_every_fd() -> None:
    spec = coreframe.open(obj("obj_maps"))
    loaded = spec.load()
    fds = [m.fd for m in loaded.maps.values()] + [p.fd for p in loaded.programs.values()]
    assert loaded.btf_fd is not None
    fds.append(loaded.btf_fd.fd)
    loaded.close()
    loaded.close()  # idempotent
    assert all(_fd_closed(fd) for fd in fds)


def test_globals_reach_the_kernel_and_rodata_is_frozen() -> None:
    spec = coreframe.open(obj("obj_globals"))
    spec.rodata.targ_uid = 4321
    spec.data.counter = 9
    with spec.load() as loaded:
        ro = loaded.maps[".rodata"]
        var = spec.rodata.variable("targ_uid")
        assert ro.lookup(0)[var.offset:var.offset + 4] == struct.pack("<I", 4321)
        assert loaded.maps[".data"].lookup(0)[:4] == struct.pack("<i", 9)
        info = sysbpf.map_info(ro.fd)
        assert info.map_flags == C.BPF_F_RDONLY_PROG | C.BPF_F_MMAPABLE
        assert info.name.decode() == "obj_glob.rodata"
        with pytest.raises(Exception):  # noqa: B017 - frozen: the kernel refuses writes
            ro.update(0, bytes(ro.value_size))


def test_programs_run_static_section_call() -> None:
    spec = coreframe.open(obj("obj_static_call"))
    with spec.load() as loaded:
        loaded.attach()
        assert len(loaded.links) == 2
        os.getppid()
        out = loaded.maps[".bss"].lookup(0)
        assert struct.unpack("<QQ", out) == ((1 ^ 0x55) + 1, (2 ^ 0x55) + 1)
    assert not loaded.links


def test_bpf_to_bpf_calls_run() -> None:
    spec = coreframe.open(obj("obj_calls"))
    spec.rodata.scale = 5
    with spec.load() as loaded:
        loaded.attach()
        os.getppid()
        # calls_a: acc = 0+1+2+3 = 6; middle(6) adds leaf(6) = 31 to results[6 & 3]
        value = loaded.maps.results.lookup(2)  # BTF-typed (__u64): an int
        assert value >= 31


def test_map_definitions_applied() -> None:
    spec = coreframe.open(obj("obj_maps"))
    spec.maps.counts.max_entries = 64
    with spec.load() as loaded:
        m = loaded.maps
        assert sysbpf.map_info(m.ring.fd).max_entries == 8192  # 5000 rounded like libbpf
        assert sysbpf.map_info(m.perf.fd).max_entries == possible_cpus()
        info = sysbpf.map_info(m.counts.fd)
        assert (info.max_entries, info.map_flags) == (64, C.BPF_F_NO_COMMON_LRU)
        assert info.btf_key_type_id == spec.maps.counts.key_type_id != 0
        ids = {k: sysbpf.map_info(v.fd).id for k, v in m.items()}
        assert struct.unpack("<I", m.outer.lookup(0))[0] == ids["inner_a"]
        assert struct.unpack("<I", m.outer.lookup(2))[0] == ids["inner_b"]
        assert m.outer.lookup(1) is None
        prog_id = sysbpf.prog_info(loaded.programs.tail_target.fd).id
        assert struct.unpack("<I", m.jumps.lookup(1))[0] == prog_id


PINNED_SRC = """
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
	__type(key, __u32);
	__type(value, __u32);
} pinned_map SEC(".maps");
SEC("tracepoint/syscalls/sys_enter_getppid")
int p(void *ctx) { __u32 k = 1; return bpf_map_lookup_elem(&pinned_map, &k) != 0; }
"""


def test_pinning_by_name(pin_root: Path, tmp_path: Path) -> None:
    path = _build(tmp_path, PINNED_SRC)
    spec = coreframe.open(path)
    assert spec.maps.pinned_map.pinning == 1
    with spec.load(pin_root=str(pin_root)) as first:
        assert (pin_root / "pinned_map").exists()
        first_id = sysbpf.map_info(first.maps.pinned_map.fd).id
        first.maps.pinned_map.update(1, 2)
        with coreframe.open(path).load(pin_root=str(pin_root)) as second:
            assert sysbpf.map_info(second.maps.pinned_map.fd).id == first_id
            assert second.maps.pinned_map.lookup(1) is not None
    assert (pin_root / "pinned_map").exists()  # pins outlive the object, like libbpf
    spec2 = coreframe.open(path)
    spec2.maps.pinned_map.max_entries = 99
    with pytest.raises(MapError, match="pinned map is incompatible: max_entries"):
        spec2.load(pin_root=str(pin_root))


def test_pin_path_cannot_escape(pin_root: Path, tmp_path: Path) -> None:
    spec = coreframe.open(_build(tmp_path, PINNED_SRC))
    spec.maps.pinned_map.name = "../escape"
    with pytest.raises(ObjectError, match="cannot be used as a pin path"):
        spec.load(pin_root=str(pin_root))
    assert not (pin_root.parent / "escape").exists()


def test_failed_load_removes_new_pins(pin_root: Path, tmp_path: Path) -> None:
    spec = coreframe.open(_build(tmp_path, PINNED_SRC))
    prog = spec.programs.p
    saved = bytes(prog.insns)
    prog.insns[:] = bytes(len(saved))  # garbage code: the verifier refuses it
    with pytest.raises(VerifierError):
        spec.load(pin_root=str(pin_root))
    assert not (pin_root / "pinned_map").exists()
    prog.insns[:] = saved[:16]  # too short for its relocations: a clear error, no traceback
    with pytest.raises(RelocationError, match="were its insns edited"):
        spec.load(pin_root=str(pin_root))
    assert not (pin_root / "pinned_map").exists()


def test_kconfig_values() -> None:
    spec = coreframe.open(obj("obj_kconfig"))
    with spec.load() as loaded:
        kc = loaded.maps[".kconfig"].lookup(0)
        rel = os.uname().release.split("-")[0].split(".")
        version = (int(rel[0]) << 16) | (int(rel[1]) << 8) | min(int(rel[2]), 255)
        ext = spec.externs
        off = ext["LINUX_KERNEL_VERSION"].offset
        assert struct.unpack_from("<i", kc, off)[0] == version
        assert kc[ext["CONFIG_BPF_SYSCALL"].offset] == 1
        assert struct.unpack_from("<i", kc, ext["CONFIG_COREFRAME_DOES_NOT_EXIST"].offset)[0] == 0
        loaded.attach()
        os.getppid()
        seen = struct.unpack("<4Q", loaded.maps[".bss"].lookup(0))
        assert seen[0] == version


def test_fentry_is_feature_missing() -> None:
    spec = coreframe.open(obj("kern_probes"))
    for name, p in spec.programs.items():
        p.autoload = name == "kern_fentry"
    with pytest.raises(FeatureMissing, match="trampoline"):
        spec.load()


def test_autoload_off_and_unknown_section() -> None:
    spec = coreframe.open(obj("obj_calls"))
    spec.programs.calls_b.autoload = False
    with spec.load() as loaded:
        assert set(loaded.programs) == {"calls_a", "calls_c"}
    spec.programs.calls_c.prog_type = 0
    with pytest.raises(ObjectError, match="calls_c"):
        spec.load()


def test_verifier_error_names_source_line(tmp_path: Path) -> None:
    import shutil

    if shutil.which("clang") is None:
        pytest.skip("clang not installed")
    src = tmp_path / "bad.bpf.c"
    src.write_text("""#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 1);
         __type(key, int); __type(value, long); } m SEC(".maps");
SEC("tracepoint/syscalls/sys_enter_getppid")
int bad(void *ctx)
{
	int k = 0;
	long *v = bpf_map_lookup_elem(&m, &k);
	return *v; /* no NULL check */
}
char LICENSE[] SEC("license") = "GPL";
""")
    out = tmp_path / "bad.bpf.o"
    compile_bpf(src, out)
    with pytest.raises(VerifierError) as ei:
        coreframe.open(out).load()
    err = ei.value
    assert err.program == "bad" and "invalid mem access" in err.reason
    assert err.source_line is not None and "return *v" in err.source_line


def test_kfunc_calls_run() -> None:
    import subprocess

    spec = coreframe.open(obj("obj_kfunc"))
    kf = spec.externs
    assert kf["bpf_task_acquire"].kind == "kfunc" and kf["coreframe_no_such_kfunc"].weak
    with spec.load() as loaded:
        loaded.attach()
        subprocess.run(["/bin/true"], check=True)
        assert struct.unpack("<Q", loaded.maps[".bss"].lookup(0))[0] >= 1


def _build(tmp_path: Path, body: str) -> str:
    import shutil

    if shutil.which("clang") is None:
        pytest.skip("clang not installed")
    src = tmp_path / "k.bpf.c"
    src.write_text("#include <linux/bpf.h>\n#include <bpf/bpf_helpers.h>\n" + body
                   + '\nchar LICENSE[] SEC("license") = "GPL";\n')
    out = tmp_path / "k.bpf.o"
    compile_bpf(src, out)
    return str(out)


def test_strong_kconfig_extern_missing(tmp_path: Path) -> None:
    path = _build(tmp_path, """
extern int CONFIG_COREFRAME_NOT_A_REAL_OPTION __attribute__((section(".kconfig")));
int out;
SEC("tracepoint/syscalls/sys_enter_getppid")
int p(void *ctx) { out = CONFIG_COREFRAME_NOT_A_REAL_OPTION; return 0; }
""")
    with pytest.raises(ObjectError, match="strong extern 'CONFIG_COREFRAME_NOT_A_REAL_OPTION'"):
        coreframe.open(path).load()


def test_unknown_kconfig_name(tmp_path: Path) -> None:
    path = _build(tmp_path, """
extern int SOMETHING_ELSE __attribute__((section(".kconfig")));
int out;
SEC("tracepoint/syscalls/sys_enter_getppid")
int p(void *ctx) { out = SOMETHING_ELSE; return 0; }
""")
    with pytest.raises(ObjectError, match="unknown .kconfig extern 'SOMETHING_ELSE'"):
        coreframe.open(path).load()


def test_spec_is_reusable_and_unchanged_by_load() -> None:
    from coreframe.btf.kernel import vmlinux

    spec = coreframe.open(obj("core_task"))
    before = {n: bytes(p.insns) for n, p in spec.programs.items()}
    skip = _trampoline_progs(spec)
    for name in skip:
        spec.programs[name].autoload = False
    with spec.load() as first, spec.load(target_btf=vmlinux()) as second:
        for name in first.programs:
            assert program_insns(first.programs[name].fd) == \
                program_insns(second.programs[name].fd)
    assert {n: bytes(p.insns) for n, p in spec.programs.items()} == before


def test_typeless_ksym_addresses() -> None:
    with open("/proc/kallsyms") as f:
        table = {}
        for line in f:
            addr, _kind, name = line.split()[:3]
            table.setdefault(name, int(addr, 16))
    if not table.get("vfs_read"):
        pytest.skip("kernel symbol addresses are hidden")
    with coreframe.open(obj("obj_ksym")).load() as loaded:
        loaded.attach()
        os.getppid()
        addrs = struct.unpack("<2Q", loaded.maps[".bss"].lookup(0))
    assert addrs == (table["vfs_read"], 0)


def test_attach_follows_edited_attach_to() -> None:
    spec = coreframe.open(obj("obj_static_call"))
    spec.programs.static_a.attach_to = "syscalls/sys_enter_getpid"
    spec.programs.static_b.autoload = False
    with spec.load() as loaded:
        assert len(loaded.attach()) == 1
        assert loaded.programs.static_a.section_def.attach_target == "syscalls/sys_enter_getpid"
        os.getpid()
        assert struct.unpack("<QQ", loaded.maps[".bss"].lookup(0))[0] == (1 ^ 0x55) + 1


def test_iter_program_attach_btf_id_and_run() -> None:
    from coreframe.btf.kernel import vmlinux
    from coreframe.btf.types import Kind

    with coreframe.open(obj("obj_iter")).load() as loaded:
        prog = loaded.programs.count_tasks
        assert prog.attach_btf_id == vmlinux().find("bpf_iter_task", Kind.FUNC)[0]
        (link,) = loaded.attach()
        with sysbpf.iter_create(link.fd) as it:
            while os.read(it.fd, 4096):
                pass
        assert struct.unpack("<Q", loaded.maps[".bss"].lookup(0))[0] > 0


def _not_for_bpftool(path: Path) -> str | None:
    """Why ``bpftool prog loadall`` cannot be the oracle for this object, or None."""
    if path.name in LIBBPF_REFUSES:
        return LIBBPF_REFUSES[path.name]
    spec = coreframe.open(path)
    pinned = [k for k, m in spec.maps.items() if m.pinning]
    if pinned:
        return (f"maps {pinned} are pinned by name, which bpftool loadall would leave in "
                "bpffs; test_xlated_identical_to_libbpf compares it with pinning off")
    return None


def _bpftool_objects() -> list[object]:
    out = []
    for p in all_objects():
        why = _not_for_bpftool(p)
        marks = [pytest.mark.skip(reason=why)] if why else []
        out.append(pytest.param(p, id=p.name, marks=marks))
    return out


@pytest.mark.parametrize("path", _bpftool_objects())
def test_xlated_identical_to_bpftool_loadall(path: Path, pin_root: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil
    import subprocess

    from coreframe import features
    from coreframe.programs import Program

    # bpftool 7.1 is libbpf 1.1: SEC("usdt") programs loaded for perf uprobes, as in
    # test_xlated_identical_to_libbpf
    monkeypatch.setattr(features, "has_uprobe_multi", lambda: False)

    if shutil.which("bpftool") is None:
        pytest.skip("bpftool not installed (test oracle)")
    if _trampoline_progs(coreframe.open(path)) and not features.has_trampoline():
        pytest.skip(f"has fentry/fexit programs, which bpftool loadall loads together: "
                    f"{NO_TRAMPOLINES}")
    target = pin_root / "progs"
    proc = subprocess.run(["bpftool", "prog", "loadall", str(path), str(target)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    ref = {}
    for entry in sorted(target.iterdir()):
        with Program.from_pinned(entry) as p:
            ref[entry.name] = program_insns(p.fd)
    with coreframe.open(path).load() as loaded:
        assert set(loaded.programs) == set(ref)
        for name, prog in loaded.programs.items():
            assert program_insns(prog.fd) == ref[name], name


def test_live_variables_of_a_loaded_object() -> None:
    from coreframe.object.variables import VariableError

    spec = coreframe.open(obj("obj_globals"))
    spec.rodata.targ_uid = 0xFFFFFFFF  # (uid_t)-1: count every caller
    with spec.load() as loaded:
        assert loaded.rodata.targ_uid == 0xFFFFFFFF
        assert loaded.data.counter == 42
        loaded.data.counter = 7
        assert loaded.data.counter == 7
        loaded.attach()
        os.getppid()
        assert loaded.bss.hits >= 1
        with pytest.raises(VariableError, match="read-only once loaded"):
            loaded.rodata.targ_uid = 1
        with pytest.raises(VariableError, match="out of range"):
            loaded.bss.hits = -1
    assert spec.data.counter == 42  # the spec keeps its own image
