"""A second corpus: the repository's own BPF sources built with other flags and headers.

Each variant changes something a user's build might: the instruction set
(``-mcpu=v1``/``v2``), the optimisation level, DWARF left in the object, no
``-fdebug-prefix-map`` (absolute build paths in line_info), or the kernel headers
themselves (a vmlinux.h generated from Debian's 6.1 kernel instead of this
machine's 6.18). Objects are built at test time into the corpus cache, keyed by
a hash of everything that goes into them, so a second run compiles nothing.
"""

from __future__ import annotations

import hashlib
import lzma
import os
import shutil
import subprocess
import tarfile
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from coreframe.build import bpf_cflags

ROOT = Path(__file__).resolve().parents[2]
REPO_VMLINUX_H = ROOT / "bpf" / "vmlinux.h"
KERNEL_CACHE = Path(os.environ.get("CF_KERNEL_CACHE", "/var/cache/coreframe-kernels"))
OTHER_KERNEL_SERIES = "6.1"

# name -> (source, committed object that names its programs)
SOURCES: dict[str, tuple[Path, Path]] = {
    "execsnoop": (ROOT / "bpf" / "execsnoop.bpf.c", ROOT / "plugins/objects/execsnoop.bpf.o"),
    "core_task": (ROOT / "tests/objects/core_task.bpf.c", ROOT / "tests/objects/core_task.bpf.o"),
    "obj_calls": (ROOT / "tests/objects/obj_calls.bpf.c", ROOT / "tests/objects/obj_calls.bpf.o"),
    "obj_globals": (ROOT / "tests/objects/obj_globals.bpf.c",
                    ROOT / "tests/objects/obj_globals.bpf.o"),
    "kern_bufs": (ROOT / "tests/objects/kern_bufs.bpf.c", ROOT / "tests/objects/kern_bufs.bpf.o"),
}


@dataclass(frozen=True)
class Variant:
    """How one corpus variant is compiled."""

    flags: tuple[str, ...]
    strip: bool = False  # llvm-strip -g, as the Makefile does; False keeps DWARF
    other_kernel_headers: bool = False


VARIANTS: dict[str, Variant] = {
    "mcpu-v1": Variant(("-O2", "-mcpu=v1"), strip=True),
    "mcpu-v2-dwarf": Variant(("-O2", "-mcpu=v2")),
    "O1-dwarf": Variant(("-O1", "-mcpu=v3")),
    "Os": Variant(("-Os", "-mcpu=v3"), strip=True),
    "linux-6.1-headers": Variant(("-O2", "-mcpu=v3"), strip=True, other_kernel_headers=True),
}


class BuildSkipped(Exception):
    """The variant cannot be built on this machine (missing tool or kernel package)."""


def _tool_version(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise BuildSkipped(f"{tool} is not installed")
    return subprocess.run([path, "--version"], capture_output=True, text=True).stdout


def _vmlinux_from_bzimage(image: bytes) -> bytes:
    """The uncompressed vmlinux ELF inside a bzImage (xz or gzip payload)."""
    candidates = [(image.find(b"\xfd7zXZ\x00"), "xz"), (image.find(b"\x1f\x8b\x08"), "gz")]
    for off, kind in sorted(c for c in candidates if c[0] >= 0):
        try:
            if kind == "xz":
                out = lzma.LZMADecompressor().decompress(image[off:])
            else:
                out = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(image[off:])
        except (lzma.LZMAError, zlib.error):
            continue
        if out[:4] == b"\x7fELF":
            return out
    raise BuildSkipped("no xz/gzip-compressed vmlinux found in the kernel image")


def other_kernel_vmlinux_h(cache: Path) -> Path:
    """vmlinux.h of Debian's 6.1 kernel, generated once from the .deb kernels/fetch.sh keeps."""
    debs = sorted((KERNEL_CACHE / "debs").glob(
        f"linux-image-{OTHER_KERNEL_SERIES}.*-amd64-unsigned_*.deb"))
    if not debs:
        raise BuildSkipped(f"no Debian {OTHER_KERNEL_SERIES} kernel .deb in {KERNEL_CACHE}/debs "
                           f"(kernels/fetch.sh {OTHER_KERNEL_SERIES} downloads it)")
    deb = debs[-1]
    out = cache / "headers" / f"{deb.name.removesuffix('.deb')}.vmlinux.h"
    if out.exists():
        return out
    bpftool = shutil.which("bpftool")
    if bpftool is None:
        raise BuildSkipped("bpftool is not installed (needed to write vmlinux.h)")
    out.parent.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE)
    image = None
    assert proc.stdout is not None
    with tarfile.open(fileobj=proc.stdout, mode="r|") as tar:
        for member in tar:
            if member.name.startswith("./boot/vmlinuz-") and member.isfile():
                f = tar.extractfile(member)
                assert f is not None
                image = f.read()
                break
    proc.stdout.close()
    proc.wait()
    if image is None:
        raise BuildSkipped(f"{deb.name} has no /boot/vmlinuz-*")
    elf = out.with_suffix(f".vmlinux.{os.getpid()}.tmp")
    try:
        elf.write_bytes(_vmlinux_from_bzimage(image))
        dump = subprocess.run([bpftool, "btf", "dump", "file", str(elf), "format", "c"],
                              capture_output=True, text=True)
        if dump.returncode != 0:
            raise BuildSkipped(f"bpftool cannot dump the {deb.name} BTF: {dump.stderr.strip()}")
        tmp = out.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(dump.stdout)
        tmp.replace(out)
    finally:
        elf.unlink(missing_ok=True)
    return out


def build(variant_name: str, source_name: str, cache: Path) -> Path:
    """Compile one source as one variant (cached); the object's path.

    Raises BuildSkipped when a tool or input is missing, and RuntimeError with
    clang's message when the compiler refuses the source.
    """
    variant = VARIANTS[variant_name]
    source, _ = SOURCES[source_name]
    header = other_kernel_vmlinux_h(cache) if variant.other_kernel_headers else REPO_VMLINUX_H
    inputs = {source.name: source.read_bytes(), "vmlinux.h": header.read_bytes()}
    for h in source.parent.glob("*.h"):
        if h.name != "vmlinux.h":
            inputs[h.name] = h.read_bytes()
    key = hashlib.sha256()
    key.update(_tool_version("clang").encode())
    key.update(repr(variant).encode())
    key.update(repr(bpf_cflags()).encode())
    for name in sorted(inputs):
        key.update(name.encode() + b"\0" + hashlib.sha256(inputs[name]).digest())
    workdir = cache / "variants" / variant_name / f"{source_name}-{key.hexdigest()[:16]}"
    obj = workdir / f"{source_name}.bpf.o"
    if obj.exists():
        return obj
    # Build in a private directory and rename it into place: concurrent test runs
    # sharing the cache never see a half-written input or object.
    workdir.parent.mkdir(parents=True, exist_ok=True)
    private = Path(tempfile.mkdtemp(prefix=f".{source_name}-", dir=workdir.parent))
    try:
        for name, data in inputs.items():
            (private / name).write_bytes(data)
        out = private / obj.name
        cmd = ["clang", *bpf_cflags(), *variant.flags,
               f"-I{private}", "-c", str(private / source.name), "-o", str(out)]
        cc = subprocess.run(cmd, capture_output=True, text=True)
        if cc.returncode != 0:
            raise RuntimeError(f"clang {' '.join(variant.flags)} refuses {source.name}: "
                               f"{cc.stderr.strip().splitlines()[-1:]}")
        if variant.strip:
            strip = shutil.which("llvm-strip")
            if strip is None:
                raise BuildSkipped("llvm-strip is not installed")
            subprocess.run([strip, "-g", str(out)], check=True)
        try:
            private.rename(workdir)
        except OSError:
            if not obj.exists():
                raise
    finally:
        shutil.rmtree(private, ignore_errors=True)
    return obj
