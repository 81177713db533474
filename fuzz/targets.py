"""Fuzz targets shared by the atheris drivers (``fuzz/fuzz_*.py``) and the tests.

Each ``run_*`` function takes raw bytes, feeds them to one parser of the
loader and walks everything it produced, so lazily decoded parts are exercised
too. The contract under test: malformed input raises one of ``ALLOWED`` (the
loader's own errors for bad objects); any other exception, a hang or a huge
allocation is a bug. The functions swallow the allowed errors and let
everything else propagate, which is what both atheris and hypothesis expect.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from functools import cache
from pathlib import Path

from coreframe.errors import ObjectError, RelocationError

REPO = Path(__file__).resolve().parent.parent
SEED_DIRS = (REPO / "tests" / "objects", REPO / "plugins" / "objects")

# What a hostile object may legitimately cause. RelocationError is only allowed
# where relocations are resolved (a well-formed object can still fail to relocate).
ALLOWED_PARSE: tuple[type[Exception], ...] = (ObjectError,)
ALLOWED_CORE: tuple[type[Exception], ...] = (ObjectError, RelocationError)

# Walk at most this many types per input: a BTF blob may legitimately hold 100k+.
MAX_WALK = 2000


def seed_paths() -> list[Path]:
    """Every clang-built object the project ships: the seed corpus."""
    out: list[Path] = []
    for d in SEED_DIRS:
        out.extend(sorted(d.glob("*.bpf.o")))
    return out


@cache
def seed_objects() -> tuple[bytes, ...]:
    return tuple(p.read_bytes() for p in seed_paths())


def _section(data: bytes, name: str) -> bytes | None:
    from coreframe.elf import ElfFile

    sec = ElfFile(data).section(name)
    return None if sec is None else sec.data


@cache
def seed_btfs() -> tuple[bytes, ...]:
    """The ``.BTF`` sections of the seed objects."""
    return tuple(b for b in (_section(d, ".BTF") for d in seed_objects()) if b)


@cache
def seed_exts() -> tuple[tuple[bytes, bytes], ...]:
    """(``.BTF``, ``.BTF.ext``) pairs of the seed objects."""
    out = []
    for d in seed_objects():
        btf, ext = _section(d, ".BTF"), _section(d, ".BTF.ext")
        if btf and ext:
            out.append((btf, ext))
    return tuple(out)


# --------------------------------------------------------------------- ELF / object


def run_object(data: bytes) -> None:
    """Whole-object parse (ELF, BTF, BTF.ext, maps, programs, variables)."""
    from coreframe.object import open as open_object

    try:
        spec = open_object(data)
        for prog in spec.programs.values():
            _ = (prog.name, prog.section, len(prog.insns), prog.prog_type)
        for m in spec.maps.values():
            _ = (m.name, m.type, m.key_size, m.value_size, m.max_entries)
        for ds in spec.data_sections():
            for name in list(ds)[:64] if hasattr(ds, "__iter__") else ():
                try:
                    getattr(ds, name)
                except AttributeError:
                    pass
    except ALLOWED_PARSE:
        return


def run_elf(data: bytes) -> None:
    """The ELF reader alone (sections, symbols, relocations, license)."""
    from coreframe.elf import ElfFile

    try:
        elf = ElfFile(data)
        _ = (elf.license, elf.kernel_version, [s.name for s in elf.symbols])
    except ALLOWED_PARSE:
        return


# ------------------------------------------------------------------------------ BTF


def walk_btf(btf: object) -> None:
    """Touch every decoder and derived query on the first ``MAX_WALK`` types."""
    from coreframe.btf.types import BTF

    assert isinstance(btf, BTF)
    n = min(len(btf), MAX_WALK)
    for tid in range(n):
        for call in (btf.__getitem__, btf.resolve, btf.size_of, btf.name_of, btf.c_type_name):
            try:
                call(tid)
            except ObjectError:
                pass
    for tid in range(1, min(n, 200)):
        name = btf.name_of(tid) if _ok(btf.name_of, tid) else ""
        if name:
            btf.find(name)


def _ok(fn: object, *args: object) -> bool:
    try:
        fn(*args)  # type: ignore[operator]
    except ObjectError:
        return False
    return True


def run_btf(data: bytes) -> None:
    """Raw BTF parse, every query, the raw dump and ctypes generation."""
    from coreframe.btf.ctypegen import ctype
    from coreframe.btf.dump import dump_raw
    from coreframe.btf.types import BTF

    try:
        btf = BTF.from_bytes(data)
    except ALLOWED_PARSE:
        return
    walk_btf(btf)
    try:
        if len(btf) <= MAX_WALK:
            dump_raw(btf)
    except ALLOWED_PARSE:
        pass
    for tid in range(1, min(len(btf), 300)):
        try:
            ctype(btf, tid)
        except ALLOWED_PARSE:
            pass


def run_btf_ext(data: bytes, btf_raw: bytes | None = None) -> None:
    """BTF.ext parse against a seed object's (valid) BTF."""
    from coreframe.btf.ext import BTFExt
    from coreframe.btf.types import BTF

    btf_raw = btf_raw if btf_raw is not None else seed_exts()[0][0]
    btf = BTF.from_bytes(btf_raw)
    try:
        ext = BTFExt.from_bytes(data, btf)
    except ALLOWED_PARSE:
        return
    for recs in ext.line_info.values():
        for li in recs[:MAX_WALK]:
            _ = (li.file_name, li.line_text, li.line, li.col)


# ------------------------------------------------------------------------ CO-RE


@cache
def core_target() -> object:
    """Target BTF for relocation fuzzing: the running kernel's, else a seed's BTF."""
    from coreframe.btf.types import BTF

    try:
        from coreframe.btf.kernel import vmlinux

        return vmlinux()
    except Exception:
        return BTF.from_bytes(seed_btfs()[0])


def _relos_from(data: bytes) -> Iterator[tuple[int, int, bytes, int]]:
    """Decode fuzz bytes as (type_id, kind, access string, insn) tuples."""
    pos = 0
    while pos + 10 <= len(data):
        type_id, kind, slen = struct.unpack_from("<IHB", data, pos)
        pos += 7
        access = data[pos:pos + slen % 24]
        pos += slen % 24
        yield type_id, kind, access, pos


def run_core(data: bytes, local_raw: bytes | None = None) -> None:
    """Resolve and apply CO-RE relocations built from fuzz bytes.

    The first byte picks a seed's local BTF; if the input is long enough the
    rest is split: a BTF blob (mutated local BTF) when it parses, else
    relocation records whose type ids, kinds and access strings are arbitrary.
    """
    from coreframe import asm
    from coreframe.btf.core import CoreRelocator
    from coreframe.btf.ext import CoreRelo
    from coreframe.btf.types import BTF

    if not data:
        return
    btfs = seed_btfs()
    if local_raw is None:
        local_raw = btfs[data[0] % len(btfs)]
    try:
        local = BTF.from_bytes(local_raw)
    except ALLOWED_PARSE:
        return
    target = core_target()
    targets = [target, local]
    insns = bytearray()
    for code in (asm.BPF_ALU64 | asm.BPF_K | 0xB0, asm.BPF_LDX | asm.BPF_MEM | 0x18,
                 asm.LD_IMM64):
        insns += asm.encode(code, 1, 0, 0, 0)
    insns += asm.encode(0, 0, 0, 0, 0)
    for tgt in targets:
        relocator = CoreRelocator(local, tgt)  # type: ignore[arg-type]
        for type_id, kind, access, pos in _relos_from(data[1:]):
            relo = CoreRelo(0, type_id % (len(local) + 4), access.decode("latin-1"), kind % 16)
            try:
                res = relocator.resolve(relo)
                buf = bytearray(insns)
                relocator.apply(buf, pos % 4, relo, res)
            except ALLOWED_CORE:
                pass
