"""The flags that compile BPF C for coreframe: one definition for every build.

The Makefile, the tests that compile C inline, the docs' recipe for plugin authors and
``coreframe cflags`` all take their flags from :func:`bpf_cflags`.

Why the system include directories are spelled out: with ``-target bpf`` clang searches
only its own resource directory, ``/usr/local/include`` and ``/usr/include``. Debian's
linux-libc-dev keeps the UAPI's architecture headers in the multiarch directory
(``/usr/include/x86_64-linux-gnu/asm``), so ``#include <linux/types.h>`` (which includes
``<asm/types.h>``) fails on a fresh machine. libbpf-tools' build solves this by asking
clang for the search list it uses for the *host* and appending each directory with
``-idirafter``; we do the same, and add the host's multiarch directory in case clang's
list lacks it. ``-idirafter`` keeps the BPF target's own directories first.

Command line: ``python -m coreframe.build [--clang PATH]`` prints the flags, shell-quoted.
"""

from __future__ import annotations

import functools
import os
import subprocess

from .errors import Error

# uname -m -> the __TARGET_ARCH_* name libbpf's bpf_tracing.h expects (PT_REGS_* macros)
_TARGET_ARCH = {
    "x86_64": "x86", "i386": "x86", "i686": "x86",
    "aarch64": "arm64", "armv7l": "arm", "armv6l": "arm",
    "s390x": "s390", "ppc64le": "powerpc", "ppc64": "powerpc",
    "mips": "mips", "mips64": "mips", "riscv64": "riscv",
    "loongarch64": "loongarch", "sparc64": "sparc",
}

#: Flags every BPF object gets: BTF (-g, kept by llvm-strip -g), the optimisation the
#: verifier expects, and -mcpu=v3 (clang 14 refuses an atomic fetch-add whose result is
#: used without it; v3 also gives 32-bit subregisters the verifier tracks).
BASE_FLAGS = ("-g", "-O2", "-target", "bpf", "-mcpu=v3", "-Wall")


def target_arch(machine: str | None = None) -> str:
    """The ``__TARGET_ARCH_*`` suffix for ``machine`` (default: this host)."""
    machine = machine or os.uname().machine
    try:
        return _TARGET_ARCH[machine]
    except KeyError:
        raise Error(f"building BPF for {machine!r}: unknown architecture "
                    f"(known: {', '.join(sorted(_TARGET_ARCH))})") from None


def _run_clang(clang: str, args: list[str]) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run([clang, *args], capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, check=False)
    except FileNotFoundError:
        raise Error(f"running {clang} to find the system include directories: not found; "
                    "install clang (Debian: apt-get install clang llvm)") from None


@functools.cache  # one clang run per clang and process
def _system_include_dirs(clang: str) -> tuple[str, ...]:
    proc = _run_clang(clang, ["-v", "-E", "-x", "c", "-"])
    dirs: list[str] = []
    inside = False
    for line in proc.stderr.splitlines():
        if line.startswith("#include <...> search starts here:"):
            inside = True
        elif line.startswith("End of search list."):
            break
        elif inside and line.startswith(" /"):
            dirs.append(line.strip().split(" (")[0])   # " /dir (framework directory)"
    if not dirs:
        raise Error(f"running {clang} -v -E to find the system include directories: "
                    f"no search list in its output (exit {proc.returncode})")
    multiarch = _run_clang(clang, ["-print-multiarch"]).stdout.strip()
    if multiarch:
        extra = f"/usr/include/{multiarch}"
        if extra not in dirs and os.path.isdir(extra):
            dirs.append(extra)
    return tuple(dirs)


def system_include_dirs(clang: str = "clang") -> list[str]:
    """clang's own include search list for the host, plus the host's multiarch directory."""
    return list(_system_include_dirs(clang))


def bpf_cflags(clang: str = "clang", *, machine: str | None = None) -> list[str]:
    """Every flag a BPF C source needs, short of ``-c SRC -o OBJ`` and the source's own ``-I``."""
    flags = [*BASE_FLAGS, f"-D__TARGET_ARCH_{target_arch(machine)}"]
    for d in system_include_dirs(clang):
        flags += ["-idirafter", d]
    return flags


def compile_bpf(src: os.PathLike[str] | str, out: os.PathLike[str] | str, *,
                extra: tuple[str, ...] | list[str] = (), clang: str = "clang",
                cwd: os.PathLike[str] | str | None = None) -> None:
    """Compile one BPF C file with :func:`bpf_cflags`; ``extra`` flags come after them."""
    cmd = [clang, *bpf_cflags(clang), *extra, "-c", os.fspath(src), "-o", os.fspath(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, check=False)
    if proc.returncode != 0:
        raise Error(f"compiling {os.fspath(src)}: clang exited {proc.returncode}:\n"
                    f"{proc.stderr.strip()}")


def main(argv: list[str] | None = None) -> int:
    import argparse
    import shlex
    import sys

    parser = argparse.ArgumentParser(prog="python -m coreframe.build",
                                     description="Print the flags that compile BPF C.")
    parser.add_argument("--clang", default="clang", help="the clang to ask (default: clang)")
    args = parser.parse_args(argv)
    try:
        print(shlex.join(bpf_cflags(args.clang)))
    except Error as e:
        print(f"coreframe.build: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
