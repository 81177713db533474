"""Helpers of the USDT tests: workloads, record decoding, semaphores, oracles.

The oracles are independent of coreframe: libbpf (through ctypes, with its own
``bpf_program__attach_usdt``) for argument values, bpftrace's ``usdt:`` probes
for counts, and the target process's own memory (/proc/PID/mem) for semaphores.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import NamedTuple

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
PYTHON = "/usr/bin/python3.11"
WORKLOAD = HERE / "py_workload.py"
OBJ = ROOT / "tests" / "objects" / "usdt_args.bpf.o"

sys.path.insert(0, str(ROOT / "tests" / "bpf"))
from libbpf_oracle import LIBBPF, LibbpfObject, RingReader, _errno_error  # noqa: E402

# struct usdt_rec in tests/objects/usdt_args.bpf.c
_REC = struct.Struct("<Ii3q3i4xQQ96s64s")


class Rec(NamedTuple):
    """One probe hit as usdt.bpf.h saw it."""

    pid: int
    arg_cnt: int
    args: tuple[int, ...]
    errs: tuple[int, ...]
    cookie: int
    ip: int
    str0: str
    str1: str

    @classmethod
    def decode(cls, raw: bytes) -> Rec:
        f = _REC.unpack_from(raw)
        return cls(f[0], f[1], f[2:5], f[5:8], f[8], f[9],
                   f[10].split(b"\0")[0].decode(errors="replace"),
                   f[11].split(b"\0")[0].decode(errors="replace"))


def def_line(func: str) -> int:
    """The line of ``def func`` in py_workload.py (what function__entry reports)."""
    for i, line in enumerate(WORKLOAD.read_text().splitlines(), 1):
        if line.startswith(f"def {func}("):
            return i
    raise AssertionError(f"no def {func} in {WORKLOAD}")


def python_has_probes() -> bool:
    if not os.path.exists(PYTHON):
        return False
    from coreframe import usdt

    return ("python", "function__entry") in usdt.read_binary(PYTHON).probes()


class Proc:
    """A child that prints 'ready', then works one round per stdin line."""

    def __init__(self, argv: list[str]) -> None:
        self.p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  text=True)
        line = self.p.stdout.readline().strip()  # type: ignore[union-attr]
        if line != "ready":
            self.close()
            raise RuntimeError(f"{argv[0]} did not start: {line!r}")

    @property
    def pid(self) -> int:
        return self.p.pid

    def round(self, text: str = "go") -> str:
        self.p.stdin.write(text + "\n")  # type: ignore[union-attr]
        self.p.stdin.flush()  # type: ignore[union-attr]
        return self.p.stdout.readline().strip()  # type: ignore[union-attr]

    def close(self) -> None:
        if self.p.poll() is None:
            try:
                self.p.stdin.close()  # type: ignore[union-attr]
                self.p.wait(timeout=5)
            except (subprocess.TimeoutExpired, BrokenPipeError):
                self.p.kill()
                self.p.wait()

    def __enter__(self) -> Proc:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def py_workload(rounds: int = 100, gcs: int = 3) -> Proc:
    return Proc([PYTHON, str(WORKLOAD), str(rounds), str(gcs)])


def line_semaphore_on(obj: object, pid: int) -> object:
    """Count CPython's `line` semaphore up in ``pid`` for as long as the returned link
    lives, without trapping any line (pycalls' way: see plugins/pycalls.py)."""
    from coreframe_plugins.pycalls import resolve_target

    from coreframe.links import attach_uprobe

    t = resolve_target(pid, PYTHON)
    assert t.entry_off is not None and t.line_sema_off
    return attach_uprobe(obj.programs.semaphore_only, t.path, None, t.entry_off,  # type: ignore[attr-defined]
                         pid=pid, ref_ctr_offset=t.line_sema_off)


def semaphore(pid: int, binary_path: str, provider: str, name: str) -> int:
    """The 2-byte semaphore of a probe as it is in process ``pid``'s memory."""
    from coreframe import usdt

    binary = usdt.read_binary(binary_path)
    note = next(n for n in binary.notes if n.provider == provider and n.name == name)
    addr = note.sema_addr
    if binary.e_type == usdt.ET_DYN:
        off = binary.file_offset(addr)
        real = os.path.realpath(binary_path)
        with open(f"/proc/{pid}/maps") as f:
            for line in f:
                parts = line.split(None, 5)
                if len(parts) == 6 and parts[5].strip() == real:
                    lo, hi = (int(x, 16) for x in parts[0].split("-"))
                    foff = int(parts[2], 16)
                    if foff <= off < foff + hi - lo:
                        addr = lo + off - foff
                        break
            else:
                raise AssertionError(f"{real} semaphore not mapped in {pid}")
    with open(f"/proc/{pid}/mem", "rb") as f:
        f.seek(addr)
        return int.from_bytes(f.read(2), "little")


# ---- libbpf's USDT attach (the oracle) ---------------------------------------------------


class _UsdtOpts(ctypes.Structure):
    # struct bpf_usdt_opts (libbpf.h): sz, usdt_cookie
    _fields_ = [("sz", ctypes.c_size_t), ("usdt_cookie", ctypes.c_uint64)]


def libbpf_attach_usdt(obj: LibbpfObject, prog: str, pid: int, path: str, provider: str,
                       name: str, cookie: int = 0) -> None:
    lib = obj.lib
    fn = lib.bpf_program__attach_usdt
    fn.restype = ctypes.c_void_p
    fn.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_char_p,
                   ctypes.c_char_p, ctypes.POINTER(_UsdtOpts)]
    opts = _UsdtOpts(ctypes.sizeof(_UsdtOpts), cookie)
    link = fn(obj._prog(prog), pid, path.encode(), provider.encode(), name.encode(),
              ctypes.byref(opts))
    if not link:
        raise _errno_error(f"attach_usdt {provider}:{name}")
    obj.links.append(link)


def libbpf_records(setup: list[tuple[str, int, str, str, str, int]], targ_pid: int,
                   run: object) -> list[Rec]:
    """Load usdt_args.bpf.o with libbpf, attach each (prog, pid, path, provider, name,
    cookie), call ``run()``, return the records libbpf's ring buffer delivered."""
    with LibbpfObject(str(OBJ), rodata={"targ_pid": targ_pid},
                      disable=["py_entry_auto", "semaphore_only"]) as obj:
        for prog, pid, path, provider, name, cookie in setup:
            libbpf_attach_usdt(obj, prog, pid, path, provider, name, cookie)
        reader = RingReader(obj, "events")
        try:
            run()  # type: ignore[operator]
            while reader.poll(50) > 0:
                pass
            return [Rec.decode(r) for r in reader.records]
        finally:
            reader.close()


def coreframe_records(obj: object) -> list[Rec]:
    from coreframe.ringbuf import RingBuffer

    out: list[Rec] = []
    rb = RingBuffer(obj.maps.events, lambda d: out.append(Rec.decode(bytes(d))))  # type: ignore[attr-defined]
    try:
        while rb.poll(0.05) > 0:
            pass
    finally:
        rb.close()
    return out


# ---- bpftrace (the counting oracle) -----------------------------------------------------------


class Bpftrace:
    """bpftrace running a script until closed; ``maps`` holds its printed maps (JSON)."""

    def __init__(self, script: str, pid: int | None = None) -> None:
        exe = shutil.which("bpftrace")
        if exe is None:
            raise RuntimeError("bpftrace not installed")
        argv = [exe, "-f", "json"] + (["-p", str(pid)] if pid else []) + [
            "-e", 'BEGIN { printf("cf-attached\\n"); } ' + script]
        self.p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True)
        self.maps: dict[str, object] = {}
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = self.p.stdout.readline()  # type: ignore[union-attr]
            if not line:
                raise RuntimeError(f"bpftrace exited: {self.p.stderr.read()}")  # type: ignore[union-attr]
            if "cf-attached" in line:
                return
        raise RuntimeError("bpftrace did not attach")

    def close(self) -> dict[str, object]:
        # bpftrace 0.17 now and then sleeps through a SIGINT that arrives while it waits
        # in epoll; a later one ends it (it prints its maps on the way out)
        deadline = time.monotonic() + 300
        while True:
            self.p.send_signal(signal.SIGINT)
            try:
                out, _err = self.p.communicate(timeout=10)
                break
            except subprocess.TimeoutExpired:
                if time.monotonic() > deadline:
                    raise
        for line in out.splitlines():
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            if msg.get("type") == "map":
                self.maps.update(msg["data"])
        return self.maps

    def __enter__(self) -> Bpftrace:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()


def build_sdt_target(out_dir: Path) -> tuple[Path, Path]:
    """Compile tests/usdt/sdt_target.c (PIE) and sdt_lib.c (shared library)."""
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None or not Path("/usr/include/x86_64-linux-gnu/sys/sdt.h").exists() and not \
            Path("/usr/include/sys/sdt.h").exists():
        raise RuntimeError("needs a C compiler and <sys/sdt.h> (systemtap-sdt-dev)")
    lib = out_dir / "libcftest.so"
    exe = out_dir / "sdt_target"
    subprocess.run([cc, "-O2", "-fPIC", "-shared", "-o", str(lib), str(HERE / "sdt_lib.c")],
                   check=True)
    subprocess.run([cc, "-O2", "-fPIE", "-pie", "-o", str(exe), str(HERE / "sdt_target.c"),
                    f"-L{out_dir}", "-lcftest", f"-Wl,-rpath,{out_dir}"], check=True)
    return exe, lib


__all__ = ["LIBBPF", "Bpftrace", "Proc", "Rec", "build_sdt_target", "coreframe_records",
           "libbpf_records", "py_workload", "python_has_probes", "semaphore"]
