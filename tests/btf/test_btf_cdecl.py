"""C declarators from BTF: spelled as clang spells them, and as bpftool writes them.

The oracle for the clang spelling is clang itself: `-Xclang -ast-dump` prints each
declared variable's type the way clang's diagnostics do. The same declarations as
struct members are the oracle for the bpftool spelling (`btf dump --format c`).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from coreframe.btf import BTF, Kind, btf_from_path
from coreframe.btf.cdecl import BPFTOOL, CLANG, Declarator, TypeView
from coreframe.btf.cdump import dump_c_bytes
from coreframe.build import bpf_cflags, compile_bpf

# (declaration as written, clang's spelling of the declared type)
TABLE = [
    ("int *p1", "int *"),
    ("const int *p2", "const int *"),                      # pointer to const
    ("int *const p3", "int *const"),                       # const pointer
    ("const int *const p4", "const int *const"),
    ("const char *const *p5", "const char *const *"),
    ("volatile int *volatile p6", "volatile int *volatile"),
    ("const volatile struct exit_event *const volatile p7",
     "const volatile struct exit_event *const volatile"),  # issue #23, item 1
    ("int *restrict p8", "int *restrict"),
    ("int *a9[4]", "int *[4]"),                            # array of pointers
    ("int (*p10)[4]", "int (*)[4]"),                       # pointer to array
    ("int (*p11)(int, char *)", "int (*)(int, char *)"),   # function pointer
    ("char *(*p12)(int)", "char *(*)(int)"),               # ... returning a pointer
    ("void (*p13)(void)", "void (*)(void)"),
    ("int (*a14[3])(int)", "int (*[3])(int)"),             # array of function pointers
    ("int (*(*p15)(int))[4]", "int (*(*)(int))[4]"),       # ... returning pointer to array
    ("int (*p16)(int, ...)", "int (*)(int, ...)"),
    ("int m17[2][3]", "int[2][3]"),
    ("int (*p18)[2][3]", "int (*)[2][3]"),
    ("struct s *(*p19)[2]", "struct s *(*)[2]"),
    ("const char *a20[8]", "const char *[8]"),
    ("char *const *const volatile p21", "char *const *const volatile"),
    ("void *(*(*p22)(void))(int)", "void *(*(*)(void))(int)"),
    ("const volatile int v23", "const volatile int"),
    ("volatile const int v24", "const volatile int"),      # C's order, not the source's
    ("unsigned long long *const *volatile p25", "unsigned long long *const *volatile"),
    ("const cb_t p26", "const cb_t"),
    ("cb_t const *p27", "const cb_t *"),
    ("const int a28[2]", "const int[2]"),
    ("void (*(*p29)[2])(void)", "void (*(*)[2])(void)"),
    ("volatile struct s *const *restrict p30", "volatile struct s *const *restrict"),
]
PRELUDE = "struct exit_event { int x; };\nstruct s { int y; };\ntypedef int (*cb_t)(int);\n"


def _declared(decl: str) -> str:
    return re.findall(r"\b([apmv]\d+)\b", decl)[0]


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> tuple[BTF, dict[str, str]]:
    """The TABLE compiled to BTF, and clang's own spelling of each variable's type."""
    if shutil.which("clang") is None:
        pytest.skip("clang not installed")
    d = tmp_path_factory.mktemp("cdecl")
    src = d / "decls.c"
    src.write_text(PRELUDE + "".join(f"{decl};\n" for decl, _ in TABLE)
                   + "struct members {\n" + "".join(f"\t{decl};\n" for decl, _ in TABLE)
                   + "} members;\n")
    obj = d / "decls.o"
    compile_bpf(src, obj)
    ast = subprocess.run(["clang", *bpf_cflags(), "-Xclang", "-ast-dump", "-fsyntax-only",
                          "-fno-color-diagnostics", str(src)],
                         check=True, capture_output=True, text=True).stdout
    spelled = dict(re.findall(r"VarDecl .* (?:used )?(\w+) '([^']*)'", ast))
    return btf_from_path(str(obj)), spelled


@pytest.mark.parametrize(("decl", "spelling"), TABLE, ids=[_declared(d) for d, _ in TABLE])
def test_type_spelled_as_clang_does(compiled: tuple[BTF, dict[str, str]], decl: str,
                                    spelling: str) -> None:
    btf, clang_spelled = compiled
    name = _declared(decl)
    # clang 14 writes `int [4]` where newer clangs write `int[4]`; the table has the latter
    assert clang_spelled[name].replace(" [", "[") == spelling
    var = btf.find_one(name, Kind.VAR)
    assert btf.c_type_name(btf.raw(var)[2]) == spelling
    # declaring the variable by name gives back its declaration, in C's qualifier order
    expected = {"v24": "const volatile int v24", "p27": "const cb_t *p27"}.get(name, decl)
    assert btf.c_type_name(var) == expected


def test_bpftool_spelling_of_the_same_members(compiled: tuple[BTF, dict[str, str]],
                                              tmp_path: Path) -> None:
    """As members of a struct the declarations are written exactly as bpftool writes
    them (`char * const *`, qualifiers in BTF order), by the same printer."""
    if shutil.which("bpftool") is None:
        pytest.skip("bpftool not installed")
    btf, _ = compiled
    path = tmp_path / "decls.btf"
    path.write_bytes(btf.to_bytes())
    theirs = subprocess.run(["bpftool", "btf", "dump", "file", str(path), "format", "c"],
                            check=True, capture_output=True).stdout
    assert dump_c_bytes(btf) == theirs
    body = theirs.decode().split("struct members {\n", 1)[1].split("\n};", 1)[0]
    lines = [line.strip().rstrip(";") for line in body.splitlines()]
    st = btf[btf.find_one("members", Kind.STRUCT)]
    printer = Declarator(TypeView(btf), BPFTOOL)
    assert [printer.decl(m.type, m.name) for m in st.members] == lines  # type: ignore[attr-defined]
    assert "volatile const struct exit_event * volatile const p7" in lines


def test_spelling_is_valid_c_for_the_same_type(compiled: tuple[BTF, dict[str, str]],
                                               tmp_path: Path) -> None:
    """Each printed declaration, compiled, is the type the variable has."""
    btf, _ = compiled
    checks = []
    for decl, _ in TABLE:
        name = _declared(decl)
        printed = Declarator(TypeView(btf), CLANG).decl(btf.raw(btf.find_one(name, Kind.VAR))[2],
                                                         "copy_" + name)
        checks.append(f"{printed};\n_Static_assert(__builtin_types_compatible_p("
                      f"__typeof__({name}), __typeof__(copy_{name})), \"{name}\");\n")
    src = tmp_path / "check.c"
    src.write_text(PRELUDE + "".join(f"{d};\n" for d, _ in TABLE) + "".join(checks))
    proc = subprocess.run(["clang", *bpf_cflags(), "-fsyntax-only", str(src)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_anonymous_and_tagged_types_in_messages(raw_btf: type) -> None:
    """Outside a header an anonymous struct reads `struct {...}`; a type tag, which
    does not change the type, is left out."""
    import struct as st

    b = raw_btf()
    i32 = b.int_("int", 4, signed=True)
    anon = b.add(4, "", 4, vlen=1, extra=st.pack("<III", b.s("x"), i32, 0))
    ptr_anon = b.add(2, "", anon)
    ptr_tag = b.add(2, "", b.add(18, "user", i32))
    btf = BTF.from_bytes(b.blob())
    assert btf.c_type_name(anon) == "struct {...}"
    assert btf.c_type_name(ptr_anon) == "struct {...} *"
    assert btf.c_type_name(ptr_tag) == "int *"
