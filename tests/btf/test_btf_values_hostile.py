"""Typed values from hand-made BTF: names that are not safe Python attributes, members
outside their struct, types that contain themselves. Only ObjectErrors, never code."""

from __future__ import annotations

import struct
from typing import Any

import pytest

from coreframe.btf.types import BTF
from coreframe.btf.values import codec
from coreframe.errors import ObjectError

STRUCT, ARRAY = 4, 3


def _struct(b: Any, name: str, size: int, members: list[tuple[str, int, int]]) -> int:
    extra = b"".join(struct.pack("<III", b.s(n), t, off) for n, t, off in members)
    return b.add(STRUCT, name, size, vlen=len(members), extra=extra)


def test_hostile_field_names_become_safe_attributes(raw_btf: Any) -> None:
    b = raw_btf()
    u32 = b.int_("unsigned int", 4)
    names = ["tail", "from", "to_dict", "a; import os", "__class__", "_mk_fn", "x", "x"]
    sid = _struct(b, "evil name()", 4 * len(names),
                  [(n, u32, 32 * i) for i, n in enumerate(names)])
    btf = BTF.from_bytes(b.blob())
    c = codec(btf, sid)
    raw = struct.pack(f"<{len(names)}I", *range(1, len(names) + 1))
    v = c.decode(raw)
    assert v._fields == ("tail_", "from_", "to_dict_", "field3", "__class___", "_mk_fn_",
                         "x", "x_")
    assert (v.tail_, v.from_, v.to_dict_, v.field3, v.x, v.x_) == (1, 2, 3, 4, 7, 8)
    assert v.tail == b"" and type(v).__name__ == f"struct_{sid}"
    assert c.encode(v) == raw
    assert v.to_dict()["to_dict_"] == 3


def test_member_outside_its_struct_is_an_object_error(raw_btf: Any) -> None:
    b = raw_btf()
    u32 = b.int_("unsigned int", 4)
    sid = _struct(b, "bad", 8, [("a", u32, 0), ("b", u32, 8 * 1_000_000)])
    with pytest.raises(ObjectError, match="member 'b' ends at bit"):
        codec(BTF.from_bytes(b.blob()), sid)


def test_struct_containing_itself_is_an_object_error(raw_btf: Any) -> None:
    b = raw_btf()
    u32 = b.int_("unsigned int", 4)
    # struct loop { struct loop inner[1]; } (id 3): only hostile BTF can say that
    arr = b.add(ARRAY, "", 0, extra=struct.pack("<III", 3, u32, 1))
    sid = _struct(b, "loop", 4, [("inner", arr, 0)])
    assert sid == 3
    with pytest.raises(ObjectError):
        codec(BTF.from_bytes(b.blob()), sid)
