"""`btf dump --format c`: a vmlinux.h that compiles, lays structs out as the BTF
says, drives CO-RE in the real kernel, and matches bpftool's `format c` text.

bpftool (Debian's 7.1.0, built from Linux 6.1's libbpf) is the text oracle. It
predates libbpf's handling of odd-sized enums (libbpf commit e6e0e3fd, in every
libbpf release since 1.1.0 and so in bpftool 7.2+): it leaves out the
`__attribute__((mode(byte)))` / `mode(word)` that gives a one-byte or 8-byte
enum its size, so its header mis-sizes the structs holding such enums. That is
the one class of difference allowed below, checked line by line.
"""

from __future__ import annotations

import collections
import os
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from coreframe.btf import BTF, Kind, btf_from_path
from coreframe.btf.cdump import dump_c, dump_c_bytes
from coreframe.build import bpf_cflags
from coreframe.runtime.compat import zip_strict

VMLINUX = "/sys/kernel/btf/vmlinux"
REPO = Path(__file__).resolve().parents[2]
OBJECTS = sorted(
    str(p.relative_to(REPO))
    for d in ("plugins/objects", "tests/objects", "examples")
    for p in (REPO / d).glob("**/*.bpf.o")
    if "build" not in p.relative_to(REPO).parts
)

needs_bpftool = pytest.mark.skipif(shutil.which("bpftool") is None,
                                   reason="bpftool not installed (oracle for format c)")
needs_clang = pytest.mark.skipif(shutil.which("clang") is None, reason="clang not installed")
needs_vmlinux = pytest.mark.skipif(not os.path.exists(VMLINUX), reason="no kernel BTF")


def bpftool_c(path: str | os.PathLike[str]) -> bytes:
    return subprocess.run(["bpftool", "btf", "dump", "file", str(path), "format", "c"],
                          check=True, capture_output=True).stdout


def assert_same_as_bpftool(ours: bytes, theirs: bytes) -> collections.Counter[str]:
    """Equal line for line, except where coreframe knowingly writes more than bpftool
    7.1: `mode(byte)`/`mode(word)` closing an enum, `packed` closing a union whose size
    is no multiple of its alignment. Returns how many lines differ, by class."""
    a = ours.decode("utf-8", "surrogateescape").splitlines()
    b = theirs.decode("utf-8", "surrogateescape").splitlines()
    assert len(a) == len(b), (len(a), len(b))
    classes: collections.Counter[str] = collections.Counter()
    opened: list[str] = []  # the keyword of each block still open
    for i, (x, y) in enumerate(zip_strict(a, b)):
        if y.endswith("{"):
            opened.append(y.strip().split(" ", 1)[0])
        elif y.lstrip().startswith("}") and opened:
            block = opened.pop()
            if x != y:
                extra = x[len(y) - 1:] if x.startswith(y[:-1]) else x
                cls = {("enum", " __attribute__((mode(byte)));"): "mode(byte)",
                       ("enum", " __attribute__((mode(word)));"): "mode(word)",
                       ("union", " __attribute__((packed));"): "packed union"}.get(
                    (block, extra))
                assert cls is not None and x == y[:-1] + extra, \
                    f"line {i + 1}: {x!r} != {y!r}"
                classes[cls] += 1
                continue
        assert x == y, f"line {i + 1}: {x!r} != {y!r}"
    return classes


def layout_asserts(btf: BTF) -> str:
    """`_Static_assert`s of the size and member offsets of every struct/union whose
    tag is unique (a duplicate is renamed NAME___2) and holds no va_list (its size is
    the compiler's, not the kernel's)."""
    tags = collections.Counter(
        btf.name_of(t) for t in range(1, len(btf))
        if btf.kind_of(t) in (Kind.STRUCT, Kind.UNION, Kind.ENUM, Kind.ENUM64) and btf.name_of(t))
    va_memo: dict[int, bool] = {}

    def has_va_list(tid: int, depth: int = 0) -> bool:
        if tid in va_memo or depth > 64:
            return va_memo.get(tid, False)
        va_memo[tid] = False
        k = btf.kind_of(tid)
        hit = False
        if k == Kind.TYPEDEF:
            hit = "va_list" in btf.name_of(tid) or has_va_list(btf.raw(tid)[2], depth + 1)
        elif k in (Kind.CONST, Kind.VOLATILE, Kind.RESTRICT, Kind.TYPE_TAG):
            hit = has_va_list(btf.raw(tid)[2], depth + 1)
        elif k == Kind.ARRAY:
            hit = has_va_list(btf[tid].elem_type, depth + 1)  # type: ignore[attr-defined]
        elif k in (Kind.STRUCT, Kind.UNION):
            hit = any(has_va_list(m.type, depth + 1)
                      for m in btf[tid].members)  # type: ignore[attr-defined]
        va_memo[tid] = hit
        return hit

    out = []
    for tid in range(1, len(btf)):
        if btf.kind_of(tid) not in (Kind.STRUCT, Kind.UNION):
            continue
        t = btf[tid]
        if not t.name or tags[t.name] > 1 or has_va_list(tid):
            continue
        tag = f"{'struct' if t.kind == Kind.STRUCT else 'union'} {t.name}"
        out.append(f'_Static_assert(sizeof({tag}) == {t.size}, "{tag}");')  # type: ignore[attr-defined]
        for m in t.members:  # type: ignore[attr-defined]
            if m.name and not m.bitfield_size and m.bit_offset % 8 == 0:
                out.append(f"_Static_assert(__builtin_offsetof({tag}, {m.name}) == "
                           f'{m.bit_offset // 8}, "{tag}.{m.name}");')
    return "\n".join(out) + "\n"


def compile_header(tmp_path: Path, header: bytes, btf: BTF, extra: str = "") -> None:
    """The header compiles for -target bpf and every struct has the BTF's layout."""
    (tmp_path / "vmlinux.h").write_bytes(header)
    src = tmp_path / "layout.c"
    src.write_text('#include "vmlinux.h"\n' + extra + layout_asserts(btf))
    proc = subprocess.run(["clang", *bpf_cflags(), "-fsyntax-only", "-ferror-limit=0",
                           "-I", str(tmp_path), str(src)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-4000:]


# -- the running kernel -------------------------------------------------------------------


@pytest.fixture(scope="module")
def vmlinux_h() -> tuple[BTF, bytes]:
    if not os.path.exists(VMLINUX):
        pytest.skip("no kernel BTF")
    btf = BTF.from_file(VMLINUX)
    return btf, dump_c_bytes(btf)


@needs_bpftool
def test_vmlinux_matches_bpftool(vmlinux_h: tuple[BTF, bytes]) -> None:
    btf, ours = vmlinux_h
    differing = assert_same_as_bpftool(ours, bpftool_c(VMLINUX))
    # at most: every one-byte enum (an anonymous one is written where it is used)
    one_byte = [t for t in btf.ids_of_kinds(Kind.ENUM, Kind.ENUM64)
                if btf.raw(t)[2] == 1 and btf.raw(t)[1] & 0xFFFF]
    assert set(differing) <= {"mode(byte)", "packed union"}
    assert 0 < differing["mode(byte)"] <= len(one_byte)


@needs_clang
def test_vmlinux_header_compiles_with_exact_layouts(vmlinux_h: tuple[BTF, bytes],
                                                     tmp_path: Path) -> None:
    btf, ours = vmlinux_h
    compile_header(tmp_path, ours, btf)


@needs_clang
def test_execsnoop_builds_against_generated_header(vmlinux_h: tuple[BTF, bytes],
                                                   tmp_path: Path) -> None:
    """A real tool's source (task_struct fields through BPF_CORE_READ) builds against
    the generated header in place of the committed one."""
    _, ours = vmlinux_h
    (tmp_path / "vmlinux.h").write_bytes(ours)
    proc = subprocess.run(
        ["clang", *bpf_cflags(), "-I", str(tmp_path), "-I", str(REPO / "bpf"),
         "-c", str(REPO / "bpf" / "execsnoop.bpf.c"), "-o", str(tmp_path / "execsnoop.bpf.o")],
        capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert btf_from_path(str(tmp_path / "execsnoop.bpf.o")).find("task_struct", Kind.STRUCT)


CORE_PROG = r"""
#include "vmlinux.h"
#define SEC(name) __attribute__((section(name), used))
#define __uint(name, val) int (*name)[val]
#define __type(name, val) typeof(val) *name
static void *(*bpf_get_current_task)(void) = (void *)35;
static long (*bpf_probe_read_kernel)(void *dst, __u32 size, const void *src) = (void *)113;
static long (*bpf_map_update_elem)(void *map, const void *key, const void *value,
                                   __u64 flags) = (void *)2;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, int);
	__type(value, int);
} parent_of SEC(".maps");

/* every field access is a CO-RE relocation: vmlinux.h marks records
 * preserve_access_index */
SEC("tp/sched/sched_process_exec")
int on_exec(struct trace_event_raw_sched_process_exec *ctx)
{
	struct task_struct *task = bpf_get_current_task();
	struct task_struct *parent = 0;
	int tgid = 0, ptgid = 0;

	bpf_probe_read_kernel(&tgid, sizeof(tgid), &task->tgid);
	bpf_probe_read_kernel(&parent, sizeof(parent), &task->real_parent);
	bpf_probe_read_kernel(&ptgid, sizeof(ptgid), &parent->tgid);
	bpf_map_update_elem(&parent_of, &tgid, &ptgid, 0);
	return 0;
}
char LICENSE[] SEC("license") = "GPL";
"""


@needs_clang
def test_core_program_on_generated_header_sees_exec(vmlinux_h: tuple[BTF, bytes],
                                                     tmp_path: Path) -> None:
    """A vmlinux.h-only program reading task_struct through CO-RE: loaded and attached
    in this kernel, it reports the exec'ing child's pid with this process as parent."""
    if os.geteuid() != 0:
        pytest.skip("needs root to load BPF programs")
    import coreframe

    _, ours = vmlinux_h
    (tmp_path / "vmlinux.h").write_bytes(ours)
    (tmp_path / "core.bpf.c").write_text(CORE_PROG)
    obj_path = tmp_path / "core.bpf.o"
    subprocess.run(["clang", *bpf_cflags(), "-I", str(tmp_path), "-c", str(tmp_path / "core.bpf.c"),
                    "-o", str(obj_path)], check=True, capture_output=True)
    ext = coreframe.open(str(obj_path)).btf_ext
    assert ext is not None and sum(map(len, ext.core_relos.values())) >= 2
    with coreframe.open(str(obj_path)).load() as obj:
        obj.attach()
        child = subprocess.Popen(["/bin/true"])
        child.wait()
        value = obj.maps["parent_of"].lookup(struct.pack("<i", child.pid))
    assert value is not None, "no exec seen for the child"
    if isinstance(value, (bytes, bytearray)):
        value = int.from_bytes(value[:4], "little")
    assert int(value) == os.getpid()


# -- other kernels: the Debian kernels `make test-kernels` boots, as ELF files with .BTF ------

KERNEL_CACHE = Path(os.environ.get("CF_KERNEL_CACHE", "/var/cache/coreframe-kernels"))
OTHER_KERNELS = sorted(KERNEL_CACHE.glob("*/vmlinux"))


@needs_bpftool
@needs_clang
@pytest.mark.parametrize("vmlinux", OTHER_KERNELS or [None],
                         ids=[p.parent.name for p in OTHER_KERNELS] or ["none"])
def test_other_kernel_elf_matches_bpftool_and_compiles(vmlinux: Path | None,
                                                        tmp_path: Path) -> None:
    if vmlinux is None:
        pytest.skip(f"no kernels fetched under {KERNEL_CACHE} (make test-kernels fetches them)")
    btf = btf_from_path(str(vmlinux))
    ours = dump_c_bytes(btf)
    differing = assert_same_as_bpftool(ours, bpftool_c(vmlinux))
    # mode(word): 5.10's BTF predates ENUM64 and gives 64-bit enums kind ENUM, size 8;
    # bpftool 7.1 leaves a 4-byte enum there (the layout asserts below catch that)
    assert set(differing) <= {"mode(byte)", "mode(word)", "packed union"}
    if "mode(word)" in differing:
        assert not btf.ids_of_kinds(Kind.ENUM64)
        assert any(btf.kind_of(t) == Kind.ENUM and btf.size_of(t) == 8
                   for t in range(1, len(btf)))
    compile_header(tmp_path, ours, btf)


# -- objects ---------------------------------------------------------------------------------


@needs_bpftool
@pytest.mark.parametrize("rel", OBJECTS or ["<none>"])
def test_repo_object_matches_bpftool(rel: str) -> None:
    if rel == "<none>":
        pytest.skip("no compiled objects in the repository")
    path = REPO / rel
    assert not assert_same_as_bpftool(dump_c_bytes(btf_from_path(str(path))), bpftool_c(path))


# Declarations meant to hit every rule of the dumper: pointer cycles needing forward
# declarations, anonymous structs inline (also through a pointer), packed and padded
# layouts (a packed union too), bitfields with holes, one-byte and 8-byte enums,
# duplicate tags, function pointers of every shape, a typedef needed before its target
# is complete.
TRICKY_C = r"""
#define SEC(x) __attribute__((section(x), used))
typedef unsigned char u8;
typedef unsigned long long u64;
struct node;
typedef struct node node_t;
struct node { node_t *next; struct node *prev; int v; };
struct a; struct b;
struct a { struct b *b; int x; };
struct b { struct a *a; struct a embedded; };
struct holder { struct { struct a inner; int y; } *anon_ptr; };
struct __attribute__((packed)) packed { char c; int i; long long l; };
struct __attribute__((packed)) packed_tail { int i; char c; };
struct holes { char c; long long l; char d; int e __attribute__((aligned(16))); };
struct bits { unsigned a:3; unsigned :0; unsigned b:5; u64 c:40; char d; int e:7; };
struct aligned_end { char c; } __attribute__((aligned(8)));
union un { int i; struct { short lo, hi; }; char bytes[4]; struct bits b; };
union __attribute__((packed)) pu { char c[5]; int i; };
struct __attribute__((packed)) holds_pu { char tag; union pu u; };
enum __attribute__((packed)) small { S0, S1 = 200 };
enum big { B0, B1 = 0x1ffffffffULL };
enum neg { N0 = -3, N1 = 5 };
enum { TOP_LEVEL_A = 1, TOP_LEVEL_B = 2 };
struct dup { int x; };
struct empty {};
typedef int (*cb_t)(void *, ...);
typedef void fn_t(int);
typedef const volatile int *const volatile cvp_t;
struct funcs {
	cb_t cb;
	fn_t *fp;
	void (*noargs)(void);
	char *(*ret_ptr)(int);
	int (*(*ret_arr)(int))[4];
	int (*arr_of_fp[3])(int);
	int (*ptr_to_arr)[4];
	int *arr_of_ptr[4];
	int m[2][3];
	const char *const *argv;
	char *restrict rp;
	volatile int *volatile vp;
	cvp_t cvp;
	enum small s;
	enum big bg;
	enum neg ng;
	enum { INLINE_A, INLINE_B } inl;
	struct empty e;
	u8 tail;
};
struct all {
	struct node n; struct b b; struct holder h; struct packed p; struct packed_tail pt;
	struct holes ho; struct bits bi; struct aligned_end ae; union un u; struct funcs f;
	struct dup d; struct holds_pu hp;
};
struct all g_all SEC(".data");
int top_level SEC(".data") = TOP_LEVEL_A;
"""
TRICKY_C2 = r"""
#define SEC(x) __attribute__((section(x), used))
struct dup { long long y; char z; };
struct dup g_dup2 SEC(".data");
"""


@pytest.fixture(scope="module")
def tricky_obj(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The TRICKY_C object, linked with a second unit that has another `struct dup`."""
    if shutil.which("clang") is None or shutil.which("bpftool") is None:
        pytest.skip("clang and bpftool are needed")
    d = tmp_path_factory.mktemp("cdump_tricky")
    objs = []
    for i, text in enumerate((TRICKY_C, TRICKY_C2)):
        (d / f"u{i}.c").write_text(text)
        subprocess.run(["clang", *bpf_cflags(), "-c", str(d / f"u{i}.c"), "-o", str(d / f"u{i}.o")],
                       check=True, capture_output=True)
        objs.append(str(d / f"u{i}.o"))
    out = d / "tricky.bpf.o"
    subprocess.run(["bpftool", "gen", "object", str(out), *objs], check=True,
                   capture_output=True)
    return out


def test_tricky_object_matches_bpftool(tricky_obj: Path) -> None:
    ours = dump_c_bytes(btf_from_path(str(tricky_obj)))
    differing = assert_same_as_bpftool(ours, bpftool_c(tricky_obj))
    # enum small, enum big, union pu (libbpf checks only structs for packing)
    assert differing == {"mode(byte)": 1, "mode(word)": 1, "packed union": 1}
    text = ours.decode()
    for needle in ("struct dup___2 {", "} __attribute__((packed));", "enum small {",
                   "} __attribute__((mode(byte)));", "} __attribute__((mode(word)));",
                   "typedef struct node node_t;", "int (* (*ret_arr)(int))[4];",
                   "char * (*ret_ptr)(int);", "const char * const *argv;",
                   "struct empty {};", "\tenum {\n\t\tINLINE_A = 0,"):
        assert needle in text, needle


def test_tricky_object_compiles_with_exact_layouts(tricky_obj: Path, tmp_path: Path) -> None:
    btf = btf_from_path(str(tricky_obj))
    compile_header(tmp_path, dump_c_bytes(btf), btf)


# -- synthetic BTF: the kinds clang 14 does not emit -----------------------------------------


def synthetic(raw_btf: type) -> bytes:
    b = raw_btf()
    i32 = b.int_("int", 4, signed=True)
    u64 = b.int_("long unsigned int", 8)
    u8 = b.int_("unsigned char", 1)
    b.add(6, "sign", 4, vlen=3, kflag=1,
          extra=struct.pack("<IiIiIi", b.s("NEG"), -5, b.s("ZERO"), 0, b.s("POS"), 7))
    b.add(6, "usign", 4, vlen=1, extra=struct.pack("<II", b.s("BIG"), 0xFFFFFFFF))
    wide = b.add(19, "wide", 8, vlen=2, extra=struct.pack(
        "<IIIIII", b.s("W1"), 0xFFFFFFFF, 0xFFFFFFFF, b.s("W2"), 0, 1))
    swide = b.add(19, "swide", 8, vlen=2, kflag=1, extra=struct.pack(
        "<IIIIII", b.s("S1"), 0xFFFFFFFE, 0xFFFFFFFF, b.s("S2"), 5, 0))
    narrow64 = b.add(19, "narrow64", 8, vlen=1, extra=struct.pack("<III", b.s("NW"), 3, 0))
    b.add(6, "fwd_enum", 4)  # an enum without values: a forward declaration
    flt = b.add(16, "float", 4)
    rcu = b.add(18, "rcu", i32)
    ptr_rcu = b.add(2, "", rcu)
    fwd_u = b.add(7, "fu", 0, kflag=1)
    fwd_s = b.add(7, "fs", 0)
    ptr_fu = b.add(2, "", fwd_u)
    ptr_fs = b.add(2, "", fwd_s)
    poly = b.int_("__Poly8_t", 1)
    va = b.add(8, "__builtin_va_list", b.add(2, "", 0))
    gnuc = b.add(8, "__gnuc_va_list", 0)
    members = [("lo", i32, (4 << 24) | 0), ("hi", u64, (20 << 24) | 4), ("w", wide, 64),
               ("sw", swide, 128), ("n64", narrow64, 192), ("f", flt, 256),
               ("r", ptr_rcu, 320), ("u", ptr_fu, 384), ("s", ptr_fs, 448), ("p", poly, 512),
               ("c", u8, 520), ("va", b.add(2, "", va), 576), ("g", b.add(2, "", gnuc), 640)]
    b.add(4, "kinds", 88, vlen=len(members), kflag=1, extra=b"".join(
        struct.pack("<III", b.s(n), t, o) for n, t, o in members))
    proto = b.add(13, "", i32, vlen=2, extra=struct.pack("<IIII", b.s("a"), i32, 0, 0))
    b.add(12, "func", proto, vlen=1)
    var = b.add(14, "var", i32, extra=struct.pack("<I", 1))
    b.add(17, "tag", i32, extra=struct.pack("<i", -1))
    b.add(15, ".data", 4, vlen=1, extra=struct.pack("<III", var, 0, 4))
    return b.blob()


def test_synthetic_kinds_match_bpftool(raw_btf: type, tmp_path: Path) -> None:
    if shutil.which("bpftool") is None:
        pytest.skip("bpftool not installed")
    path = tmp_path / "synthetic.btf"
    path.write_bytes(synthetic(raw_btf))
    text = dump_c(BTF.from_file(str(path)))
    # narrow64 and swide (values -2 and 5) need mode(word); wide has a value past 32 bits
    assert assert_same_as_bpftool(text.encode(), bpftool_c(path)) == {"mode(word)": 2}
    for needle in ("NEG = -5,", "BIG = 4294967295,", "W1 = 18446744073709551615ULL,",
                   "S2 = 5LL,\n} __attribute__((mode(word)));",
                   "NW = 3ULL,\n} __attribute__((mode(word)));",
                   "enum fwd_enum;", "union fu;", "struct fs;",
                   "typedef unsigned char __Poly8_t;",
                   "typedef __builtin_va_list __gnuc_va_list;", "__builtin_va_list *va;",
                   'int __attribute__((btf_type_tag("rcu"))) *r;', "int lo: 4;",
                   "long unsigned int hi: 20;", "float f;"):
        assert needle in text, needle
    assert "typedef void *__builtin_va_list" not in text  # the compiler's own


def test_synthetic_kinds_compile(raw_btf: type, tmp_path: Path) -> None:
    if shutil.which("clang") is None:
        pytest.skip("clang not installed")
    btf = BTF.from_bytes(synthetic(raw_btf))
    (tmp_path / "vmlinux.h").write_text(dump_c(btf))
    src = tmp_path / "use.c"
    src.write_text('#include "vmlinux.h"\nstruct kinds k;\nint f(void) { return k.lo; }\n'
                   "_Static_assert(sizeof(enum swide) == 8, \"\");\n"
                   "_Static_assert(sizeof(enum narrow64) == 8, \"\");\n")
    proc = subprocess.run(["clang", *bpf_cflags(), "-c", str(src), "-o", str(tmp_path / "u.o"),
                           "-I", str(tmp_path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_type_tag_with_kind_flag_is_an_attribute(raw_btf: type) -> None:
    """A TYPE_TAG with kind_flag names an attribute of its own (libbpf since 2025)."""
    b = raw_btf()
    i32 = b.int_("int", 4, signed=True)
    tag = b.add(18, "address_space(1)", i32, kflag=1)
    b.add(4, "s", 8, vlen=1, extra=struct.pack("<III", b.s("p"), b.add(2, "", tag), 0))
    assert "\tint __attribute__((address_space(1))) *p;\n" in dump_c(BTF.from_bytes(b.blob()))


def test_unsatisfiable_cycle_is_one_error(raw_btf: type) -> None:
    """Two structs containing each other by value cannot be written in C."""
    from coreframe.errors import ObjectError

    b = raw_btf()
    b.add(4, "x", 4, vlen=1, extra=struct.pack("<III", b.s("y"), 2, 0))
    b.add(4, "y", 4, vlen=1, extra=struct.pack("<III", b.s("x"), 1, 0))
    with pytest.raises(ObjectError, match="cycle"):
        dump_c(BTF.from_bytes(b.blob()))
