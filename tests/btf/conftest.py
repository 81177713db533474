"""Shared fixtures for the BTF tests: a compiled all-kinds object and a raw BTF builder."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from coreframe.build import compile_bpf

VMLINUX = "/sys/kernel/btf/vmlinux"
REPO = Path(__file__).resolve().parents[2]

ALLKINDS_C = r"""
typedef unsigned long long u64;
#define SEC(x) __attribute__((section(x), used))
#define __tag(x) __attribute__((btf_decl_tag(x)))
#define __ttag(x) __attribute__((btf_type_tag(x)))
enum small { A = -1, B = 2 };
enum big { C = 0xffffffffffULL, D = 1 };
struct bits { unsigned int a:3; int b:5; u64 c:40; char d; } __tag("bitsy");
union u { int x; float f; struct { short lo, hi; }; };
struct fwd_only;
union fwd_union;
struct event {
	volatile int v;
	const char *restrict cp;
	int __ttag("user") *tp;
	struct fwd_only *fo;
	union fwd_union *fu;
	double dbl;
	_Bool flag;
	char comm[16];
	int matrix[2][3];
	struct bits bf;
	union u un;
	enum small es;
	enum big eb;
	void (*cb)(int, char *);
	int member_tagged __tag("mt");
	unsigned __int128 big128;
	unsigned long long pid_tgid;
};
struct event global_ev SEC(".data");
int (*vararg_ptr)(int, ...) SEC(".data");
int counter = 0;
const volatile int ro_cfg = 7;
static int static_var __attribute__((used));
extern int ext_var __attribute__((weak));
static __attribute__((noinline)) int helper(int x __tag("param")) __tag("fn")
{ return x + counter + static_var; }
__attribute__((noinline)) int global_fn(struct event *p) { return p->v; }
SEC("tp/syscalls/sys_enter_openat") int prog(void *ctx)
{ return helper(ro_cfg) + global_ev.v + global_fn(&global_ev) + (&ext_var ? 1 : 0); }
char LICENSE[] SEC("license") = "GPL";
"""


def have_bpftool() -> bool:
    return shutil.which("bpftool") is not None


def bpftool_raw(path: str | os.PathLike[str]) -> str:
    """bpftool's raw dump of a file (the oracle for dump_raw)."""
    return subprocess.run(
        ["bpftool", "btf", "dump", "file", str(path), "format", "raw"],
        check=True, capture_output=True, text=True,
    ).stdout


@pytest.fixture(scope="session")
def allkinds_obj(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An object compiled from ALLKINDS_C with clang -g -O2 -target bpf."""
    if shutil.which("clang") is None:
        pytest.skip("clang not installed")
    d = tmp_path_factory.mktemp("btf_allkinds")
    src = d / "allkinds.bpf.c"
    src.write_text(ALLKINDS_C)
    obj = d / "allkinds.bpf.o"
    compile_bpf(src, obj)
    return obj


@pytest.fixture
def btf_cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private, empty index cache dir and a fresh vmlinux() memo."""
    from coreframe.btf import kernel

    d = tmp_path / "cache"
    monkeypatch.setenv("COREFRAME_CACHE_DIR", str(d))
    kernel.vmlinux.cache_clear()
    kernel.module_btf.cache_clear()
    yield d
    kernel.vmlinux.cache_clear()
    kernel.module_btf.cache_clear()


class RawBTF:
    """Builds raw BTF blobs type by type, for kinds clang 14 cannot emit."""

    def __init__(self, str_base: int = 0, first_id: int = 1) -> None:
        self.strings = bytearray(b"" if str_base else b"\0")
        self.str_base = str_base
        self.offsets: dict[str, int] = {} if str_base else {"": 0}
        self.types: list[bytes] = []
        self.first_id = first_id

    def s(self, text: str) -> int:
        if text not in self.offsets:
            self.offsets[text] = self.str_base + len(self.strings)
            self.strings += text.encode() + b"\0"
        return self.offsets[text]

    def add(self, kind: int, name: str, size_or_type: int, vlen: int = 0, kflag: int = 0,
            extra: bytes = b"") -> int:
        info = (kflag << 31) | (kind << 24) | vlen
        self.types.append(struct.pack("<III", self.s(name), info, size_or_type) + extra)
        return self.first_id + len(self.types) - 1

    def int_(self, name: str, size: int, signed: bool = False, bits: int | None = None) -> int:
        data = (int(signed) << 24) | (bits if bits is not None else 8 * size)
        return self.add(1, name, size, extra=struct.pack("<I", data))

    def blob(self) -> bytes:
        types = b"".join(self.types)
        strings = bytes(self.strings)
        hdr = struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, len(types), len(types), len(strings))
        return hdr + types + strings


@pytest.fixture
def raw_btf() -> type[RawBTF]:
    """The RawBTF builder class (fixtures avoid importing conftest by name)."""
    return RawBTF


@pytest.fixture
def synthetic_blob() -> bytes:
    return synthetic_btf()


@pytest.fixture
def bpftool_dump() -> object:
    """bpftool_raw(path), skipping the test when bpftool is not installed."""
    if not have_bpftool():
        pytest.skip("bpftool not installed (oracle for raw dumps)")
    return bpftool_raw


def synthetic_btf() -> bytes:
    """A blob with the kinds and encodings clang 14 does not produce."""
    b = RawBTF()
    i32 = b.int_("int", 4, signed=True)
    u64 = b.int_("unsigned long", 8)
    b.add(6, "sign", 4, vlen=3, kflag=1,
          extra=struct.pack("<IiIiIi", b.s("NEG"), -5, b.s("ZERO"), 0, b.s("POS"), 7))
    b.add(6, "usign", 4, vlen=1, extra=struct.pack("<II", b.s("BIG"), 0xFFFFFFFF))
    b.add(19, "wide", 8, vlen=2, extra=struct.pack(
        "<IIIIII", b.s("W1"), 0xFFFFFFFF, 0xFFFFFFFF, b.s("W2"), 0, 1))
    b.add(19, "swide", 8, vlen=2, kflag=1, extra=struct.pack(
        "<IIIIII", b.s("S1"), 0xFFFFFFFE, 0xFFFFFFFF, b.s("S2"), 5, 0))
    b.add(16, "float", 4)
    b.add(18, "rcu", i32)
    b.add(4, "kf", 8, vlen=2, kflag=1, extra=struct.pack(
        "<IIIIII", b.s("lo"), i32, (4 << 24) | 0, b.s("hi"), u64, (20 << 24) | 4))
    b.add(7, "fu", 0, kflag=1)
    b.add(12, "odd_linkage", 0, vlen=7)
    b.add(14, "odd_var", i32, extra=struct.pack("<I", 9))
    b.add(17, "tag", i32, extra=struct.pack("<i", -1))
    b.add(1, "weird", 4, extra=struct.pack("<I", (3 << 24) | (2 << 16) | 9))
    return b.blob()
