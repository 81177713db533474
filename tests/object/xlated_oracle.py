"""Compare coreframe's loaded programs with libbpf's, instruction by instruction.

libbpf (through ctypes, test-only) loads the same object; for every program we
fetch the kernel's xlated instructions of both copies and compare them with
ld_imm64 map references replaced by the referenced map's name (map ids and fds
differ between the two loads, the maps they point at must not).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import struct
from collections.abc import Iterable

from coreframe.programs import Program
from coreframe.runtime.compat import zip_strict
from coreframe.sys import bpf as sysbpf

BPF_PSEUDO_MAP_FD = 1
BPF_PSEUDO_MAP_VALUE = 2
LD_IMM64 = 0x18

_lib: ctypes.CDLL | None = None


def libbpf() -> ctypes.CDLL | None:
    global _lib
    if _lib is None:
        name = ctypes.util.find_library("bpf")
        if not name:
            return None
        lib = ctypes.CDLL(name, use_errno=True)
        vp = ctypes.c_void_p
        for fn, res, args in (
            ("bpf_object__open_file", vp, [ctypes.c_char_p, vp]),
            ("bpf_object__load", ctypes.c_int, [vp]),
            ("bpf_object__close", None, [vp]),
            ("bpf_object__find_program_by_name", vp, [vp, ctypes.c_char_p]),
            ("bpf_program__set_autoload", ctypes.c_int, [vp, ctypes.c_bool]),
            ("bpf_program__fd", ctypes.c_int, [vp]),
            ("libbpf_get_error", ctypes.c_long, [vp]),
            ("bpf_object__find_map_by_name", vp, [vp, ctypes.c_char_p]),
            ("bpf_map__set_pin_path", ctypes.c_int, [vp, ctypes.c_char_p]),
        ):
            f = getattr(lib, fn)
            f.restype, f.argtypes = res, args
        _lib = lib
    return _lib


def map_names(ids: Iterable[int]) -> dict[int, str]:
    out = {}
    for i in ids:
        with sysbpf.map_get_fd_by_id(i) as fd:
            out[i] = sysbpf.map_info(fd).name.decode()
    return out


def normalized(xlated: bytes, names: dict[int, str]) -> list[tuple]:
    """Instructions as tuples, map ids in ld_imm64 replaced by map names."""
    out: list[tuple] = []
    n = len(xlated) // 8
    i = 0
    while i < n:
        code, regs, off, imm = struct.unpack_from("<BBhi", xlated, i * 8)
        src = regs >> 4
        if code == LD_IMM64 and src in (BPF_PSEUDO_MAP_FD, BPF_PSEUDO_MAP_VALUE):
            _c2, _r2, _o2, imm2 = struct.unpack_from("<BBhi", xlated, (i + 1) * 8)
            out.append((code, regs, off, names.get(imm & 0xFFFFFFFF, f"id{imm}")))
            out.append((0, 0, 0, imm2 if src == BPF_PSEUDO_MAP_VALUE else 0))
            i += 2
            continue
        out.append((code, regs, off, imm))
        i += 1
    return out


def program_insns(fd: int) -> list[tuple]:
    """Normalized xlated instructions, then (nr_func_info, nr_line_info, has BTF)."""
    raw = sysbpf.prog_info(fd)
    info = Program(sysbpf.prog_get_fd_by_id(raw.id), "p", 0).info()
    extra = (raw.nr_func_info, raw.nr_line_info, raw.btf_id != 0)
    return [*normalized(info.xlated_insns, map_names(info.map_ids)), extra]


def libbpf_xlated(path: str, programs: Iterable[str], skip: Iterable[str] = (),
                  unpin: Iterable[str] = ()) -> dict[str, list[tuple]]:
    """Load ``path`` with libbpf (programs in ``skip`` not loaded); normalized xlated per prog.

    Maps named in ``unpin`` lose their pinning, so the oracle leaves nothing in bpffs.
    """
    lib = libbpf()
    assert lib is not None
    obj = lib.bpf_object__open_file(path.encode(), None)
    if not obj or lib.libbpf_get_error(obj):
        raise OSError(ctypes.get_errno(), f"libbpf cannot open {path}")
    try:
        for name in skip:
            p = lib.bpf_object__find_program_by_name(obj, name.encode())
            lib.bpf_program__set_autoload(p, False)
        for name in unpin:
            m = lib.bpf_object__find_map_by_name(obj, name.encode())
            lib.bpf_map__set_pin_path(m, None)
        err = lib.bpf_object__load(obj)
        if err:
            raise OSError(-err, f"libbpf cannot load {path}")
        out = {}
        for name in programs:
            if name in skip:
                continue
            p = lib.bpf_object__find_program_by_name(obj, name.encode())
            out[name] = program_insns(lib.bpf_program__fd(p))
        return out
    finally:
        lib.bpf_object__close(obj)


def first_insn_difference(ours: list[tuple], ref: list[tuple]) -> str | None:
    """One line naming where two program_insns() lists first differ, or None."""
    if len(ours) != len(ref):
        return f"coreframe has {len(ours) - 1} xlated insns, libbpf {len(ref) - 1}"
    for i, (a, b) in enumerate(zip_strict(ours, ref)):
        if a != b:
            what = "(nr_func_info, nr_line_info, has BTF)" if i == len(ours) - 1 \
                else f"xlated insn {i}"
            return f"{what}: coreframe {a}, libbpf {b}"
    return None


def compare_one_program(path: str, prog: str) -> int:
    """Load only ``prog`` of ``path`` with libbpf and with coreframe; the kernel must
    hold the same program. Returns the number of xlated instructions compared.

    Pinned maps lose their pinning on both sides, so nothing is left in bpffs.
    """
    import coreframe

    spec = coreframe.open(path)
    for name, p in spec.programs.items():
        p.autoload = name == prog
    pinned = [k for k, m in spec.maps.items() if m.pinning]
    for k in pinned:
        spec.maps[k].pinning = 0
    others = [n for n in spec.programs if n != prog]
    ref = libbpf_xlated(path, [prog], others, unpin=pinned)[prog]
    with spec.load() as loaded:
        assert set(loaded.programs) == {prog}
        ours = program_insns(loaded.programs[prog].fd)
    diff = first_insn_difference(ours, ref)
    assert diff is None, f"{path}:{prog}: {diff}"
    return len(ours) - 1
