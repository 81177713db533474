"""Pull the BPF ELF objects out of binaries built elsewhere (Debian's libbpf-tools).

A libbpf skeleton embeds the whole ``.bpf.o`` in the tool's ``.rodata``. We find
every ``\\x7fELF`` inside the binary, keep the ones that are 64-bit little-endian
EM_BPF relocatable objects, and cut each at the end of its section header table
(BPF objects put the table last; clang always does). The result is a corpus of
objects compiled by another clang against another kernel's vmlinux.h.

Run directly to extract into a directory: ``python corpus_extract.py OUTDIR``.
"""

from __future__ import annotations

import hashlib
import os
import struct
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ELF_MAGIC = b"\x7fELF"
ELFCLASS64 = 2
ELFDATA2LSB = 1
ET_REL = 1
EM_BPF = 247
EHDR_SIZE = 64
SHDR_SIZE = 64

# e_type, e_machine, e_version, e_entry, e_phoff, e_shoff, e_flags, e_ehsize,
# e_phentsize, e_phnum, e_shentsize, e_shnum, e_shstrndx (after e_ident[16]).
_EHDR = struct.Struct("<HHIQQQIHHHHHH")
# sh_name, sh_type, sh_flags, sh_addr, sh_offset, sh_size, sh_link, sh_info,
# sh_addralign, sh_entsize
_SHDR = struct.Struct("<IIQQQQIIQQ")
SHT_NOBITS = 8

LIBBPF_TOOLS_PACKAGE = "libbpf-tools"


def default_cache_dir() -> Path:
    """Where extracted and built corpus objects live between runs (safe to delete).

    ``CF_CORPUS_CACHE`` overrides it; the default is per user under the temp dir.
    """
    env = os.environ.get("CF_CORPUS_CACHE")
    if env:
        return Path(env)
    return Path(tempfile.gettempdir()) / f"coreframe-corpus-{os.getuid()}"


@dataclass(frozen=True)
class Embedded:
    """One BPF object found inside a host binary."""

    offset: int
    data: bytes


def _bpf_object_size(buf: bytes, start: int) -> int | None:
    """Total size of a BPF ELF object starting at ``start``, or None if it is not one."""
    if len(buf) - start < EHDR_SIZE:
        return None
    ident = buf[start:start + 16]
    if ident[4] != ELFCLASS64 or ident[5] != ELFDATA2LSB:
        return None
    (e_type, e_machine, _ver, _entry, e_phoff, e_shoff, _flags, e_ehsize, _phentsize,
     e_phnum, e_shentsize, e_shnum, e_shstrndx) = _EHDR.unpack_from(buf, start + 16)
    if e_machine != EM_BPF or e_type != ET_REL:
        return None
    if e_ehsize != EHDR_SIZE or e_shentsize != SHDR_SIZE or e_phnum != 0 or e_phoff != 0:
        return None
    if e_shnum == 0 or e_shstrndx >= e_shnum or e_shoff < EHDR_SIZE:
        return None
    size = e_shoff + e_shnum * e_shentsize
    if start + size > len(buf):
        return None
    # Sanity: every section's contents lies inside the object, before the table.
    for i in range(e_shnum):
        (_name, sh_type, _fl, _addr, sh_offset, sh_size, *_rest) = _SHDR.unpack_from(
            buf, start + e_shoff + i * SHDR_SIZE)
        if i == 0 or sh_type == SHT_NOBITS:
            continue
        if sh_offset + sh_size > e_shoff:
            return None
    return size


def find_bpf_objects(buf: bytes) -> Iterator[Embedded]:
    """Every well-formed BPF ELF object embedded in ``buf``, in file order."""
    pos = buf.find(ELF_MAGIC)
    while pos >= 0:
        size = _bpf_object_size(buf, pos)
        if size is not None:
            yield Embedded(pos, buf[pos:pos + size])
            pos = buf.find(ELF_MAGIC, pos + size)
        else:
            pos = buf.find(ELF_MAGIC, pos + 1)


def libbpf_tools_binaries() -> list[Path]:
    """The executables of Debian's libbpf-tools package ([] if it is not installed)."""
    try:
        proc = subprocess.run(["dpkg", "-L", LIBBPF_TOOLS_PACKAGE], capture_output=True,
                              text=True, check=False)
    except FileNotFoundError:
        return []
    if proc.returncode != 0:
        return []
    out = []
    for line in proc.stdout.splitlines():
        p = Path(line)
        if p.parent.name in ("sbin", "bin") and p.is_file() and os.access(p, os.X_OK):
            out.append(p)
    return sorted(out)


def extract_binary(binary: Path, outdir: Path, seen: set[bytes] | None = None) -> list[Path]:
    """Write each BPF object in ``binary`` to ``outdir/<tool>[.N].bpf.o``; the paths written.

    Objects whose SHA-256 is in ``seen`` are skipped (and new ones added to it).
    Files already present with the same bytes are left alone, so a cache
    directory can be reused across runs.
    """
    paths = []
    for n, emb in enumerate(find_bpf_objects(binary.read_bytes())):
        if seen is not None:
            digest = hashlib.sha256(emb.data).digest()
            if digest in seen:
                continue
            seen.add(digest)
        stem = binary.name if n == 0 else f"{binary.name}.{n}"
        path = outdir / f"{stem}.bpf.o"
        if not path.exists() or path.read_bytes() != emb.data:
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_bytes(emb.data)
            tmp.replace(path)
        paths.append(path)
    return paths


def extract_all(outdir: Path, binaries: list[Path] | None = None) -> dict[str, list[Path]]:
    """Extract every libbpf-tools binary (or ``binaries``) into ``outdir``; tool -> objects.

    Symlinked tools (btrfsdist -> fsdist) and tools that embed byte-identical
    objects are kept once, under the first name seen.
    """
    outdir.mkdir(parents=True, exist_ok=True)
    found: dict[str, list[Path]] = {}
    seen_files: set[Path] = set()
    seen_objects: set[bytes] = set()
    for b in libbpf_tools_binaries() if binaries is None else binaries:
        real = b.resolve()
        if real in seen_files:
            continue
        seen_files.add(real)
        found[b.name] = extract_binary(b, outdir, seen_objects)
    return found


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(f"usage: {argv[0]} OUTDIR", file=sys.stderr)
        return 2
    found = extract_all(Path(argv[1]))
    if not found:
        print(f"{LIBBPF_TOOLS_PACKAGE} is not installed", file=sys.stderr)
        return 1
    for tool, paths in found.items():
        print(f"{tool}: {', '.join(p.name for p in paths) or 'no BPF object'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
