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

# What a hostile input may legitimately cause: ObjectError from the ELF, BTF and
# BTF.ext readers. Opening a whole object also links its ELF relocations, whose
# failures are RelocationError (same one-line contract, a different cause).
ALLOWED_PARSE: tuple[type[Exception], ...] = (ObjectError,)
ALLOWED_OBJECT: tuple[type[Exception], ...] = (ObjectError, RelocationError)
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
    """Whole-object parse (ELF, BTF, BTF.ext, maps, programs, variables) and inspect report."""
    from coreframe.object import open as open_object

    try:
        spec = open_object(data)
        for prog in spec.programs.values():
            _ = (prog.name, prog.section, len(prog.insns), prog.prog_type)
        for m in spec.maps.values():
            _ = (m.name, m.type, m.key_size, m.value_size, m.max_entries)
        for ds in spec.data_sections():
            ds.items()
        from coreframe.inspect import format_inspection, inspect_object

        format_inspection(inspect_object(spec, target_btf=core_target()))  # type: ignore[arg-type]
    except ALLOWED_OBJECT:
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
    if len(btf) <= MAX_WALK:
        from coreframe.btf.cdump import dump_c

        _ok(dump_c, btf)  # the whole C header: every ordering and declarator path


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


def run_btf_ext(data: bytes) -> None:
    """BTF.ext parse: the first byte picks a seed object's (valid) BTF, the rest is .BTF.ext."""
    from coreframe.btf.ext import BTFExt
    from coreframe.btf.types import BTF

    if not data:
        return
    pairs = seed_exts()
    btf = _parsed_btf(pairs[data[0] % len(pairs)][0])
    try:
        ext = BTFExt.from_bytes(data[1:], btf)
        lines = ext.line_info  # parsed on first use: its errors surface here
    except ALLOWED_PARSE:
        return
    for recs in lines.values():
        for li in recs[:MAX_WALK]:
            _ = (li.file_name, li.line_text, li.line, li.col)
    assert isinstance(btf, BTF)


@cache
def _parsed_btf(raw: bytes) -> object:
    from coreframe.btf.types import BTF

    return BTF.from_bytes(raw)


def ext_seeds() -> list[bytes]:
    """Seed inputs of ``run_btf_ext``: selector byte + the matching object's .BTF.ext."""
    return [bytes([i]) + ext for i, (_, ext) in enumerate(seed_exts())]


def core_seeds() -> list[bytes]:
    """Seed inputs of ``run_core``: relocation records against each seed's local types."""
    out = []
    for i, raw in enumerate(seed_btfs()):
        recs = bytearray([i])
        btf = _parsed_btf(raw)
        for tid in range(1, min(len(btf), 40)):  # type: ignore[arg-type]
            for kind, access in ((0, b"0:0"), (1, b"0:1"), (8, b"0"), (10, b"0:0")):
                recs += struct.pack("<IHB", tid, kind, len(access)) + access
        out.append(bytes(recs))
    return out


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


def _program() -> bytearray:
    """Four instructions a relocation can patch: ALU imm, LDX, ld_imm64 (two slots)."""
    from coreframe import asm

    insns = bytearray()
    for code in (asm.BPF_ALU64 | asm.BPF_K | asm.BPF_MOV, asm.BPF_LDX | asm.BPF_MEM | asm.BPF_DW,
                 asm.LD_IMM64):
        insns += asm.encode(code, 1, 0, 0, 0)
    return insns + asm.encode(0, 0, 0, 0, 0)


def _relocate(local: object, relos: list[tuple[int, int, str, int]]) -> None:
    from coreframe.btf.core import CoreRelocator
    from coreframe.btf.ext import CoreRelo

    insns = _program()
    for tgt in (core_target(), local):
        relocator = CoreRelocator(local, tgt)  # type: ignore[arg-type]
        for type_id, kind, access, slot in relos:
            relo = CoreRelo(0, type_id, access, kind)
            try:
                res = relocator.resolve(relo)
                relocator.apply(bytearray(insns), slot, relo, res)
            except ALLOWED_CORE:
                pass


def run_core(data: bytes) -> None:
    """Resolve and apply arbitrary relocation records against a seed's local BTF.

    The first byte picks the seed object; the rest is decoded as records of
    (type id, kind, access string, instruction slot), resolved against the
    running kernel's BTF and against the local BTF itself.
    """
    if not data:
        return
    btfs = seed_btfs()
    local = _parsed_btf(btfs[data[0] % len(btfs)])
    n = len(local)  # type: ignore[arg-type]
    relos = [(tid % (n + 4), kind % 16, access.decode("latin-1"), slot % 5)
             for tid, kind, access, slot in _relos_from(data[1:])]
    _relocate(local, relos[:256])


def run_core_btf(data: bytes) -> None:
    """Relocate every type of a hostile local BTF (cycles, bad sizes, odd kinds)."""
    from coreframe.btf.types import BTF

    try:
        local = BTF.from_bytes(data)
    except ALLOWED_PARSE:
        return
    relos = []
    for tid in range(1, min(len(local), 64)):
        for kind, access in ((0, "0:0"), (1, "0:1:0"), (2, "0"), (3, "0:2"), (6, "0"),
                             (8, "0"), (9, "0"), (10, "0:1"), (12, "0")):
            relos.append((tid, kind, access, tid % 4))
    _relocate(local, relos)
