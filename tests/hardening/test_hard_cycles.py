"""Cyclic and self-referencing BTF type graphs: every walker terminates with ObjectError.

clang never emits these, a hostile object can: typedef and modifier loops, a
struct containing itself by value, mutually containing structs, an array of
itself, a pointer to itself (legal), a function prototype returning itself.
"""

from __future__ import annotations

import struct
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from coreframe.btf.types import BTF, Kind
from coreframe.errors import ObjectError, RelocationError

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "fuzz"))

import fuzztargets as targets  # noqa: E402


class _Blob:
    """Just enough of a raw BTF writer: ids are assigned in call order from 1."""

    def __init__(self) -> None:
        self.strings = bytearray(b"\0")
        self.types: list[bytes] = []

    def s(self, text: str) -> int:
        off = len(self.strings)
        self.strings += text.encode() + b"\0"
        return off

    def add(self, kind: Kind, name: str, size_or_type: int, extra: bytes = b"",
            vlen: int = 0) -> int:
        self.types.append(struct.pack("<III", self.s(name) if name else 0,
                                      (kind << 24) | vlen, size_or_type) + extra)
        return len(self.types)

    def member(self, name: str, type_id: int, bit_off: int = 0) -> bytes:
        return struct.pack("<III", self.s(name), type_id, bit_off)

    def blob(self) -> bytes:
        types = b"".join(self.types)
        return struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, len(types), len(types),
                           len(self.strings)) + types + bytes(self.strings)


def _cyclic() -> tuple[bytes, dict[str, int]]:
    b = _Blob()
    ids: dict[str, int] = {}
    ids["int"] = b.add(Kind.INT, "int", 4, struct.pack("<I", (1 << 24) | 32))
    ids["td_a"] = b.add(Kind.TYPEDEF, "td_a", 3)           # 2 -> 3
    ids["td_b"] = b.add(Kind.TYPEDEF, "td_b", 2)           # 3 -> 2
    ids["const_self"] = b.add(Kind.CONST, "", 4)           # 4 -> 4
    ids["vol_const"] = b.add(Kind.VOLATILE, "", 6)         # 5 -> 6
    ids["const_vol"] = b.add(Kind.CONST, "", 5)            # 6 -> 5
    ids["self_struct"] = b.add(Kind.STRUCT, "self_struct", 8,
                               b.member("me", 7) + b.member("x", 1, 32), vlen=2)
    ids["mut_a"] = b.add(Kind.STRUCT, "mut_a", 4, b.member("b", 9), vlen=1)
    ids["mut_b"] = b.add(Kind.STRUCT, "mut_b", 4, b.member("a", 8), vlen=1)
    ids["arr_self"] = b.add(Kind.ARRAY, "", 0, struct.pack("<III", 10, 1, 4))
    ids["ptr_self"] = b.add(Kind.PTR, "", 11)
    ids["proto_self"] = b.add(Kind.FUNC_PROTO, "", 12, struct.pack("<II", 0, 12), vlen=1)
    ids["func"] = b.add(Kind.FUNC, "func", 12)
    ids["union_td"] = b.add(Kind.UNION, "union_td", 4, b.member("t", 2), vlen=1)
    ids["var"] = b.add(Kind.VAR, "var", 7, struct.pack("<I", 1))
    ids["sec"] = b.add(Kind.DATASEC, ".data", 8, struct.pack("<III", 15, 0, 8), vlen=1)
    return b.blob(), ids


@pytest.fixture(scope="module")
def cyclic() -> tuple[BTF, dict[str, int]]:
    blob, ids = _cyclic()
    return BTF.from_bytes(blob), ids


def _only_object_errors(fn: Callable[[], Any]) -> None:
    try:
        fn()
    except ObjectError:
        pass


QUERIES = ["getitem", "resolve", "resolve_keep_typedef", "size_of", "name_of", "c_type_name"]


@pytest.mark.parametrize("query", QUERIES)
def test_queries_terminate(cyclic: tuple[BTF, dict[str, int]], query: str) -> None:
    btf, _ = cyclic
    call = {
        "getitem": btf.__getitem__, "resolve": btf.resolve,
        "resolve_keep_typedef": lambda t: btf.resolve(t, strip_typedef=False),
        "size_of": btf.size_of, "name_of": btf.name_of, "c_type_name": btf.c_type_name,
    }[query]
    for tid in range(len(btf)):
        _only_object_errors(lambda t=tid: call(t))


def test_loops_are_named(cyclic: tuple[BTF, dict[str, int]]) -> None:
    btf, ids = cyclic
    for name in ("td_a", "const_self", "vol_const"):
        with pytest.raises(ObjectError, match="loop"):
            btf.resolve(ids[name])
    assert btf.resolve(ids["ptr_self"]) == ids["ptr_self"]  # a pointer to itself is legal


def test_dumps_and_ctypes_terminate(cyclic: tuple[BTF, dict[str, int]]) -> None:
    from coreframe.btf.cdump import dump_c
    from coreframe.btf.ctypegen import ctype
    from coreframe.btf.dump import dump_json, dump_raw

    btf, _ = cyclic
    _only_object_errors(lambda: dump_raw(btf))
    _only_object_errors(lambda: dump_json(btf))
    with pytest.raises(ObjectError, match="loop|cycle"):
        dump_c(btf)
    for tid in range(1, len(btf)):
        _only_object_errors(lambda t=tid: ctype(btf, t))


def test_core_relocation_over_cycles_terminates(cyclic: tuple[BTF, dict[str, int]]) -> None:
    from coreframe.btf.core import CoreRelocator
    from coreframe.btf.ext import CoreRelo

    btf, _ = cyclic
    for target in (btf, BTF.from_bytes(_cyclic()[0])):
        relocator = CoreRelocator(btf, target)
        for tid in range(1, len(btf)):
            for kind, access in ((0, "0:0"), (0, "0:0:0:0"), (1, "0:1"), (2, "0"), (6, "0"),
                                 (8, "0"), (9, "0"), (12, "0")):
                try:
                    relocator.resolve(CoreRelo(0, tid, access, kind))
                except (ObjectError, RelocationError):
                    pass


def test_fuzz_targets_accept_cyclic_blob() -> None:
    blob, _ = _cyclic()
    targets.run_btf(blob)
    targets.run_core_btf(blob)


def _anon_clash() -> bytes:
    """struct S { union { struct {u8 cpu, blocked;}; struct {u16 x; u16;}; }; }.

    The unnamed u16 gets the placeholder name of the union's second anonymous
    member; promoting it out of both anonymous levels used to crash CPython's
    ctypes with SIGSEGV.
    """
    b = _Blob()
    u8 = b.add(Kind.INT, "u8", 1, struct.pack("<I", 8))
    u16 = b.add(Kind.INT, "u16", 2, struct.pack("<I", 16))
    a = b.add(Kind.STRUCT, "", 2, b.member("cpu", u8) + b.member("blocked", u8, 8), vlen=2)
    c = b.add(Kind.STRUCT, "", 4, b.member("x", u16) + b.member("", u16, 16), vlen=2)
    u = b.add(Kind.UNION, "", 4, b.member("", a) + b.member("", c), vlen=2)
    b.add(Kind.STRUCT, "s", 4, b.member("", u), vlen=1)
    return b.blob()


def test_anonymous_name_clash_does_not_crash_ctypes(tmp_path: Path) -> None:
    """Run in a child: a regression would kill the interpreter, not fail an assert."""
    import subprocess

    blob = tmp_path / "clash.btf"
    blob.write_bytes(_anon_clash())
    code = (
        "import sys\n"
        "from coreframe.btf.types import BTF\n"
        "from coreframe.btf.ctypegen import ctype_by_name\n"
        f"S = ctype_by_name(BTF.from_file({str(blob)!r}), 'struct s')\n"
        "v = S.from_buffer_copy(bytes([1, 2, 3, 4]))\n"
        "print(v.cpu, v.blocked, v.x)\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["1", "2", str(0x0201)]
