"""USDT (SystemTap SDT) probes: finding them in ELF files and attaching to them.

A USDT probe is a ``nop`` in an executable or shared library plus an ELF note in
``.note.stapsdt`` that says where the ``nop`` is, where its optional semaphore is
(a 2-byte counter the application tests before preparing costly arguments) and
where each argument lives at that instruction (``-4@%eax``, ``8@-8(%rbp)``, ...).
For the kernel it is just a uprobe on that file offset; the semaphore is counted
up by the kernel itself while a uprobe naming it (``ref_ctr_offset``) exists.

BPF C reads arguments through libbpf's ``<bpf/usdt.bpf.h>``: ``bpf_usdt_arg()``
finds the probe's *spec* (how to fetch each argument) in the array map
``__bpf_usdt_specs``, keyed by a spec id that comes from the BPF cookie, or, on
kernels without cookies, from the hash map ``__bpf_usdt_ip_to_spec_id`` keyed by
the probe's address in the traced process. This module fills both maps with the
same contents libbpf's usdt.c does, so the same BPF C works under either loader:

1. ``read_binary`` reads the ELF headers, PT_LOAD segments and the notes
   (``struct``, no pyelftools: importing it costs more than reading the notes);
2. ``find_targets`` turns the notes of one ``provider:name`` into attach targets:
   address corrected for prelink through ``.stapsdt.base``, file offset of the
   instruction and of the semaphore, and (for shared objects without cookies) the
   address in the given process through ``/proc/PID/maps``;
3. ``parse_args`` parses the argument string (x86-64 only, libbpf's grammar), and
   ``SpecLayout`` encodes it as ``struct __bpf_usdt_spec``, laid out by the
   object's own BTF, so the bytes match whichever ``usdt.bpf.h`` it was built with;
4. ``Manager.attach`` allocates spec ids (one per distinct argument string per
   attachment, libbpf's rule), writes the maps and attaches: one uprobe_multi link
   with per-target cookies and semaphore offsets where the program was loaded for
   it, else one perf-event uprobe per target.
"""

from __future__ import annotations

import os
import struct

from ..errors import AttachError, ObjectError
from ..runtime.compat import zip_strict
from ..runtime.startup import Record
from ..sys.uapi_elf import (
    EHDR,
    EM_X86_64,
    ET_DYN,
    ET_EXEC,
    NHDR,
    PF_X,
    PHDR,
    PT_LOAD,
    SHDR,
    SHT_NOTE,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from ..btf.types import BTF
    from ..maps import Map
    from ..object import ObjectSpec
    from .base import Link

SPECS_MAP = "__bpf_usdt_specs"
IP_MAP = "__bpf_usdt_ip_to_spec_id"
COOKIE_EXTERN = "LINUX_HAS_BPF_COOKIE"

NOTE_SECTION = ".note.stapsdt"
BASE_SECTION = ".stapsdt.base"
NOTE_OWNER = b"stapsdt"
NT_STAPSDT = 3
MAX_ARGS = 12  # BPF_USDT_MAX_ARG_CNT in usdt.bpf.h


# enum __bpf_usdt_arg_type (usdt.bpf.h)
ARG_CONST = 0
ARG_REG = 1
ARG_REG_DEREF = 2
ARG_SIB = 3

# Offsets in x86-64 ``struct pt_regs`` (the kernel's, which is what a uprobe
# program's context is), by every name the assembler may use for the register.
_X86_64_PT_REGS = (
    (0, ("r15", "r15d", "r15w", "r15b")), (8, ("r14", "r14d", "r14w", "r14b")),
    (16, ("r13", "r13d", "r13w", "r13b")), (24, ("r12", "r12d", "r12w", "r12b")),
    (32, ("rbp", "ebp", "bp", "bpl")), (40, ("rbx", "ebx", "bx", "bl")),
    (48, ("r11", "r11d", "r11w", "r11b")), (56, ("r10", "r10d", "r10w", "r10b")),
    (64, ("r9", "r9d", "r9w", "r9b")), (72, ("r8", "r8d", "r8w", "r8b")),
    (80, ("rax", "eax", "ax", "al")), (88, ("rcx", "ecx", "cx", "cl")),
    (96, ("rdx", "edx", "dx", "dl")), (104, ("rsi", "esi", "si", "sil")),
    (112, ("rdi", "edi", "di", "dil")), (128, ("rip", "eip")),
    (152, ("rsp", "esp", "sp", "spl")),
)
X86_64_REG_OFFSETS = {name: off for off, names in _X86_64_PT_REGS for name in names}


# ---- the ELF side -----------------------------------------------------------------------


class Note:
    """One ``.note.stapsdt`` entry as written by the assembler."""

    __slots__ = ("provider", "name", "args", "loc_addr", "base_addr", "sema_addr")

    def __init__(self, provider: str, name: str, args: str, loc_addr: int, base_addr: int,
                 sema_addr: int) -> None:
        self.provider = provider
        self.name = name
        self.args = args
        self.loc_addr = loc_addr
        self.base_addr = base_addr
        self.sema_addr = sema_addr

    def __repr__(self) -> str:
        return (f"Note({self.provider}:{self.name} at {self.loc_addr:#x}, "
                f"sema {self.sema_addr:#x}, args {self.args!r})")


class Binary:
    """What USDT needs from one ELF file: its type, PT_LOAD segments and notes."""

    __slots__ = ("path", "e_type", "machine", "entry", "segments", "notes", "base_addr")

    def __init__(self, path: str, e_type: int, machine: int, entry: int,
                 segments: list[tuple[int, int, int, bool]], notes: list[Note],
                 base_addr: int) -> None:
        self.path = path
        self.e_type = e_type
        self.machine = machine
        self.entry = entry  # e_entry
        self.segments = segments  # (vaddr, memsz, file offset, executable), by vaddr
        self.notes = notes
        self.base_addr = base_addr  # sh_addr of .stapsdt.base, 0 if none

    def segment_of(self, vaddr: int) -> tuple[int, int, int, bool] | None:
        for seg in self.segments:
            if seg[0] <= vaddr < seg[0] + seg[1]:
                return seg
        return None

    def file_offset(self, vaddr: int) -> int | None:
        """File offset of virtual address ``vaddr``, None outside every PT_LOAD segment."""
        seg = self.segment_of(vaddr)
        return None if seg is None else vaddr - seg[0] + seg[2]

    def probes(self) -> list[tuple[str, str]]:
        """Distinct (provider, name) pairs, in note order."""
        seen: dict[tuple[str, str], None] = {}
        for n in self.notes:
            seen.setdefault((n.provider, n.name), None)
        return list(seen)


def read_binary(path: str) -> Binary:
    """Parse ``path``'s ELF header, PT_LOAD segments and USDT notes."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as e:
        raise AttachError(f"cannot open USDT target {path}: {e.strerror}") from None
    try:
        return _read_binary(fd, path)
    except (struct.error, ValueError, IndexError) as e:
        raise AttachError(f"{path}: malformed ELF file ({e})") from None
    finally:
        os.close(fd)


def _read_binary(fd: int, path: str) -> Binary:
    ehdr = os.pread(fd, EHDR.size, 0)
    if len(ehdr) < EHDR.size or ehdr[:4] != b"\x7fELF":
        raise AttachError(f"{path} is not an ELF file")
    if ehdr[4] != 2 or ehdr[5] != 1:
        raise AttachError(f"{path}: only 64-bit little-endian ELF files are supported")
    (_, e_type, machine, _, entry, phoff, shoff, _, _, phentsize, phnum, shentsize, shnum,
     shstrndx) = EHDR.unpack(ehdr)
    if e_type not in (ET_EXEC, ET_DYN):
        raise AttachError(f"{path}: ELF type {e_type} is neither an executable nor a shared "
                          "object")
    segments = []
    if phnum:
        raw = os.pread(fd, phentsize * phnum, phoff)
        for i in range(phnum):
            p_type, flags, offset, vaddr, _, _, memsz, _ = PHDR.unpack_from(raw, i * phentsize)
            if p_type == PT_LOAD:
                segments.append((vaddr, memsz, offset, bool(flags & PF_X)))
    segments.sort()
    notes: list[Note] = []
    base_addr = 0
    if shoff and shentsize:
        if shnum == 0:  # more than SHN_LORESERVE sections: the count is in section 0
            shnum = SHDR.unpack(os.pread(fd, SHDR.size, shoff))[5]
        raw = os.pread(fd, shentsize * shnum, shoff)
        shdrs = [SHDR.unpack_from(raw, i * shentsize) for i in range(shnum)]
        if shstrndx == 0xFFFF:  # SHN_XINDEX: the index is in section 0's sh_link
            shstrndx = shdrs[0][6]
        strtab = os.pread(fd, shdrs[shstrndx][5], shdrs[shstrndx][4])
        for sh_name, sh_type, _, addr, offset, size, *_ in shdrs:
            end = strtab.find(b"\0", sh_name)
            name = strtab[sh_name:end if end >= 0 else None]
            if name == BASE_SECTION.encode():
                base_addr = addr
            elif name == NOTE_SECTION.encode() and sh_type == SHT_NOTE:
                notes.extend(_parse_notes(os.pread(fd, size, offset), path))
    return Binary(path, e_type, machine, entry, segments, notes, base_addr)


def _parse_notes(data: bytes, path: str) -> list[Note]:
    out = []
    off = 0
    while off + NHDR.size <= len(data):
        namesz, descsz, ntype = NHDR.unpack_from(data, off)
        name_off = off + NHDR.size
        desc_off = name_off + ((namesz + 3) & ~3)
        off = desc_off + ((descsz + 3) & ~3)
        if off > len(data) + 3:
            raise AttachError(f"{path}: truncated {NOTE_SECTION} note")
        if ntype != NT_STAPSDT or data[name_off:name_off + namesz].rstrip(b"\0") != NOTE_OWNER:
            continue
        desc = data[desc_off:desc_off + descsz]
        if len(desc) < 24 + 3:
            raise AttachError(f"{path}: {NOTE_SECTION} note too short ({len(desc)} bytes)")
        loc, base, sema = struct.unpack_from("<QQQ", desc)
        parts = desc[24:].split(b"\0")
        if len(parts) < 3 or not parts[1]:
            raise AttachError(f"{path}: {NOTE_SECTION} note without provider, name or "
                              "arguments")
        args = parts[2].decode(errors="replace")
        if args.startswith(":"):  # libbpf reads an argument string starting with ':' as none
            args = ""
        out.append(Note(parts[0].decode(errors="replace"), parts[1].decode(errors="replace"),
                        args, loc, base, sema))
    return out


class Target:
    """One call site of a probe: where to put the uprobe and what to tell the BPF side."""

    __slots__ = ("abs_ip", "rel_ip", "sema_off", "args")

    def __init__(self, abs_ip: int, rel_ip: int, sema_off: int, args: str) -> None:
        self.abs_ip = abs_ip      # address the BPF program sees in PT_REGS_IP (ip map key)
        self.rel_ip = rel_ip      # file offset of the probe's instruction (uprobe offset)
        self.sema_off = sema_off  # file offset of the semaphore, 0 if none (ref_ctr_offset)
        self.args = args

    def __repr__(self) -> str:
        return (f"Target(abs_ip={self.abs_ip:#x}, rel_ip={self.rel_ip:#x}, "
                f"sema_off={self.sema_off:#x}, args={self.args!r})")


def find_targets(binary: Binary, provider: str, name: str, *, pid: int = -1,
                 need_abs_ip: bool = False) -> list[Target]:
    """The call sites of ``provider:name`` in ``binary`` (AttachError when none).

    ``need_abs_ip``: the caller keys spec ids by address (no BPF cookies), so a
    shared object's run-time address must be known, which needs ``pid``.
    """
    notes = [n for n in binary.notes if n.provider == provider and n.name == name]
    if not notes:
        raise AttachError(_no_probe_message(binary, provider, name))
    vmas: list[tuple[int, int, int]] | None = None
    out = []
    for n in notes:
        abs_ip = n.loc_addr
        sema = n.sema_addr
        if binary.base_addr and n.base_addr:
            # prelink moved the file but not the (unallocated) notes: .stapsdt.base's
            # section address says by how much
            abs_ip += binary.base_addr - n.base_addr
            if sema:
                sema += binary.base_addr - n.base_addr
        seg = binary.segment_of(abs_ip)
        if seg is None or not seg[3]:
            raise AttachError(f"{binary.path}: probe {provider}:{name} at {abs_ip:#x} is not in "
                              "an executable PT_LOAD segment")
        rel_ip = abs_ip - seg[0] + seg[2]
        if binary.e_type == ET_DYN and need_abs_ip:
            if pid <= 0:
                raise AttachError(
                    f"{binary.path} is position-independent and this kernel has no BPF "
                    f"cookies: attaching to {provider}:{name} needs a process id (pid=)")
            if vmas is None:
                vmas = _exec_mappings(binary.path, pid)
            abs_ip = _vma_address(vmas, rel_ip, binary.path, pid)
        sema_off = 0
        if sema:
            sseg = binary.segment_of(sema)
            if sseg is None or sseg[3]:
                raise AttachError(f"{binary.path}: semaphore of {provider}:{name} at {sema:#x} "
                                  "is not in a writable PT_LOAD segment")
            sema_off = sema - sseg[0] + sseg[2]
        out.append(Target(abs_ip, rel_ip, sema_off, n.args))
    return out


def _no_probe_message(binary: Binary, provider: str, name: str) -> str:
    have = binary.probes()
    if not have:
        return (f"{binary.path} has no USDT probes (no {NOTE_SECTION} notes; check with "
                f"readelf -n {binary.path})")
    import difflib

    spelled = [f"{p}:{n}" for p, n in have]
    close = difflib.get_close_matches(f"{provider}:{name}", spelled, n=1)
    hint = f"; did you mean {close[0]}?" if close else f"; it has {', '.join(spelled[:12])}"
    return f"{binary.path} has no USDT probe {provider}:{name}{hint}"


def _exec_mappings(path: str, pid: int) -> list[tuple[int, int, int]]:
    """(start, end, file offset) of ``path``'s executable mappings in process ``pid``."""
    real = os.path.realpath(path)
    out = []
    try:
        with open(f"/proc/{pid}/maps") as f:
            for line in f:
                parts = line.split(None, 5)
                if len(parts) < 6 or parts[1][2] != "x" or parts[5].rstrip("\n") != real:
                    continue
                lo, hi = parts[0].split("-")
                out.append((int(lo, 16), int(hi, 16), int(parts[2], 16)))
    except FileNotFoundError:
        raise AttachError(f"process {pid} does not exist (no /proc/{pid}/maps)") from None
    except OSError as e:
        raise AttachError(f"reading /proc/{pid}/maps: {e.strerror}") from None
    if not out:
        raise AttachError(f"{real} is not mapped executable in process {pid}")
    return out


def _vma_address(vmas: list[tuple[int, int, int]], rel_ip: int, path: str, pid: int) -> int:
    for lo, hi, off in vmas:
        if off <= rel_ip < off + (hi - lo):
            return lo - off + rel_ip
    raise AttachError(f"file offset {rel_ip:#x} of {path} is not mapped in process {pid}")


def find_in_process(pid: int, provider: str, name: str) -> str:
    """The file mapped in ``pid`` (its executable first, then its libraries) that has
    probe ``provider:name``; AttachError naming what was searched when none does."""
    try:
        exe = os.readlink(f"/proc/{pid}/exe")
    except FileNotFoundError:
        raise AttachError(f"process {pid} does not exist") from None
    except OSError as e:
        raise AttachError(f"cannot read /proc/{pid}/exe: {e.strerror}") from None
    candidates = [exe]
    try:
        with open(f"/proc/{pid}/maps") as f:
            for line in f:
                parts = line.split(None, 5)
                if len(parts) == 6 and parts[1][2] == "x" and parts[5].startswith("/"):
                    p = parts[5].rstrip("\n")
                    if p not in candidates and not p.endswith(" (deleted)"):
                        candidates.append(p)
    except OSError:
        pass
    for path in candidates:
        try:
            binary = read_binary(path)
        except AttachError:
            continue
        if any(n.provider == provider and n.name == name for n in binary.notes):
            return path
    raise AttachError(f"no file mapped in process {pid} ({exe} and {len(candidates) - 1} "
                      f"libraries) has USDT probe {provider}:{name} (check with readelf -n)")


# ---- argument specs -----------------------------------------------------------------------


class ArgSpec(Record, fields="text size signed kind val_off reg_off idx_reg_off scale_shift",
              defaults=(0, 0, 0, 0)):
    """How ``bpf_usdt_arg()`` fetches one argument (struct __bpf_usdt_arg_spec)."""

    __slots__ = ()

    text: str
    size: int
    signed: bool
    kind: int
    val_off: int
    reg_off: int
    idx_reg_off: int
    scale_shift: int

    @property
    def bitshift(self) -> int:
        """Bits to clear (and sign-extend from) to widen the value to 64 bits."""
        return 64 - self.size * 8

    def __repr__(self) -> str:
        return (f"ArgSpec({self.text!r}: kind={self.kind} size={self.size} signed={self.signed}"
                f" val_off={self.val_off} reg_off={self.reg_off})")


def _reg(name: str, arg: str, spec: str) -> int:
    off = X86_64_REG_OFFSETS.get(name)
    if off is None:
        raise AttachError(f"USDT argument {arg!r} (in {spec!r}) names register %{name}, which "
                          "is not an x86-64 general-purpose register")
    return off


def _int(text: str, arg: str, spec: str) -> int:
    try:
        return int(text, 0) if text.strip() else 0
    except ValueError:
        raise AttachError(f"USDT argument spec {arg!r} (in {spec!r}) is not understood: "
                          f"bad number {text!r}") from None


def parse_arg(arg: str, spec: str = "", machine: int = EM_X86_64) -> ArgSpec:
    """Parse one argument (``-4@%eax``, ``8@-8(%rbp)``, ``-4@$5``, ``8@(%rax,%rdx,8)``)."""
    spec = spec or arg
    if machine != EM_X86_64:
        raise AttachError(f"USDT argument specs of ELF machine {machine} are not supported "
                          "(x86-64 only)")
    size_text, at, loc = arg.partition("@")
    if not at or not loc:
        raise AttachError(f"USDT argument spec {arg!r} (in {spec!r}) is not understood: "
                          "expected SIZE@LOCATION")
    size = _int(size_text, arg, spec)
    if abs(size) not in (1, 2, 4, 8):
        raise AttachError(f"USDT argument spec {arg!r} (in {spec!r}) has size {size}; "
                          "expected 1, 2, 4 or 8 bytes (negative for signed)")
    signed = size < 0
    size = abs(size)
    if loc.startswith("$"):
        return ArgSpec(arg, size, signed, ARG_CONST, val_off=_int(loc[1:], arg, spec))
    if loc.startswith("%"):
        return ArgSpec(arg, size, signed, ARG_REG, reg_off=_reg(loc[1:], arg, spec))
    disp, paren, rest = loc.partition("(")
    if paren and rest.endswith(")"):
        regs = [r.strip() for r in rest[:-1].split(",")]
        off = _int(disp, arg, spec)
        if len(regs) == 1 and regs[0].startswith("%"):
            return ArgSpec(arg, size, signed, ARG_REG_DEREF, val_off=off,
                           reg_off=_reg(regs[0][1:], arg, spec))
        if len(regs) in (2, 3) and regs[0].startswith("%") and regs[1].startswith("%"):
            scale = _int(regs[2], arg, spec) if len(regs) == 3 else 1
            if scale not in (1, 2, 4, 8):
                raise AttachError(f"USDT argument spec {arg!r} (in {spec!r}) has index scale "
                                  f"{scale}; expected 1, 2, 4 or 8")
            return ArgSpec(arg, size, signed, ARG_SIB, val_off=off,
                           reg_off=_reg(regs[0][1:], arg, spec),
                           idx_reg_off=_reg(regs[1][1:], arg, spec),
                           scale_shift=scale.bit_length() - 1)
    raise AttachError(f"USDT argument spec {arg!r} (in {spec!r}) is not understood (known "
                      "forms: N@$IMM, N@%REG, N@OFF(%REG), N@OFF(%BASE,%INDEX,SCALE))")


def parse_args(spec: str, machine: int = EM_X86_64) -> list[ArgSpec]:
    """Parse a whole argument string (space-separated; empty for a probe without arguments)."""
    args = [parse_arg(a, spec, machine) for a in spec.split()]
    if len(args) > MAX_ARGS:
        raise AttachError(f"USDT argument string {spec!r} has {len(args)} arguments; "
                          f"usdt.bpf.h fetches at most {MAX_ARGS}")
    return args


# ---- spec encoding ---------------------------------------------------------------------------


class _Field:
    __slots__ = ("byte", "bit", "bits")

    def __init__(self, byte: int, bit: int, bits: int) -> None:
        self.byte, self.bit, self.bits = byte, bit, bits


class SpecLayout(Record, fields="size args_off arg_size cookie_off cnt_off fields has_sib"):
    """The byte layout of ``struct __bpf_usdt_spec`` as the object was compiled.

    Read from the object's BTF (the layout is libbpf's implementation detail and
    has changed once, when scale-index-base arguments arrived); objects without
    BTF get the layout of libbpf 1.0-1.4's usdt.bpf.h. ``fields``: each member of
    ``struct __bpf_usdt_arg_spec`` by name.
    """

    __slots__ = ()

    size: int
    args_off: int
    arg_size: int
    cookie_off: int
    cnt_off: int
    fields: dict[str, _Field]
    has_sib: bool

    @classmethod
    def default(cls) -> SpecLayout:
        f = {"val_off": _Field(0, 0, 64), "arg_type": _Field(8, 0, 32),
             "reg_off": _Field(12, 0, 16), "arg_signed": _Field(14, 0, 8),
             "arg_bitshift": _Field(15, 0, 8)}
        return cls(208, 0, 16, 192, 200, f, False)

    @classmethod
    def from_btf(cls, btf: BTF | None) -> SpecLayout:
        if btf is None:
            return cls.default()
        from ..btf.kinds import Kind

        ids = btf.find("__bpf_usdt_spec", Kind.STRUCT)
        aids = btf.find("__bpf_usdt_arg_spec", Kind.STRUCT)
        if not ids or not aids:
            return cls.default()
        spec = btf[ids[0]]
        members = {m.name: m for m in spec.members}
        arg = btf[aids[0]]
        try:
            args_m, cookie_m, cnt_m = (members["args"], members["usdt_cookie"],
                                       members["arg_cnt"])
        except KeyError as e:
            raise ObjectError(f"struct __bpf_usdt_spec in the object has no member {e}: "
                              "not a usdt.bpf.h this loader knows") from None
        fields = {}
        for m in arg.members:
            size_bits = m.bitfield_size or btf.size_of(m.type) * 8
            fields[m.name] = _Field(m.bit_offset // 8, m.bit_offset % 8, size_bits)
        for need in ("val_off", "arg_type", "reg_off", "arg_signed", "arg_bitshift"):
            if need not in fields:
                raise ObjectError(f"struct __bpf_usdt_arg_spec in the object has no member "
                                  f"{need!r}: not a usdt.bpf.h this loader knows")
        has_sib = False
        for eid in btf.find("__bpf_usdt_arg_type", Kind.ENUM):
            has_sib = any(n == "BPF_USDT_ARG_SIB" for n, _ in btf[eid].values)
        has_sib = has_sib and "idx_reg_off" in fields and "scale_bitshift" in fields
        return cls(spec.size, args_m.bit_offset // 8, arg.size, cookie_m.bit_offset // 8,
                   cnt_m.bit_offset // 8, fields, has_sib)

    def _put(self, buf: bytearray, base: int, name: str, value: int) -> None:
        f = self.fields[name]
        mask = (1 << f.bits) - 1
        nbytes = (f.bit + f.bits + 7) // 8
        cur = int.from_bytes(buf[base + f.byte:base + f.byte + nbytes], "little")
        cur = (cur & ~(mask << f.bit)) | ((value & mask) << f.bit)
        buf[base + f.byte:base + f.byte + nbytes] = cur.to_bytes(nbytes, "little")

    def encode(self, args: list[ArgSpec], cookie: int, spec_text: str) -> bytes:
        buf = bytearray(self.size)
        for i, a in enumerate(args):
            base = self.args_off + i * self.arg_size
            if a.kind == ARG_SIB and not self.has_sib:
                raise AttachError(
                    f"USDT argument {a.text!r} (in {spec_text!r}) uses scale-index-base "
                    "addressing, which the object's usdt.bpf.h cannot fetch (its enum "
                    "__bpf_usdt_arg_type has no BPF_USDT_ARG_SIB); rebuild the object "
                    "against a newer libbpf's usdt.bpf.h")
            self._put(buf, base, "val_off", a.val_off)
            self._put(buf, base, "arg_type", a.kind)
            self._put(buf, base, "reg_off", a.reg_off)
            self._put(buf, base, "arg_signed", int(a.signed))
            self._put(buf, base, "arg_bitshift", a.bitshift)
            if a.kind == ARG_SIB:
                self._put(buf, base, "idx_reg_off", a.idx_reg_off)
                self._put(buf, base, "scale_bitshift", a.scale_shift)
        buf[self.cookie_off:self.cookie_off + 8] = (cookie & (2**64 - 1)).to_bytes(8, "little")
        buf[self.cnt_off:self.cnt_off + 2] = len(args).to_bytes(2, "little")
        return bytes(buf)


# ---- the per-object manager -------------------------------------------------------------------


def object_has_cookie(spec: ObjectSpec) -> bool | None:
    """The LINUX_HAS_BPF_COOKIE value the loader wrote into the object's .kconfig,
    or None when the object does not read it."""
    from ..object.parts import KCONFIG_SEC

    ext = spec.externs.get(COOKIE_EXTERN)
    m = spec.maps.get(KCONFIG_SEC)
    if ext is None or m is None or m.data is None:
        return None
    return any(m.data[ext.offset:ext.offset + ext.size])


def load_attach_type(section_def: Any) -> int:
    """expected_attach_type for a SEC("usdt") program: uprobe_multi where the kernel
    has it (a program loaded for it attaches only that way), else 0 (perf uprobes)."""
    from ..sys import consts as C
    from .uprobe_multi import use_multi_link

    return C.BPF_TRACE_UPROBE_MULTI if use_multi_link() else 0


class Manager:
    """Spec ids and the two USDT maps of one loaded object (libbpf's usdt_manager)."""

    def __init__(self, specs: Map, ip_map: Map | None, has_cookie: bool,
                 layout: SpecLayout) -> None:
        self.specs = specs
        self.ip_map = ip_map
        self.has_cookie = has_cookie
        self.layout = layout
        self._next_id = 0
        self._free: list[int] = []

    @classmethod
    def for_object(cls, spec: ObjectSpec, maps: dict[str, Map]) -> Manager | None:
        """A manager when the object includes usdt.bpf.h (has its spec map), else None."""
        specs = maps.get(SPECS_MAP)
        if specs is None:
            return None
        has_cookie = object_has_cookie(spec)
        if has_cookie is None:
            from .. import features

            has_cookie = features.has_bpf_cookie()
        return cls(specs, maps.get(IP_MAP), has_cookie, SpecLayout.from_btf(spec.btf))

    def _allocate(self) -> int:
        if self._free:
            return self._free.pop()
        if self._next_id >= self.specs.max_entries:
            raise AttachError(f"USDT spec map {SPECS_MAP} is full ({self.specs.max_entries} "
                              "specs); define BPF_USDT_MAX_SPEC_CNT larger in the BPF source")
        self._next_id += 1
        return self._next_id - 1

    def attach(self, prog: Any, path: str, provider: str, name: str, *, pid: int = -1,
               cookie: int = 0) -> Link:
        """Attach ``prog`` to every call site of ``provider:name`` in ``path``."""
        from . import symbols as uprobes

        if pid == 0:
            pid = os.getpid()
        if pid > 0 and not os.path.exists(f"/proc/{pid}"):
            raise AttachError(f"process {pid} does not exist")
        real = uprobes.resolve_path(path, pid)
        binary = read_binary(real)
        if not self.has_cookie and self.ip_map is None:
            raise ObjectError(f"object has no {IP_MAP} map, which this kernel (no BPF "
                              "cookies) needs; include <bpf/usdt.bpf.h>")
        targets = find_targets(binary, provider, name, pid=pid,
                               need_abs_ip=not self.has_cookie)
        what = f"{real}:{provider}:{name}" + (f" (pid {pid})" if pid > 0 else "")
        ids: list[int] = []
        ips: list[int] = []
        by_text: dict[str, int] = {}
        target_ids: list[int] = []

        def undo() -> None:
            if self.ip_map is not None:
                for ip in ips:
                    try:
                        self.ip_map.delete(ip)
                    except Exception:  # noqa: BLE001 - detaching goes on
                        pass
            self._free.extend(ids)
            ids.clear()
            ips.clear()

        try:
            for t in targets:
                sid = by_text.get(t.args)
                if sid is None:
                    encoded = self.layout.encode(parse_args(t.args, binary.machine), cookie,
                                                 t.args)
                    sid = self._allocate()
                    ids.append(sid)
                    by_text[t.args] = sid
                    self.specs.update(sid, encoded)
                if not self.has_cookie:
                    assert self.ip_map is not None
                    from ..errors import MapError

                    try:
                        self.ip_map.update(t.abs_ip, sid, flags=1)  # BPF_NOEXIST
                    except MapError:
                        raise AttachError(
                            f"USDT {what}: address {t.abs_ip:#x} is already attached by "
                            "another USDT attachment of this object") from None
                    ips.append(t.abs_ip)
                target_ids.append(sid)
            return _attach_targets(prog, real, targets, target_ids, pid, self.has_cookie,
                                   what, undo)
        except BaseException:
            undo()
            raise


def _attach_targets(prog: Any, path: str, targets: list[Target], spec_ids: list[int],
                    pid: int, has_cookie: bool, what: str, undo: Any) -> Link:
    from ..sys import consts as C
    from .base import Link, attach_error, program_fd, program_name
    from .probe import attach_uprobe

    if getattr(prog, "expected_attach_type", 0) == C.BPF_TRACE_UPROBE_MULTI:
        from ..sys.bpf import link_create
        from ..sys.fd import FD

        try:
            lfd: FD = link_create(
                program_fd(prog), 0, C.BPF_TRACE_UPROBE_MULTI, uprobe_path=path,
                uprobe_offsets=[t.rel_ip for t in targets],
                uprobe_ref_ctr_offsets=[t.sema_off for t in targets],
                uprobe_cookies=spec_ids, uprobe_pid=max(pid, 0))
        except OSError as e:
            import errno

            if e.errno == errno.ESRCH:
                raise AttachError(f"attaching USDT {what}: process {pid} is gone") from None
            raise attach_error(
                e, f"attaching {program_name(prog)} to USDT {what} (uprobe_multi)"
            ) from None
        return Link("usdt (uprobe_multi)", what, lfd, resources=[undo])
    children: list[Link] = []
    try:
        for t, sid in zip_strict(targets, spec_ids):
            children.append(attach_uprobe(
                prog, path, None, t.rel_ip, pid=pid if pid > 0 else -1,
                cookie=sid if has_cookie else 0, ref_ctr_offset=t.sema_off))
    except BaseException:
        for c in children:
            c.close()
        raise
    from ..features import note_fallback

    note_fallback("USDT by one uprobe per call site",
                  "no uprobe_multi links (Linux 6.6+; probe: features.has_uprobe_multi)")
    if not has_cookie:
        note_fallback("USDT spec ids by call-site address (__bpf_usdt_ip_to_spec_id)",
                      "no BPF cookies (bpf_get_attach_cookie, Linux 5.15+; probe: "
                      "features.has_bpf_cookie)")
    return Link("usdt", what, None, resources=[undo], children=children)


def parse_sec_target(target: str) -> tuple[str, str, str]:
    """Split SEC("usdt/PATH:PROVIDER:NAME") into its three parts (PATH may contain ':')."""
    path, sep1, rest = target.rpartition(":")
    path, sep2, provider = path.rpartition(":")
    if not (sep1 and sep2 and path and provider and rest):
        raise AttachError(f"bad USDT target '{target}': expected PATH:PROVIDER:NAME")
    return path, provider, rest


def attach_usdt(prog: Any, path: str, provider: str, name: str, pid: int = -1,
                cookie: int = 0) -> Link:
    """Attach a program built with <bpf/usdt.bpf.h> to USDT ``provider:name`` in ``path``."""
    man = getattr(prog, "usdt", None)
    if man is None:
        pname = getattr(prog, "name", "?")
        raise AttachError(f"program {pname}: its object has no {SPECS_MAP} map; USDT "
                          "programs must include <bpf/usdt.bpf.h> and use bpf_usdt_arg()")
    return man.attach(prog, path, provider, name, pid=pid, cookie=cookie)
