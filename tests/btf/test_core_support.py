"""Shared helpers for the .BTF.ext / CO-RE tests (no tests in here).

Reads test objects with pyelftools directly so these tests do not depend on the
object loader, runs libbpf (through bpftool, or a tiny C program linked against
libbpf for custom target BTFs) as the oracle, and parses libbpf's debug log.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from elftools.elf.elffile import ELFFile

from coreframe import asm
from coreframe.btf.core import POISON_HELPER, CoreRelocator, CoreResult
from coreframe.btf.ext import BTFExt
from coreframe.btf.types import BTF
from coreframe.build import compile_bpf
from coreframe.errors import RelocationError

ROOT = Path(__file__).resolve().parents[2]
OBJECTS = ROOT / "tests" / "objects"
TARGETS = Path(__file__).resolve().parent / "targets"
BPFFS = Path("/sys/fs/bpf")
VMLINUX = Path("/sys/kernel/btf/vmlinux")
_U64 = (1 << 64) - 1


@dataclass
class ObjInfo:
    """What the CO-RE tests need from one ELF object."""

    path: Path
    btf: BTF
    ext: BTFExt
    sections: dict[str, bytes]
    # section name -> [(symbol name, byte offset, byte size)] of its functions
    funcs: dict[str, list[tuple[str, int, int]]] = field(default_factory=dict)

    def program_at(self, sec: str, insn_off: int) -> tuple[str, int]:
        """(program name, first insn index in section) owning byte offset ``insn_off``."""
        for name, off, size in self.funcs.get(sec, []):
            if off <= insn_off < off + max(size, 1):
                return name, off // 8
        raise LookupError(f"no function covers {sec}+{insn_off}")

    def program_insns(self, sec: str, start: int, name: str) -> bytearray:
        for fname, off, size in self.funcs[sec]:
            if fname == name:
                return bytearray(self.sections[sec][off : off + size])
        raise LookupError(name)


def read_object(path: Path) -> ObjInfo:
    with open(path, "rb") as f:
        elf = ELFFile(f)
        btf_sec = elf.get_section_by_name(".BTF")
        ext_sec = elf.get_section_by_name(".BTF.ext")
        if btf_sec is None or ext_sec is None:
            raise LookupError(f"{path.name} has no .BTF/.BTF.ext")
        btf = BTF.from_bytes(btf_sec.data())
        ext = BTFExt.from_bytes(ext_sec.data(), btf)
        sections: dict[str, bytes] = {}
        index_name: dict[int, str] = {}
        for i, sec in enumerate(elf.iter_sections()):
            if sec["sh_type"] == "SHT_PROGBITS" and sec["sh_flags"] & 0x4:  # SHF_EXECINSTR
                sections[sec.name] = sec.data()
                index_name[i] = sec.name
        funcs: dict[str, list[tuple[str, int, int]]] = {}
        symtab = elf.get_section_by_name(".symtab")
        for sym in symtab.iter_symbols():
            if sym["st_info"]["type"] != "STT_FUNC":
                continue
            shndx = sym["st_shndx"]
            if isinstance(shndx, int) and shndx in index_name:
                funcs.setdefault(index_name[shndx], []).append(
                    (sym.name, sym["st_value"], sym["st_size"])
                )
    for lst in funcs.values():
        lst.sort(key=lambda x: x[1])
    return ObjInfo(path, btf, ext, sections, funcs)


class UnreadableObject(Exception):
    """A committed object the CO-RE tests cannot read: a broken object or a reader bug."""


def core_objects(dirs: tuple[Path, ...] = ()) -> list[Path]:
    """Every test/plugin object that carries CO-RE relocations.

    Every committed object is built with ``-g``, so each has .BTF and .BTF.ext;
    one that cannot be read is an error at collection, never left out (a silently
    shorter list would let the CO-RE oracle compare less than it claims).
    """
    found = []
    for d in dirs or (OBJECTS, ROOT / "plugins" / "objects"):
        for p in sorted(d.glob("*.bpf.o")):
            try:
                info = read_object(p)
            except LookupError:  # no .BTF/.BTF.ext: nothing to relocate
                continue
            except Exception as e:  # a parser bug in a committed object: fail, never drop it
                raise UnreadableObject(
                    f"{p}: cannot read its .BTF/.BTF.ext for CO-RE relocations "
                    f"({type(e).__name__}: {e}); rebuild it with `make objects`") from e
            if any(info.ext.core_relos.values()):
                found.append(p)
    return found


# ----------------------------------------------------------------- libbpf oracle


@dataclass
class LibbpfRelo:
    """What libbpf's debug log says it did for one relocation."""

    prog: str
    index: int
    form: str | None = None  # "ALU/ALU64", "LDX/ST/STX", "LDIMM64"
    insn: int | None = None
    old: int | None = None
    new: int | None = None
    mem_sz: tuple[int, int] | None = None
    poisoned: set[int] = field(default_factory=set)
    ambiguous: bool = False


_PATCHED = re.compile(
    r"prog '(?P<prog>[^']+)': relo #(?P<idx>\d+): patched insn #(?P<insn>\d+) "
    r"\((?P<form>ALU/ALU64|LDX/ST/STX|LDIMM64)\) "
    r"(?:(?:imm|off|imm64) (?P<old>\d+) -> (?P<new>\d+)|mem_sz (?P<o>\d+) -> (?P<n>\d+))"
)
_POISON = re.compile(
    r"prog '(?P<prog>[^']+)': relo #(?P<idx>\d+): substituting insn #(?P<insn>\d+) w/ invalid"
)
_AMBIG = re.compile(r"prog '(?P<prog>[^']+)': relo #(?P<idx>\d+): .*ambiguity")


def parse_libbpf_log(text: str) -> dict[tuple[str, int], LibbpfRelo]:
    out: dict[tuple[str, int], LibbpfRelo] = {}

    def get(m: re.Match[str]) -> LibbpfRelo:
        key = (m["prog"], int(m["idx"]))
        return out.setdefault(key, LibbpfRelo(*key))

    for line in text.splitlines():
        if m := _PATCHED.search(line):
            r = get(m)
            r.form = m["form"]
            r.insn = int(m["insn"])
            if m["new"] is not None:
                r.old, r.new = int(m["old"]), int(m["new"])
            else:
                r.mem_sz = (int(m["o"]), int(m["n"]))
        elif m := _POISON.search(line):
            get(m).poisoned.add(int(m["insn"]))
        elif m := _AMBIG.search(line):
            get(m).ambiguous = True
    return out


def have_root() -> bool:
    return os.geteuid() == 0


def ensure_bpffs() -> None:
    if not os.path.ismount(BPFFS):
        subprocess.run(["mount", "-t", "bpf", "bpf", str(BPFFS)], check=True)


def bpftool_log(obj: Path) -> str:
    """libbpf's debug log of ``bpftool -d prog loadall OBJ``; removes its pins."""
    ensure_bpffs()
    pin = BPFFS / f"cf_core_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    try:
        proc = subprocess.run(
            ["bpftool", "-d", "prog", "loadall", str(obj), str(pin)],
            capture_output=True, text=True, check=False,
        )
    finally:
        shutil.rmtree(pin, ignore_errors=True)
    log = proc.stdout + proc.stderr
    # maps with pinning=LIBBPF_PIN_BY_NAME get pinned outside our directory
    for m in re.finditer(r"^libbpf: pinned map '([^']+)'$", log, re.M):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(m[1])
    return log


ORACLE_C = r"""
#include <bpf/libbpf.h>
#include <stdarg.h>
#include <stdio.h>

static int print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	return vfprintf(stderr, fmt, ap);
}

int main(int argc, char **argv)
{
	struct bpf_object *obj;
	int err;

	if (argc != 3)
		return 3;
	libbpf_set_print(print);
	LIBBPF_OPTS(bpf_object_open_opts, opts, .btf_custom_path = argv[2]);
	obj = bpf_object__open_file(argv[1], &opts);
	if (!obj)
		return 2;
	err = bpf_object__load(obj);
	bpf_object__close(obj);
	return err ? 1 : 0;
}
"""


def build_oracle(tmp: Path) -> Path | None:
    """Compile a tiny libbpf program that relocates against a custom BTF, or None."""
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if cc is None:
        return None
    src = tmp / "core_oracle.c"
    exe = tmp / "core_oracle"
    src.write_text(ORACLE_C)
    proc = subprocess.run([cc, "-O1", "-o", str(exe), str(src), "-lbpf"], capture_output=True)
    return exe if proc.returncode == 0 else None


def oracle_log(oracle: Path, obj: Path, target_obj: Path) -> str:
    proc = subprocess.run(
        [str(oracle), str(obj), str(target_obj)], capture_output=True, text=True, check=False
    )
    return proc.stdout + proc.stderr


def compile_target(name: str, tmp: Path) -> tuple[Path, BTF]:
    """Compile tests/btf/targets/<name>.c and return (object path, its .BTF)."""
    out = tmp / f"{name}.o"
    compile_bpf(TARGETS / f"{name}.c", out, extra=["-O0"])
    with open(out, "rb") as f:
        data = ELFFile(f).get_section_by_name(".BTF").data()
    return out, BTF.from_bytes(data)


# ------------------------------------------------------ relocate and compare


@dataclass
class Outcome:
    """What coreframe did to one relocation's instruction."""

    prog: str
    index: int
    insn: int
    before: tuple[int, int, int, int, int]
    result: CoreResult | None = None
    error: str | None = None
    poisoned: set[int] = field(default_factory=set)
    after: tuple[int, int, int, int, int] | None = None
    after_imm64: int | None = None


def relocate(info: ObjInfo, target: BTF) -> dict[tuple[str, int], Outcome]:
    """Resolve and apply every relocation like the loader would, section by section."""
    rel = CoreRelocator(info.btf, target)
    progs: dict[str, bytearray] = {}
    out: dict[tuple[str, int], Outcome] = {}
    for sec, relos in info.ext.core_relos.items():
        for i, relo in enumerate(relos):
            name, start = info.program_at(sec, relo.insn_off)
            insns = progs.setdefault(name, info.program_insns(sec, start, name))
            idx = relo.insn_off // 8 - start
            oc = Outcome(name, i, idx, asm.decode(insns, idx))
            out[(name, i)] = oc
            try:
                res = rel.resolve(relo)
            except RelocationError as e:
                oc.error = str(e)
                return out  # libbpf stops at the first failing relocation
            oc.result = res
            before = bytes(insns)
            rel.apply(insns, idx, relo, res)
            for j in range(len(insns) // 8):
                if before[j * 8 : j * 8 + 8] != insns[j * 8 : j * 8 + 8]:
                    code, _d, _s, _o, imm = asm.decode(insns, j)
                    if code == asm.CALL and imm == POISON_HELPER:
                        oc.poisoned.add(j)
            oc.after = asm.decode(insns, idx)
            if oc.after[0] == asm.LD_IMM64:
                hi = asm.decode(insns, idx + 1)[4]
                oc.after_imm64 = (oc.after[4] & 0xFFFFFFFF) | ((hi & 0xFFFFFFFF) << 32)
    return out


def compare(ours: dict[tuple[str, int], Outcome], theirs: dict[tuple[str, int], LibbpfRelo]):
    """Assert both sides did the same thing to every relocation; return counts."""
    assert set(theirs) <= set(ours), f"libbpf relocated {set(theirs) - set(ours)} we did not"
    checked = 0
    for key, oc in ours.items():
        lb = theirs.get(key)
        if oc.error is not None:
            assert lb is not None and lb.ambiguous, f"{key}: we failed ({oc.error}), libbpf did not"
            checked += 1
            continue
        assert lb is not None, f"{key}: libbpf logged nothing for this relocation"
        assert not lb.ambiguous, f"{key}: libbpf found it ambiguous, we did not"
        if lb.poisoned or oc.poisoned:
            assert oc.poisoned == lb.poisoned, (
                f"{key}: poisoned insns differ: ours {oc.poisoned} libbpf {lb.poisoned}"
            )
            checked += 1
            continue
        assert oc.insn == lb.insn, f"{key}: insn #{oc.insn} vs libbpf #{lb.insn}"
        assert oc.result is not None and oc.after is not None
        if lb.form == "LDIMM64":
            assert oc.before[0] == asm.LD_IMM64
            assert oc.after_imm64 == lb.new, f"{key}: imm64 {oc.after_imm64} vs {lb.new}"
        elif lb.form == "LDX/ST/STX":
            assert oc.before[3] & _U64 == lb.old, f"{key}: original off differs"
            assert oc.after[3] == lb.new, f"{key}: off {oc.after[3]} vs libbpf {lb.new}"
            if lb.mem_sz:
                assert (oc.result.orig_size, oc.result.new_size) == lb.mem_sz
                assert asm.SIZE_BYTES[oc.after[0] & 0x18] == lb.mem_sz[1]
            else:
                assert oc.after[0] == oc.before[0]
        else:
            assert oc.before[4] & _U64 == lb.old, f"{key}: original imm differs"
            assert oc.after[4] & 0xFFFFFFFF == lb.new & 0xFFFFFFFF, (
                f"{key}: imm {oc.after[4]} vs libbpf {lb.new} ({oc.result.explanation})"
            )
        assert oc.result.new_value & _U64 == lb.new
        checked += 1
    return checked
