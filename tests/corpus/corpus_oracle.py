"""Load one program of an object with libbpf and with coreframe; compare what the kernel holds.

The unit of comparison is a program: the object is opened, every *other* program
has autoload turned off, and the object is loaded. libbpf (through the ctypes
binding of tests/bpf/libbpf_oracle.py, test-only) is the reference. For each
side we read back the kernel's view of the program: xlated instructions with map
references replaced by map names (tests/object/xlated_oracle.py), func/line info
counts, and the definition of every map the program uses.
"""

from __future__ import annotations

import ctypes
import errno
import os
from dataclasses import dataclass, field
from typing import Any

import pytest
from libbpf_oracle import LIBBPF
from xlated_oracle import program_insns

import coreframe
from coreframe.errors import FeatureMissing
from coreframe.object.sections import TRAMPOLINE_ATTACH_KINDS
from coreframe.programs import Program
from coreframe.runtime.compat import zip_strict
from coreframe.sys import bpf as sysbpf
from coreframe.sys import consts as C

# What libbpf-tools' user space does before load, with the tools' own defaults:
# stack maps get value_size = perf_max_stack_depth * 8 and max_entries =
# stack_storage_size; per-task hashes (cpudist) are sized to pid_max, here
# bounded so a test does not preallocate hundreds of MiB.
PERF_MAX_STACK_DEPTH = 127
STACK_STORAGE_SIZE = 1024
SIZED_HASH_ENTRIES = 8192

# Map types whose max_entries 0 the loader itself fills in (nr CPUs, one page).
_LOADER_SIZED = {C.BPF_MAP_TYPE_PERF_EVENT_ARRAY, C.BPF_MAP_TYPE_RINGBUF}

if LIBBPF is not None:
    _vp = ctypes.c_void_p
    LIBBPF.bpf_program__fd.restype = ctypes.c_int
    LIBBPF.bpf_program__fd.argtypes = [_vp]
    LIBBPF.bpf_map__set_value_size.restype = ctypes.c_int
    LIBBPF.bpf_map__set_value_size.argtypes = [_vp, ctypes.c_uint32]


@dataclass
class Settings:
    """Map sizes set between open and load, as the tool's user space would."""

    value_size: dict[str, int] = field(default_factory=dict)
    max_entries: dict[str, int] = field(default_factory=dict)


@dataclass
class KernelView:
    """A loaded program as the kernel reports it, comparable across loaders."""

    insns: list[tuple[Any, ...]]
    maps: dict[str, tuple[int, ...]]


def tool_settings(spec: Any) -> Settings:
    """Sizes for the maps an object leaves for its user space to fill in."""
    s = Settings()
    for name, m in spec.maps.items():
        if m.type == C.BPF_MAP_TYPE_STACK_TRACE and not m.value_size:
            s.value_size[name] = PERF_MAX_STACK_DEPTH * 8
            if not m.max_entries:
                s.max_entries[name] = STACK_STORAGE_SIZE
        elif not m.max_entries and m.type not in _LOADER_SIZED:
            s.max_entries[name] = SIZED_HASH_ENTRIES
    return s


def _map_view(map_ids: list[int]) -> dict[str, tuple[int, ...]]:
    out = {}
    for mid in map_ids:
        with sysbpf.map_get_fd_by_id(mid) as fd:
            mi = sysbpf.map_info(fd)
        out[mi.name.decode()] = (mi.type, mi.key_size, mi.value_size, mi.max_entries,
                                 mi.map_flags, mi.btf_key_type_id, mi.btf_value_type_id)
    return out


def kernel_view(prog_fd: int) -> KernelView:
    """Read back one loaded program (any loader's) from the kernel."""
    raw = sysbpf.prog_info(prog_fd)
    with Program(sysbpf.prog_get_fd_by_id(raw.id), "view", raw.type) as p:
        map_ids = p.info().map_ids
    return KernelView(program_insns(prog_fd), _map_view(map_ids))


def libbpf_errno() -> int:
    return ctypes.get_errno() or 22


def libbpf_load_one(path: str, prog: str, settings: Settings) -> KernelView:
    """libbpf loads ``path`` with only ``prog`` autoloaded; raises OSError as libbpf fails."""
    lib = LIBBPF
    assert lib is not None
    obj = lib.bpf_object__open_file(path.encode(), None)
    if not obj:
        err = libbpf_errno()
        raise OSError(err, f"libbpf cannot open {path}: {os.strerror(err)}")
    try:
        target = None
        p = None
        while True:
            p = lib.bpf_object__next_program(obj, p)
            if not p:
                break
            if lib.bpf_program__name(p).decode() == prog:
                target = p
            else:
                lib.bpf_program__set_autoload(p, False)
        if target is None:
            raise KeyError(f"libbpf sees no program {prog!r} in {path}")
        for name, size in settings.value_size.items():
            lib.bpf_map__set_value_size(lib.bpf_object__find_map_by_name(obj, name.encode()),
                                        size)
        for name, n in settings.max_entries.items():
            lib.bpf_map__set_max_entries(lib.bpf_object__find_map_by_name(obj, name.encode()),
                                         n)
        err = lib.bpf_object__load(obj)
        if err:
            raise OSError(-err, f"libbpf cannot load {prog}: {os.strerror(-err)}")
        return kernel_view(lib.bpf_program__fd(target))
    finally:
        lib.bpf_object__close(obj)


def coreframe_spec(path: str, prog: str, settings: Settings) -> Any:
    """The object opened by coreframe, set up exactly as libbpf_load_one sets up libbpf."""
    spec = coreframe.open(path)
    for name, p in spec.programs.items():
        p.autoload = name == prog
    for name, size in settings.value_size.items():
        spec.maps[name].value_size = size
    for name, n in settings.max_entries.items():
        spec.maps[name].max_entries = n
    return spec


def coreframe_load_one(path: str, prog: str, settings: Settings) -> KernelView:
    """coreframe loads ``path`` with only ``prog`` autoloaded; raises coreframe's error."""
    with coreframe_spec(path, prog, settings).load() as obj:
        return kernel_view(obj.programs[prog].fd)


def first_difference(ours: KernelView, ref: KernelView) -> str | None:
    """One line naming the first place the two kernel views differ, or None."""
    if ours.maps != ref.maps:
        for name in sorted(set(ours.maps) | set(ref.maps)):
            a, b = ours.maps.get(name), ref.maps.get(name)
            if a is None and name.endswith(".rodata"):
                return (f"libbpf binds map {name!r} to the program (BPF_PROG_BIND_MAP, done "
                        "for .rodata after every program load), coreframe does not")
            if a != b:
                return (f"map {name!r}: coreframe (type, key, value, max_entries, flags, "
                        f"btf key, btf value) = {a}, libbpf = {b}")
    if len(ours.insns) != len(ref.insns):
        return f"coreframe has {len(ours.insns) - 1} xlated insns, libbpf {len(ref.insns) - 1}"
    for i, (a, b) in enumerate(zip_strict(ours.insns, ref.insns)):
        if a != b:
            if i == len(ours.insns) - 1:
                return (f"(nr_func_info, nr_line_info, has BTF): coreframe {a}, "
                        f"libbpf {b}")
            return f"xlated insn {i}: coreframe {a}, libbpf {b}"
    return None


# path -> program -> (outcome, detail) for every program check_program() decided
# this session: "compared" (the kernel views were equal), "skipped" (detail: the
# oracle's reason) or "failed". tests/corpus/conftest.py counts objects with it.
OUTCOMES: dict[str, dict[str, tuple[str, str]]] = {}


def _record(path: str, prog: str, outcome: str, detail: str = "") -> None:
    OUTCOMES.setdefault(path, {})[prog] = (outcome, detail)


def object_outcomes(path: str) -> dict[str, tuple[str, str]]:
    """Every program of ``path`` with its outcome; programs not yet checked this
    session (deselected, or run in another order) are checked now."""
    for prog in coreframe.open(path).programs:
        if prog in OUTCOMES.get(path, {}):
            continue
        try:
            check_program(path, prog)
        except (pytest.skip.Exception, pytest.fail.Exception, AssertionError):
            pass  # recorded by check_program; the program's own test reports it
    return OUTCOMES.get(path, {})


def _one_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def check_program(path: str, prog: str) -> None:
    """The corpus contract for one program: whatever libbpf loads, coreframe loads the same.

    Both loaded: the kernel views must be identical. libbpf loads, coreframe does
    not: a loader bug, reported with coreframe's error. libbpf refuses too: the
    program is skipped by the oracle, after checking coreframe failed with one of
    its own errors (FeatureMissing for trampolines, which this kernel refuses).
    """
    if os.geteuid() != 0:
        pytest.skip("needs root to load BPF programs")
    if LIBBPF is None:
        pytest.skip("libbpf.so not installed (the test oracle)")
    try:
        _check_program(path, prog)
    except pytest.skip.Exception as e:
        _record(path, prog, "skipped", str(e.msg))
        raise
    except (pytest.fail.Exception, AssertionError) as e:
        _record(path, prog, "failed", _one_line(e))
        raise
    _record(path, prog, "compared")


def _check_program(path: str, prog: str) -> None:
    spec = coreframe.open(path)
    settings = tool_settings(spec)
    sd = spec.programs[prog].section_def
    kind = sd.attach_kind if sd is not None else None
    ref: KernelView | None = None
    ref_err: OSError | None = None
    try:
        ref = libbpf_load_one(path, prog, settings)
    except OSError as e:
        ref_err = e
    ours: KernelView | None = None
    our_err: coreframe.Error | None = None
    try:
        ours = coreframe_load_one(path, prog, settings)
    except coreframe.Error as e:
        our_err = e
    name = f"{os.path.basename(path)}:{prog}"
    if ref is not None:
        if ours is None:
            pytest.fail(f"{name}: libbpf loads it, coreframe fails: "
                        f"{type(our_err).__name__}: {_one_line(our_err)}")
        diff = first_difference(ours, ref)
        if diff is not None:
            pytest.fail(f"{name}: the kernel holds different programs: {diff}")
        return
    assert ref_err is not None
    if ours is not None:
        pytest.fail(f"{name}: coreframe loads it but libbpf fails "
                    f"({ref_err.strerror or ref_err}); coreframe misses a check libbpf makes")
    if kind in TRAMPOLINE_ATTACH_KINDS and ref_err.errno == errno.EPERM:
        assert isinstance(our_err, FeatureMissing), (
            f"{name}: trampolines are refused here; coreframe should say FeatureMissing, "
            f"not {type(our_err).__name__}: {_one_line(our_err)}")
    pytest.skip(f"oracle: libbpf cannot load it here ({errno.errorcode.get(ref_err.errno, '?')}"
                f"); coreframe: {type(our_err).__name__}: {_one_line(our_err)}")
