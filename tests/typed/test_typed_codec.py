"""Values typed from an object's own BTF (coreframe.btf.values), without the kernel:
decode/encode round trips, bitfields, nested structs and arrays, enums, char arrays,
records shorter and longer than their struct, equality, repr, to_dict."""

from __future__ import annotations

import json
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typedkit import OBJ

import coreframe
from coreframe.btf.values import Codec, EncodeError, StructValue, codec, codec_by_name
from coreframe.errors import ObjectError


@pytest.fixture(scope="module")
def btf():
    return coreframe.open(OBJ).btf


def test_struct_layout_matches_the_c_struct(btf) -> None:
    c = codec_by_name(btf, "struct typed_value")
    assert c.size == btf.size_of(c.type_id) == 96
    v = c.zero()
    assert isinstance(v, StructValue)
    assert v._fields == ("count", "delta", "seen", "color", "where", "path", "a", "b", "c",
                         "raw", "name", "hist", "u", "ptr")
    assert v == {"count": 0, "delta": 0, "seen": False, "color": 0, "where": {"x": 0, "y": 0},
                 "path": [{"x": 0, "y": 0}] * 3, "a": 0, "b": 0, "c": 0, "raw": bytes(6),
                 "name": "", "hist": [0, 0, 0, 0], "u": {"as_u32": 0, "as_bytes": bytes(4)},
                 "ptr": 0}


def _typed_value_bytes(btf, **over: object) -> bytes:
    """struct typed_value packed by hand, as clang lays it out (offsets from the BTF)."""
    t = btf[codec_by_name(btf, "struct typed_value").type_id]
    off = {m.name: m.bit_offset for m in t.members}
    buf = bytearray(96)
    struct.pack_into("<QhBI", buf, 0, 123, -7, 1, 0)  # count, delta, seen, (pad)
    struct.pack_into("<I", buf, off["color"] // 8, 7)
    struct.pack_into("<ii", buf, off["where"] // 8, 11, -11)
    for i in range(3):
        struct.pack_into("<ii", buf, off["path"] // 8 + 8 * i, i, -i)
    word = 5 | ((-3 & 0x1F) << 3) | (1 << 8)  # a:3 = 5, b:5 = -3, c:1 = 1
    assert off["a"] % 8 == 0 and off["b"] == off["a"] + 3 and off["c"] == off["a"] + 8
    struct.pack_into("<H", buf, off["a"] // 8, word)
    buf[off["raw"] // 8:off["raw"] // 8 + 6] = b"\x01\x00\xff\x10\x20\x30"
    buf[off["name"] // 8:off["name"] // 8 + 8] = b"hi\0junk\0"
    struct.pack_into("<4I", buf, off["hist"] // 8, 1, 2, 3, 0xFFFFFFFF)
    struct.pack_into("<I", buf, off["u"] // 8, 0x04030201)
    struct.pack_into("<Q", buf, off["ptr"] // 8, 0xFFFF888000001000)
    return bytes(buf)


def test_decode_every_kind_of_field(btf) -> None:
    c = codec_by_name(btf, "struct typed_value")
    v = c.decode(_typed_value_bytes(btf))
    assert (v.count, v.delta, v.seen, v.color) == (123, -7, True, 7)
    assert type(v.seen) is bool
    assert v.where.x == 11 and v.where.y == -11 and type(v.where).__name__ == "point"
    assert [(p.x, p.y) for p in v.path] == [(0, 0), (1, -1), (2, -2)]
    assert (v.a, v.b, v.c) == (5, -3, 1)          # bitfields, signed b
    assert v.raw == b"\x01\x00\xff\x10\x20\x30"   # __u8[6]: bytes
    assert v.name == "hi"                          # char[8]: str up to the first NUL
    assert v.hist == [1, 2, 3, 0xFFFFFFFF]         # __u32[4]: list
    assert v.u.as_u32 == 0x04030201 and v.u.as_bytes == b"\x01\x02\x03\x04"  # union
    assert v.ptr == 0xFFFF888000001000             # pointer: int
    assert v.tail == b""


def test_encode_is_the_inverse_of_decode(btf) -> None:
    c = codec_by_name(btf, "struct typed_value")
    raw = _typed_value_bytes(btf)
    v = c.decode(raw)
    # char[8] "hi\0junk\0" decodes to "hi"; re-encoded, the bytes after the NUL are zero
    expect = bytearray(raw)
    name_off = btf[c.type_id].members[10].bit_offset // 8
    expect[name_off:name_off + 8] = b"hi" + bytes(6)
    assert c.encode(v) == bytes(expect)
    assert c.decode(c.encode(v)) == v
    # from a dict, a partial dict (the rest zero), and keyword construction
    assert c.decode(c.encode(v.to_dict() | {"raw": v.raw, "u": {"as_u32": 0x04030201}})) == v
    assert c.decode(c.encode({"count": 9})).count == 9
    assert c.cls(count=9, name="x").name == "x"


def test_char_arrays_are_lossless(btf) -> None:
    c = codec_by_name(btf, "struct typed_key")
    raw = struct.pack("<I16s", 7, b"\xff\xfeab\xc3")   # not UTF-8
    k = c.decode(raw)
    assert k.comm == "\udcff\udcfeab\udcc3"             # surrogateescape
    assert c.encode(k) == raw
    full = struct.pack("<I16s", 7, b"x" * 16)           # no NUL at all
    assert c.decode(full).comm == "x" * 16
    assert c.encode(c.decode(full)) == full
    with pytest.raises(EncodeError, match="17 bytes do not fit in 16"):
        c.encode({"comm": "y" * 17})


@settings(max_examples=200, deadline=None)
@given(count=st.integers(0, 2**64 - 1), delta=st.integers(-2**15, 2**15 - 1),
       seen=st.booleans(), color=st.sampled_from([0, 1, 7]),
       a=st.integers(0, 7), b=st.integers(-16, 15), c_=st.integers(0, 1),
       raw=st.binary(min_size=6, max_size=6),
       name=st.text(st.characters(min_codepoint=1, max_codepoint=0x7F), max_size=8),
       hist=st.lists(st.integers(0, 2**32 - 1), min_size=4, max_size=4),
       xy=st.tuples(st.integers(-2**31, 2**31 - 1), st.integers(-2**31, 2**31 - 1)))
def test_round_trip_property(btf, count, delta, seen, color, a, b, c_, raw, name, hist,
                             xy) -> None:
    c = codec_by_name(btf, "struct typed_value")
    v = c.cls(count=count, delta=delta, seen=seen, color=color, a=a, b=b, c=c_, raw=raw,
              name=name, hist=hist, where={"x": xy[0], "y": xy[1]})
    back = c.decode(c.encode(v))
    assert back.to_dict() == {**v.to_dict(), "where": {"x": xy[0], "y": xy[1]}}
    assert c.encode(back) == c.encode(v)


def test_out_of_range_values_name_the_field(btf) -> None:
    c = codec_by_name(btf, "struct typed_value")
    with pytest.raises(EncodeError, match=r"delta: 40000 is out of range \[-32768, 32767\]"):
        c.encode({"delta": 40000})
    with pytest.raises(EncodeError, match="b: 16 does not fit in a 5-bit bitfield"):
        c.encode({"b": 16})
    with pytest.raises(EncodeError, match=r"where.x: 'no' is not an integer"):
        c.encode({"where": {"x": "no"}})
    with pytest.raises(EncodeError, match="no field 'cont'; did you mean 'count'"):
        c.encode({"cont": 1})
    with pytest.raises(EncodeError, match="'PURPLE' is not an enumerator"):
        c.encode({"color": "PURPLE"})
    assert c.decode(c.encode({"color": "BLUE"})).color == 7


def test_repr_equality_hash_and_to_dict(btf) -> None:
    c = codec_by_name(btf, "struct typed_value")
    v = c.decode(_typed_value_bytes(btf))
    r = repr(v)
    assert r.startswith("typed_value(count=123, delta=-7, seen=True, color=<BLUE: 7>, "
                        "where=point(x=11, y=-11), path=[point(x=0, y=0), ")
    assert "name='hi'" in r and "raw=b'\\x01\\x00\\xff\\x10 0'" in r
    d = v.to_dict()
    assert json.loads(json.dumps(d)) == d                    # plain JSON values
    assert d["raw"] == "0100ff102030" and d["where"] == {"x": 11, "y": -11}
    assert v == c.decode(_typed_value_bytes(btf)) and v != c.zero()
    assert v != {**d, "count": 1} and v != {"count": 123}
    assert v != 5 and (v == 5) is False
    k = codec_by_name(btf, "struct typed_key")
    key = k.decode(struct.pack("<I16s", 1, b"sh"))
    assert {key: 1}[k.cls(pid=1, comm="sh")] == 1            # hashable by value
    assert hash(v) == hash(c.decode(_typed_value_bytes(btf)))
    assert v["count"] == 123 and bytes(v) == c.encode(v)


def test_short_record_keeps_its_tail(btf) -> None:
    c = codec_by_name(btf, "struct event")
    head = struct.pack("<II16s", 4, 3, b"sh")
    rec = c.decode(head + b"abc", 0, len(head) + 3)
    assert (rec.seq, rec.len, rec.comm, rec.data) == (4, 3, "sh", None)
    assert rec.tail == b"abc"
    assert "tail=b'abc'" in repr(rec) and rec.to_dict(tail=True)["tail"] == "616263"
    assert "tail" not in rec.to_dict()
    # cut inside the fixed part: the fields that fit, the rest is the tail
    part = c.decode(head[:10], 0, 10)
    assert (part.seq, part.len, part.comm, part.tail) == (4, 3, None, head[8:10])
    # at an offset into a larger buffer, like a ring buffer's data area
    buf = b"\xee" * 5 + head + b"xyz" + b"\xee" * 9
    assert c.decode(buf, 5, len(head) + 3).tail == b"xyz"
    # longer than the struct: everything decodes, the extra bytes are the tail
    whole = c.encode({"seq": 1, "data": "q"})
    longer = c.decode(whole + b"\0pad", 0, len(whole) + 4)
    assert longer.data == "q" and longer.tail == b"\0pad"


def test_scalar_and_array_codecs(btf) -> None:
    color = codec_by_name(btf, "enum color")
    assert color.decode(struct.pack("<I", 7)) == 7
    assert color.encode("GREEN") == struct.pack("<I", 1)
    by_color = next(m for m in coreframe.open(OBJ).maps.values() if m.name == "by_color")
    arr = codec(btf, by_color.value_type_id)
    assert isinstance(arr, Codec) and arr.name == "char[8]"
    assert arr.decode(b"red\0\0\0\0\0") == "red" and arr.encode("red") == b"red" + bytes(5)


def test_missing_type_explains_what_puts_a_struct_in_the_btf(btf) -> None:
    # struct only_ref is referenced from a global pointer only: that is enough
    assert codec_by_name(btf, "struct only_ref").zero() == {"z": 0}
    with pytest.raises(ObjectError) as e:
        codec_by_name(btf, "struct not_in_btf")
    msg = str(e.value)
    assert "no type 'struct not_in_btf'" in msg
    assert "referenced from a global variable or a map" in msg
    with pytest.raises(ObjectError, match="did you mean 'struct event'"):
        codec_by_name(btf, "struct evnt")


def test_globals_are_typed(spec) -> None:
    assert spec.data.origin == {"x": 3, "y": -4}
    assert type(spec.data.origin).__name__ == "point"
    assert spec.data.get("label") == "typed"  # (.label is the section's own name)
    assert spec.bss.corners == [{"x": 0, "y": 0}, {"x": 0, "y": 0}]
    assert spec.rodata.default_color == 1 and spec.rodata.targ_tgid > 0  # scalars as before
    o = spec.data.origin
    spec.data.origin = o._replace(x=30)                      # typed instances write back
    assert spec.data.origin == {"x": 30, "y": -4}
    spec.bss.corners = [{"x": 1, "y": 2}]
    assert spec.bss.corners[0] == {"x": 1, "y": 2}


def test_ctypes_structs_print_their_fields(btf) -> None:
    key = btf.ctype("struct typed_key")(pid=3, comm=b"sh")
    assert repr(key) == "typed_key(pid=3, comm=b'sh')"
    assert repr(btf.ctype("struct point")(1, -2)) == "point(x=1, y=-2)"


def test_scalar_values_keep_their_c_bytes(btf) -> None:
    color = codec_by_name(btf, "enum color").decode(struct.pack("<I", 7))
    assert color == 7 and isinstance(color, int) and bytes(color) == struct.pack("<I", 7)
    assert json.dumps({"c": color}) == '{"c": 7}' and f"{color:>3}" == "  7"
    s16 = codec(btf, btf.find("__s16")[0]).decode(struct.pack("<h", -2))
    assert s16 == -2 and bytes(s16) == struct.pack("<h", -2) and s16 + 1 == -1
