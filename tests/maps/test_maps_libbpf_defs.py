"""Maps coreframe creates are the maps libbpf creates for the same object.

The xlated-identity tests compare instructions, not map definitions: a map created
with the wrong flags (BPF_F_NO_PREALLOC dropped, BPF_F_MMAPABLE or BPF_F_RDONLY_PROG
missing on global data) or a wrong size loads the same instructions. Here every
committed object is opened by libbpf (through ctypes, programs not loaded, so that
objects with programs this kernel refuses still create their maps) and by
coreframe, and the kernel's own view of each map (BPF_OBJ_GET_INFO_BY_FD) is
compared field by field, map by map.
"""

from __future__ import annotations

import ctypes
import os
import sys
from pathlib import Path

import pytest

import coreframe
from coreframe.sys import bpf as sysbpf

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bpf"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "object"))
from libbpf_oracle import LIBBPF  # noqa: E402
from objpaths import all_objects  # noqa: E402

pytestmark = [
    pytest.mark.kernel,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
    pytest.mark.skipif(LIBBPF is None, reason="libbpf.so not installed (test oracle)"),
]

# What the kernel reports of a map's definition. The BTF ids themselves differ (each
# loader uploads its own copy of the object's BTF); whether key/value types are
# attached at all does not.
FIELDS = ("type", "key_size", "value_size", "max_entries", "map_flags", "map_extra",
          "ifindex", "btf_vmlinux_value_type_id")


def _definition(fd: int) -> tuple[str, dict[str, object]]:
    """(the map's name as the kernel shows it, its definition)."""
    info = sysbpf.map_info(fd)
    d: dict[str, object] = {f: int(getattr(info, f)) for f in FIELDS}
    d["btf_key_type"] = bool(info.btf_key_type_id)
    d["btf_value_type"] = bool(info.btf_value_type_id)
    return info.name.decode(), d


TRAMPOLINE = {"fentry", "fexit", "fmod_ret", "lsm", "lsm_cgroup", "freplace"}
LIBBPF_REFUSES = {"obj_static_call.bpf.o": "libbpf refuses to open it (a static function "
                  "in a program section): its maps are not compared",
                  "multi_probes.bpf.o": "Debian's libbpf 1.1 predates SEC(\"uprobe.multi\") "
                  "and refuses to open it: its maps are not compared",
                  "netdev_count.bpf.o": "Debian's libbpf 1.1 predates SEC(\"tcx/egress\") "
                  "and refuses to open it: its maps are not compared"}


def _refused(spec: coreframe.object.ObjectSpec) -> set[str]:
    return {n for n, p in spec.programs.items()
            if p.section_def and p.section_def.attach_kind in TRAMPOLINE}


def _libbpf_maps(path: Path, skip: set[str]) -> dict[str, dict[str, object]]:
    lib = LIBBPF
    assert lib is not None
    lib.bpf_map__set_pin_path.restype = ctypes.c_int
    lib.bpf_map__set_pin_path.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    obj = lib.bpf_object__open_file(str(path).encode(), None)
    if not obj:
        pytest.fail(f"libbpf cannot open {path.name} (errno {ctypes.get_errno()})")
    try:
        prog = None
        while prog := lib.bpf_object__next_program(obj, prog):
            if lib.bpf_program__name(prog).decode() in skip:
                lib.bpf_program__set_autoload(prog, False)
        m = None
        while m := lib.bpf_object__next_map(obj, m):
            lib.bpf_map__set_pin_path(m, None)  # nothing left in /sys/fs/bpf
        if lib.bpf_object__load(obj):
            pytest.fail(f"libbpf cannot create the maps of {path.name} "
                        f"(errno {ctypes.get_errno()})")
        out = {}
        m = None
        while m := lib.bpf_object__next_map(obj, m):
            fd = lib.bpf_map__fd(m)
            if fd >= 0:
                name, d = _definition(fd)
                out[name] = d
        return out
    finally:
        lib.bpf_object__close(obj)


def _coreframe_maps(path: Path, skip: set[str]) -> dict[str, dict[str, object]]:
    spec = coreframe.open(path)
    for name in skip:
        spec.programs[name].autoload = False
    for m in spec.maps.values():
        m.pinning = 0
    with spec.load() as loaded:
        return dict(_definition(m.fd.fd if hasattr(m.fd, "fd") else m.fd)
                    for m in loaded.maps.values())


OBJECTS = [p for p in all_objects() if coreframe.open(p).maps]


@pytest.mark.parametrize("path", OBJECTS, ids=lambda p: p.name)
def test_map_definitions_equal_libbpf(path: Path) -> None:
    if path.name in LIBBPF_REFUSES:
        pytest.skip(LIBBPF_REFUSES[path.name])
    skip = _refused(coreframe.open(path))
    theirs = _libbpf_maps(path, skip)
    ours = _coreframe_maps(path, skip)
    # keyed by the name the kernel shows: global-data maps are "<object prefix>.<section>"
    # for both loaders, so the names are compared too
    assert sorted(ours) == sorted(theirs)
    for name in theirs:
        assert ours[name] == theirs[name], name


def test_no_prealloc_objects_are_covered() -> None:
    """The flag the issue found unchecked is among the compared definitions."""
    flags = set()
    for path in OBJECTS:
        for m in coreframe.open(path).maps.values():
            flags.add(int(m.map_flags))
    from coreframe.sys.consts import BPF_F_NO_PREALLOC

    assert any(f & BPF_F_NO_PREALLOC for f in flags)
