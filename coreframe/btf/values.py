"""Python values typed from BTF: map keys/values, globals and buffer records.

``codec(btf, type_id)`` builds, once per BTF type (cached on the BTF), a decoder and
an encoder for that type:

- integers by their BTF signedness (``_Bool`` as ``bool``), enums as ``int``
  (a struct's ``repr`` names the enumerator), pointers as ``int``;
- ``char[N]`` as ``str`` up to the first NUL, decoded with ``surrogateescape`` so
  that any bytes survive a round trip; other one-byte integer arrays (``__u8[N]``)
  as ``bytes``; every other array as a ``list``;
- structs and unions as instances of a small class generated per BTF struct
  (:class:`StructValue`): ``__slots__``, one attribute per field, a readable
  ``repr``, ``to_dict()``, equality with another instance or with a dict.

Speed: a struct decodes with ONE ``struct.Struct.unpack_from`` over all of its
scalar fields (nested structs and scalar arrays are flattened into the same
format), then one generated function builds the object from the unpacked tuple
with the few fix-ups a field needs (char arrays, bitfields, ``__int128``). The
generated source holds integer indices, names this module makes up (``v[3]``,
``_c2``) and attribute names, each checked to be a plain identifier (a BTF name
that is not one becomes ``fieldN``), so a hostile object cannot inject code.
Members that overlap (unions, odd layouts) are decoded by calls into their own
codec instead of through the flat format.

A record shorter than its struct (a variable-length tail, like execsnoop's exec
record) decodes every member that lies wholly inside it; the members past its
end are ``None`` and the bytes from the first of them on are ``.tail``. Bytes
past the struct's size (a perf sample's padding, a flexible array member) are
``.tail`` too, so decoding never drops a byte of a record.
"""

from __future__ import annotations

import keyword
import struct

from ..errors import BTFError, ObjectError
from ..runtime.compat import zip_strict
from .types import BTF, Kind

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from ctypes import _CData
    from typing import Any, TypeAlias

    from .types import Member

    # What a decoded value can be: scalars, text, raw bytes, lists and structs.
    Value: TypeAlias = "int | bool | float | str | bytes | list[Value] | StructValue | None"
    Decoder: TypeAlias = "Callable[..., Value]"

_MAX_DEPTH = 64
# An array of structs longer than this is decoded by a loop over the element codec
# rather than unrolled into the flat format.
_UNROLL_MAX = 16
_INT_FMT = {
    (1, False): "B", (1, True): "b", (2, False): "H", (2, True): "h",
    (4, False): "I", (4, True): "i", (8, False): "Q", (8, True): "q",
}
_RESERVED = frozenset({"to_dict", "tail", "_tail", "_fields", "_codec", "_enums",
                       "_asdict", "_replace", "_btf_names", "_mk_fn"})


class CInt(int):
    """An int that is a whole BTF-typed value (a map key or value, not a struct field).

    Exactly an ``int``, except that ``bytes(v)`` gives its C bytes (``bytes(5)`` of a
    plain int is five zero bytes): code written for maps that returned bytes, like
    ``int.from_bytes(bytes(v)[:8], "little")``, keeps its meaning instead of silently
    reading zero.
    """

    __slots__ = ()
    _size = 8
    _signed = False

    def __bytes__(self) -> bytes:
        return self.to_bytes(self._size, "little", signed=self._signed)

    def __repr__(self) -> str:
        return int.__repr__(self)


def _cint(size: int, signed: bool) -> type[CInt]:
    name = f"CInt{'S' if signed else 'U'}{size * 8}"
    cls = globals().get(name)
    if cls is None:
        cls = type(name, (CInt,), {"__slots__": (), "_size": size, "_signed": signed,
                                   "__module__": __name__, "__qualname__": name})
        globals()[name] = cls
    return cls  # type: ignore[no-any-return]


def _scalar_class(btf: BTF, rid: int) -> type[CInt] | None:
    t = btf[rid]
    if t.kind == Kind.INT and not t.is_bool or t.kind in (Kind.ENUM, Kind.ENUM64):  # type: ignore[attr-defined]
        size, signed = _int_info(t)
    elif t.kind == Kind.PTR:
        size, signed = 8, False
    else:
        return None
    return _cint(size, signed) if size in (1, 2, 4, 8, 16) else None


class EncodeError(ObjectError, ValueError):
    """A Python value does not fit the BTF type it is written as."""


class StructValue:
    """Base of the classes generated per BTF struct/union.

    Fields are attributes (``ev.pid``; also ``ev["pid"]``), ``_fields`` names them
    in declaration order, ``to_dict()`` gives plain JSON-able values, ``tail`` the
    bytes of a record beyond its decoded fields (a C field named ``tail``, like one
    named after a Python keyword or a method here, gets a ``_`` appended: ``tail_``).
    Instances compare equal to another instance of the same
    struct with equal fields and tail, and to a dict with exactly the same keys and
    equal values; they hash by value, so typed map keys work as dict keys (do not
    change one while it is a key).
    """

    __slots__ = ("_tail",)
    _fields: tuple[str, ...] = ()
    _codec: Codec
    _enums: dict[str, dict[int, str]] = {}

    def __init__(self, *args: object, **kwargs: object) -> None:
        zero = self._codec.zero()
        for f in self._fields:
            setattr(self, f, getattr(zero, f))
        self._tail = b""
        if len(args) > len(self._fields):
            raise TypeError(f"{type(self).__name__}() takes {len(self._fields)} fields, "
                            f"got {len(args)}")
        for f, a in zip(self._fields, args):
            setattr(self, f, a)
        for k, a in kwargs.items():
            if k not in self._fields:
                hint = _did_you_mean(k, self._fields)
                raise TypeError(f"{type(self).__name__} has no field {k!r}{hint}")
            setattr(self, k, a)

    @property
    def tail(self) -> bytes:
        """Bytes of the record past its decoded fields (b"" for a whole record)."""
        return self._tail

    def __getitem__(self, name: str) -> Value:
        if name not in self._fields:
            raise KeyError(name)
        return getattr(self, name)  # type: ignore[no-any-return]

    def _asdict(self) -> dict[str, Value]:
        """Field values as they are (nested structs stay instances)."""
        return {f: getattr(self, f) for f in self._fields}

    def to_dict(self, *, tail: bool = False) -> dict[str, object]:
        """Plain values: nested dicts and lists, ``bytes`` as lowercase hex strings.

        ``tail=True`` adds the record's tail (hex) under ``"tail"`` when non-empty.
        """
        out = {f: _plain(getattr(self, f)) for f in self._fields}
        if tail and self._tail:
            out["tail"] = self._tail.hex()
        return out

    def _replace(self, **kwargs: object) -> StructValue:
        """A copy with some fields changed (shallow, like namedtuple's)."""
        new = object.__new__(type(self))
        for f in self._fields:  # None fields of a short record stay None
            setattr(new, f, getattr(self, f))
        for k, a in kwargs.items():
            if k not in self._fields:
                raise TypeError(f"{type(self).__name__} has no field {k!r}")
            setattr(new, k, a)
        new._tail = self._tail
        return new

    def __bytes__(self) -> bytes:
        return self._codec.encode(self) + self._tail

    def __repr__(self) -> str:
        enums = self._enums
        parts = []
        for f in self._fields:
            v = getattr(self, f)
            names = enums.get(f)
            if names is not None and type(v) is int and v in names:
                parts.append(f"{f}=<{names[v]}: {v}>")
            else:
                parts.append(f"{f}={v!r}")
        if self._tail:
            t = self._tail
            shown = repr(t) if len(t) <= 64 else f"{t[:64]!r}... ({len(t)} bytes)"
            parts.append(f"tail={shown}")
        return f"{type(self).__name__}({', '.join(parts)})"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, StructValue):
            if other._fields != self._fields or type(other).__name__ != type(self).__name__:
                return False
            return (all(getattr(self, f) == getattr(other, f) for f in self._fields)
                    and self._tail == other._tail)
        if isinstance(other, dict):
            if len(other) != len(self._fields):
                return False
            try:
                return all(getattr(self, f) == other[f] for f in self._fields)
            except KeyError:
                return False
        return NotImplemented

    def __ne__(self, other: object) -> bool:
        eq = self.__eq__(other)
        return eq if eq is NotImplemented else not eq

    def __hash__(self) -> int:
        return hash((type(self).__name__, tuple(_frozen(getattr(self, f)) for f in self._fields),
                     self._tail))

    def __copy__(self) -> StructValue:
        return self._replace()


def _plain(v: object) -> object:
    if isinstance(v, StructValue):
        return v.to_dict()
    if isinstance(v, list):
        return [_plain(x) for x in v]
    if isinstance(v, bytes):
        return v.hex()
    return v


def _frozen(v: object) -> object:
    if isinstance(v, list):
        return tuple(_frozen(x) for x in v)
    return v


def _did_you_mean(name: str, choices: tuple[str, ...] | list[str]) -> str:
    import difflib

    close = difflib.get_close_matches(name, list(choices), n=3, cutoff=0.5)
    return f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""


class Codec:
    """Decoder and encoder of one BTF type.

    ``decode(buf, off=0, n=size)`` reads the value at ``off`` of a bytes-like
    ``buf``; ``n`` is the length of a record there (records of another length than
    ``size`` get the tail rule of the module docstring). ``encode(value)`` returns
    ``size`` bytes. ``cls`` is the generated :class:`StructValue` subclass of a
    struct or union, else None.
    """

    __slots__ = ("btf", "type_id", "size", "name", "cls", "decode", "_kind", "_partials",
                 "_by_len")

    def __init__(self, btf: BTF, type_id: int) -> None:
        self.btf = btf
        self.type_id = type_id
        self.size = btf.size_of(type_id)
        self.name = btf.c_type_name(type_id)
        self.cls: type[StructValue] | None = None
        self._kind = btf.kind_of(btf.resolve(type_id))
        self._partials: dict[int, Decoder] = {}   # by number of fields kept
        self._by_len: dict[int, Decoder] = {}     # by record length, other than size
        self.decode: Decoder = _not_ready

    def __repr__(self) -> str:
        return f"<Codec {self.name} ({self.size} bytes)>"

    def zero(self) -> Value:
        """The value of all-zero bytes (a fresh object each call)."""
        return self.decode(bytes(self.size))

    def encode(self, value: object) -> bytes:
        """``size`` bytes for ``value`` (EncodeError naming the field when it does not fit)."""
        out = bytearray(self.size)
        _encode_into(self.btf, self.type_id, value, out, 0, 0)
        return bytes(out)

    def _short(self, buf: object, off: int, n: int) -> Value:
        """A record of ``n`` bytes at ``off``, other than ``size``: see the module doc."""
        dec = self._by_len.get(n)
        if dec is None:
            dec = self._length_decoder(n)
            if len(self._by_len) < 4096:
                self._by_len[n] = dec
        return dec(buf, off, n)

    def _length_decoder(self, n: int) -> Decoder:
        size = self.size
        if self.cls is None:  # a scalar or array record: what there is, as bytes
            if n > size:
                full = self.decode
                return lambda buf, off, n: full(buf, off)
            return lambda buf, off, n: bytes(buf[off:off + n])  # type: ignore[index]
        if n > size or self._kind != Kind.STRUCT:
            key = -1 if n > size else -2 - n
            dec = self._partials.get(key)
            if dec is None:
                if n > size:
                    dec = _Compiler(self.btf).top(self.type_id, self, cut=size)
                else:
                    dec = self._padded(n)
                self._partials[key] = dec
            return dec
        ends = _member_ends(self.btf, self.type_id)
        k = 0
        while k < len(ends) and ends[k][1] <= n * 8:
            k += 1
        dec = self._partials.get(k)
        if dec is None:
            cut = _member_start(self.btf, self.type_id, k)
            dec = self._partials[k] = _Compiler(self.btf).top(self.type_id, self, keep=k,
                                                             cut=cut)
        return dec

    def _padded(self, n: int) -> Decoder:
        """A short union: the members that fit, from a zero-padded copy."""
        missing = [name for name, end in _member_ends(self.btf, self.type_id) if end > n * 8]
        full, pad = self.decode, bytes(self.size - n)

        def dec(buf: bytes, off: int, n: int) -> Value:
            rec = full(bytes(buf[off:off + n]) + pad)
            for name in missing:
                setattr(rec, name, None)
            return rec

        return dec


def _not_ready(*_a: object) -> Value:  # pragma: no cover - replaced before use
    raise BTFError("BTF: codec used before it was built (recursive type?)")


def codec(btf: BTF, type_id: int) -> Codec:
    """The codec of BTF type ``type_id`` (built on first use, cached on ``btf``)."""
    cache = btf.__dict__.get("_value_codecs")
    if cache is None:
        cache = btf.__dict__["_value_codecs"] = {}
    c = cache.get(type_id)
    if c is not None:
        return c  # type: ignore[no-any-return]
    if type_id == 0 or btf.kind_of(btf.resolve(type_id)) in (Kind.UNKN, Kind.FUNC_PROTO,
                                                             Kind.FUNC, Kind.FWD):
        raise BTFError(f"BTF: type id {type_id} ({btf.c_type_name(type_id) or 'void'}) "
                          "has no value layout")
    c = Codec(btf, type_id)
    cache[type_id] = c
    try:
        c.decode = _Compiler(btf).top(type_id, c)
    except BaseException:
        del cache[type_id]
        raise
    return c


def codec_by_name(btf: BTF, name: str) -> Codec:
    """The codec of ``"struct event"``, ``"union x"``, ``"enum y"`` or a typedef/int name."""
    from .ctypegen import find_type

    return codec(btf, find_type(btf, name))


# ---- compiling decoders ------------------------------------------------------------------


def _int_info(t: object) -> tuple[int, bool]:
    return t.size, bool(t.signed)  # type: ignore[attr-defined]


def _is_text_char(btf: BTF, elem_id: int) -> bool:
    """``char`` (not ``__u8``/``unsigned char``/``signed char``): arrays of it are text."""
    rid = btf.resolve(elem_id)
    t = btf[rid]
    if t.kind != Kind.INT or t.size != 1 or t.is_bool:  # type: ignore[attr-defined]
        return False
    return t.name == "char"


def _member_bits(btf: BTF, m: object) -> tuple[int, int, bool] | None:
    """``(bit_offset, nbits, signed)`` of a bitfield member (either BTF encoding), else None."""
    target = btf[btf.resolve(m.type)]  # type: ignore[attr-defined]
    signed = bool(getattr(target, "signed", False))
    if m.bitfield_size:  # type: ignore[attr-defined]
        return m.bit_offset, m.bitfield_size, signed  # type: ignore[attr-defined]
    if target.kind == Kind.INT and (target.bits != 8 * target.size  # type: ignore[attr-defined]
                                    or target.offset):  # type: ignore[attr-defined]
        return m.bit_offset + target.offset, target.bits, signed  # type: ignore[attr-defined]
    if m.bit_offset % 8:  # type: ignore[attr-defined]
        return m.bit_offset, 8 * btf.size_of(m.type), signed  # type: ignore[attr-defined]
    return None


def _member_ends(btf: BTF, type_id: int) -> list[tuple[str, int]]:
    """(attribute, end bit) of each top-level field, in declaration order."""
    out = []
    for attr, m, _ in _fields_of(btf, btf[btf.resolve(type_id)]):
        bits = _member_bits(btf, m)
        end = bits[0] + bits[1] if bits else m.bit_offset + 8 * btf.size_of(m.type)
        out.append((attr, end))
    return out


def _member_start(btf: BTF, type_id: int, k: int) -> int:
    fields = _fields_of(btf, btf[btf.resolve(type_id)])
    if k >= len(fields):
        return btf.size_of(type_id)
    return int(fields[k][1].bit_offset // 8)


def _fields_of(btf: BTF, t: object) -> list[tuple[str, Member, int]]:
    """(attribute name, member, member index) per field; anonymous structs/unions promote
    their members (as C does), named with their own offsets."""
    cache = btf.__dict__.setdefault("_value_fields", {})
    hit = cache.get(t.id)  # type: ignore[attr-defined]
    if hit is not None:
        return hit  # type: ignore[no-any-return]
    out: list[tuple[str, Member, int]] = []
    taken: set[str] = set()
    _collect(btf, t, 0, out, taken, 0)
    cache[t.id] = out  # type: ignore[attr-defined]
    return out


def _collect(btf: BTF, t: object, base_bits: int, out: list[tuple[str, Member, int]],
             taken: set[str], depth: int) -> None:
    from .types import Member

    if depth > _MAX_DEPTH:
        raise BTFError(f"BTF: type id {t.id}: anonymous members nest too deep")  # type: ignore[attr-defined]
    limit = 8 * t.size  # type: ignore[attr-defined]
    for i, m in enumerate(t.members):  # type: ignore[attr-defined]
        bits = _member_bits(btf, m)
        end = bits[0] + bits[1] if bits else m.bit_offset + 8 * btf.size_of(m.type)
        if end > limit:
            what = f"{t.kind.name.lower()} {t.name or '(anon)'} [{t.id}]"  # type: ignore[attr-defined]
            raise BTFError(f"BTF: {what}: member {m.name or i!r} ends at bit {end}, "
                              f"past the type's {t.size} bytes")  # type: ignore[attr-defined]
        mm = Member(m.name, m.type, m.bit_offset + base_bits,  # type: ignore[call-arg]
                    m.bitfield_size)
        if not m.name:
            inner = btf[btf.resolve(m.type)]
            if inner.kind in (Kind.STRUCT, Kind.UNION):
                _collect(btf, inner, mm.bit_offset, out, taken, depth + 1)
            continue
        attr = _attr_name(m.name, len(out))
        while attr in taken:
            attr += "_"
        taken.add(attr)
        out.append((attr, mm, i))


def _attr_name(name: str, index: int) -> str:
    if not name.isidentifier():
        return f"field{index}"
    if keyword.iskeyword(name) or name in _RESERVED or name.startswith("__"):
        return name + "_"
    return name


class _Compiler:
    """Builds the decoder function of one type: one flat struct format plus fix-ups."""

    def __init__(self, btf: BTF) -> None:
        self.btf = btf
        self.fmt: list[str] = []      # format items, in offset order
        self.nvals = 0                # values the format yields so far
        self.pos = 0                  # byte offset the format has reached
        self.env: dict[str, object] = {"new": object.__new__, "_frombytes": int.from_bytes}
        self.flat = True              # False: leaves overlapped; recompile without them
        self.top_cls: type[StructValue] | None = None  # the struct decode() builds itself
        self.top_exprs: list[str] = []

    # leaves --------------------------------------------------------------------------------

    def leaf(self, off: int, fmt: str, size: int, count: int = 1) -> int:
        """Add ``count`` values read with ``fmt`` at byte ``off``; their first index."""
        if off < self.pos:
            self.flat = False
            raise _Overlap
        if off > self.pos:
            self.fmt.append(f"{off - self.pos}x")
        self.fmt.append(fmt)
        self.pos = off + size
        i = self.nvals
        self.nvals += count
        return i

    def name(self, prefix: str, obj: object) -> str:
        for k, v in self.env.items():
            if v is obj and k.startswith(prefix):
                return k
        n = f"{prefix}{len(self.env)}"
        self.env[n] = obj
        return n

    # expressions ---------------------------------------------------------------------------

    def expr(self, tid: int, off: int, depth: int, flat: bool) -> str:
        """Python expression decoding type ``tid`` at byte ``off`` of the struct."""
        btf = self.btf
        if depth > _MAX_DEPTH:
            raise BTFError(f"BTF: type id {tid} nests too deep to decode (loop?)")
        rid = btf.resolve(tid)
        t = btf[rid]
        k = t.kind
        if not flat and k not in (Kind.STRUCT, Kind.UNION, Kind.ARRAY):
            return self.call(rid, off)
        if k == Kind.INT:
            size, signed = _int_info(t)
            if t.is_bool and size == 1:  # type: ignore[attr-defined]
                return f"v[{self.leaf(off, '?', 1)}]"
            fmt = _INT_FMT.get((size, signed))
            if fmt is not None:
                return f"v[{self.leaf(off, fmt, size)}]"
            i = self.leaf(off, f"{size}s", size)
            return f"_frombytes(v[{i}], 'little', signed={signed})"
        if k in (Kind.ENUM, Kind.ENUM64):
            size, signed = _int_info(t)
            fmt = _INT_FMT.get((size, signed))
            if fmt is None:
                i = self.leaf(off, f"{size}s", size)
                return f"_frombytes(v[{i}], 'little', signed={signed})"
            return f"v[{self.leaf(off, fmt, size)}]"
        if k == Kind.PTR:
            return f"v[{self.leaf(off, 'Q', 8)}]"
        if k == Kind.FLOAT:
            size = t.size  # type: ignore[attr-defined]
            fmt = {2: "e", 4: "f", 8: "d"}.get(size, f"{size}s")
            return f"v[{self.leaf(off, fmt, size)}]"
        if k == Kind.ARRAY:
            return self.array(t, off, depth, flat)
        if k in (Kind.STRUCT, Kind.UNION):
            if k == Kind.UNION or not flat:
                return self.composite(t, off, depth, flat=False)
            return self.composite(t, off, depth, flat=True)
        if k == Kind.DATASEC:
            return self.call(rid, off)
        raise BTFError(f"BTF: type id {tid} ({k.name}) has no value layout")

    def call(self, tid: int, off: int) -> str:
        """Decode through the type's own codec, from the raw buffer (no flat leaves)."""
        c = codec(self.btf, self.btf.resolve(tid))
        return f"{self.name('_c', c)}.decode(buf, off + {off})"

    def array(self, t: object, off: int, depth: int, flat: bool) -> str:
        btf = self.btf
        n = t.nelems  # type: ignore[attr-defined]
        elem = t.elem_type  # type: ignore[attr-defined]
        if n == 0:
            return "''" if _is_text_char(btf, elem) else "[]"
        esize = btf.size_of(elem)
        et = btf[btf.resolve(elem)]
        if not flat:  # straight from the buffer, no flat leaves
            raw = f"bytes(buf[off + {off}:off + {off + n * esize}])"
            if _is_text_char(btf, elem):
                return f"{raw}.partition(b'\\0')[0].decode('utf-8', 'surrogateescape')"
            if et.kind == Kind.INT and esize == 1 and not et.is_bool:  # type: ignore[attr-defined]
                return raw
            cn = self.name("_c", codec(btf, btf.resolve(elem)))
            return f"[{cn}.decode(buf, off + {off} + {esize} * j) for j in range({n})]"
        if _is_text_char(btf, elem):
            i = self.leaf(off, f"{n}s", n)
            return f"v[{i}].partition(b'\\0')[0].decode('utf-8', 'surrogateescape')"
        if et.kind == Kind.INT and esize == 1 and not et.is_bool:  # type: ignore[attr-defined]
            return f"v[{self.leaf(off, f'{n}s', n)}]"
        scalar = None
        if et.kind in (Kind.INT, Kind.ENUM, Kind.ENUM64):
            size, signed = _int_info(et)
            if et.kind == Kind.INT and et.is_bool and size == 1:  # type: ignore[attr-defined]
                scalar = "?"
            else:
                scalar = _INT_FMT.get((size, signed))
        elif et.kind == Kind.PTR:
            scalar = "Q"
        elif et.kind == Kind.FLOAT:
            scalar = {4: "f", 8: "d"}.get(esize)
        if scalar is not None:
            i = self.leaf(off, f"{n}{scalar}", n * esize, count=n)
            return f"list(v[{i}:{i + n}])"
        if n <= _UNROLL_MAX:
            return "[" + ", ".join(self.expr(elem, off + j * esize, depth + 1, flat)
                                   for j in range(n)) + "]"
        c = codec(btf, btf.resolve(elem))
        cn = self.name("_c", c)
        return f"[{cn}.decode(buf, off + {off} + {esize} * j) for j in range({n})]"

    def composite(self, t: object, off: int, depth: int, flat: bool,
                  keep: int | None = None) -> str:
        """``_mkN(field exprs...)`` building the struct's object."""
        cls = struct_class(self.btf, t)
        fields = _fields_of(self.btf, t)
        exprs = []
        union = t.kind == Kind.UNION  # type: ignore[attr-defined]
        run: list[tuple[int, int, int, bool]] = []  # bitfields sharing storage bytes
        run_lo = run_hi = 0
        for idx, (_attr, m, _i) in enumerate(fields):
            if keep is not None and idx >= keep:
                exprs.append("None")
                continue
            bits = _member_bits(self.btf, m)
            moff = off + m.bit_offset // 8  # type: ignore[attr-defined]
            if bits is not None:
                if union or not flat:
                    exprs.append(self.bits_from_buf(off, bits))
                    continue
                # flat: a run of bitfields whose bytes touch is read as one word
                lo = (off * 8 + bits[0]) // 8
                hi = (off * 8 + bits[0] + bits[1] + 7) // 8
                if run and lo < run_hi:
                    run_hi = max(run_hi, hi)
                else:
                    self.flush(run, run_lo, run_hi, exprs)
                    run, run_lo, run_hi = [], lo, hi
                run.append((off * 8 + bits[0], bits[1], len(exprs), bits[2]))
                exprs.append("")  # filled in by flush()
                continue
            if run:
                self.flush(run, run_lo, run_hi, exprs)
                run = []
            if union:
                exprs.append(self.call(m.type, moff))  # type: ignore[attr-defined]
            else:
                exprs.append(self.expr(m.type, moff, depth + 1, flat))  # type: ignore[attr-defined]
        self.flush(run, run_lo, run_hi, exprs)
        return self.build(cls, exprs, depth)

    def build(self, cls: type[StructValue], exprs: list[str], depth: int) -> str:
        """A nested struct: a call of its maker; the top one: statements of decode()."""
        if depth == 0 and self.top_cls is None:
            self.top_cls, self.top_exprs = cls, exprs
            return ""
        mk = self.name("_mk", _maker(cls))
        return f"{mk}({', '.join(exprs)})"

    def flush(self, run: list[tuple[int, int, int, bool]], lo: int, hi: int,
              exprs: list[str]) -> None:
        if not run:
            return
        size = hi - lo
        fmt = {1: "B", 2: "H", 4: "I", 8: "Q"}.get(size)
        if fmt is not None:
            word = f"v[{self.leaf(lo, fmt, size)}]"
        else:
            word = f"_frombytes(v[{self.leaf(lo, f'{size}s', size)}], 'little')"
        for bit_off, nbits, slot, signed in run:
            exprs[slot] = _bits_expr(word, bit_off - lo * 8, nbits, signed)

    def bits_from_buf(self, off: int, bits: tuple[int, int, bool]) -> str:
        bit_off, nbits, signed = bits
        lo = off + bit_off // 8
        nbytes = (bit_off % 8 + nbits + 7) // 8
        word = f"_frombytes(buf[off + {lo}:off + {lo + nbytes}], 'little')"
        return _bits_expr(word, bit_off % 8, nbits, signed)

    def function(self, expr: str, kind: str, size: int | None = None,
                 codec_obj: Codec | None = None, cut: int | None = None,
                 fast: tuple[_Compiler, int, int, int] | None = None) -> Decoder:
        """decode(buf, off=0, n=size): one unpack, then the value built from it.

        ``cut``: the record's bytes from there to ``n`` become its tail. ``fast``:
        (compiler, lo, hi, cut) of the decoder of records whose length is in
        [lo, hi), inlined (a struct whose last member, an array, is cut short).
        """
        if size is not None and self.pos > size:
            raise BTFError(f"BTF: {kind}: members reach byte {self.pos}, past its {size}")
        lines = []
        if size is not None and codec_obj is not None:
            self.env["_short"] = codec_obj._short
            self.env["_by_len"] = codec_obj._by_len.get
            lines.append(f"def decode(buf, off=0, n={size}):")
            lines.append(f"    if n != {size}:")
            if fast is not None:
                sub, lo, hi, sub_cut = fast
                lines.append(f"        if {lo} <= n < {hi}:")
                lines += sub.body(sub.top_exprs[0] if sub.top_cls is None else "", sub_cut,
                                  "_unpack_fast", 12)
            lines.append("        d = _by_len(n)")  # a length seen before: no extra call
            lines.append("        return _short(buf, off, n) if d is None else d(buf, off, n)")
        else:
            lines.append("def decode(buf, off=0, n=None):")
        lines += self.body(expr, cut, "_unpack", 4)
        ns = dict(self.env)
        exec(compile("\n".join(lines), f"<coreframe.btf.values {kind}>", "exec"), ns)
        return ns["decode"]  # type: ignore[return-value]

    def body(self, expr: str, cut: int | None, unpack: str, indent: int) -> list[str]:
        """The statements that unpack and build the value, ending in ``return``.

        A struct is built attribute by attribute (``o.pid = a1``): attribute names
        are safe to write into code, ``_attr_name`` makes every one an identifier.
        """
        pad = " " * indent
        lines = []
        exprs = self.top_exprs if self.top_cls is not None else [expr]
        if self.nvals:
            self.env[unpack] = struct.Struct("<" + "".join(self.fmt)).unpack_from
            exprs, unpacked = _to_locals(exprs, self.nvals)
            if unpacked:  # one UNPACK_SEQUENCE instead of a subscript per value
                names = ", ".join(f"a{i}" for i in range(self.nvals))
                lines.append(f"{pad}({names},) = {unpack}(buf, off)")
            else:
                lines.append(f"{pad}v = {unpack}(buf, off)")
        if self.top_cls is None:
            lines.append(f"{pad}return {exprs[0]}")
            return lines
        self.env["_C"] = self.top_cls
        lines.append(f"{pad}o = new(_C)")
        for attr, e in zip_strict(self.top_cls._fields, exprs):
            assert attr.isidentifier() and not keyword.iskeyword(attr)
            lines.append(f"{pad}o.{attr} = {e}")
        tail = "b''" if cut is None else f"bytes(buf[off + {cut}:off + n])"
        lines.append(f"{pad}o._tail = {tail}")
        lines.append(f"{pad}return o")
        return lines

    def top(self, type_id: int, c: Codec, keep: int | None = None,
            cut: int | None = None) -> Decoder:
        """The decoder of a codec's type; for records of another length, ``keep``
        only the first ``keep`` fields (the rest None) and the tail from ``cut``."""
        btf = self.btf
        rid = btf.resolve(type_id)
        t = btf[rid]
        if t.kind in (Kind.STRUCT, Kind.UNION):
            c.cls = struct_class(btf, t)
        for flat in (True, False):
            self.__init__(btf)  # type: ignore[misc]
            try:
                if t.kind == Kind.DATASEC:
                    e = self.datasec(t, flat)
                elif t.kind in (Kind.STRUCT, Kind.UNION):
                    e = self.composite(t, 0, 0, flat and t.kind == Kind.STRUCT, keep=keep)
                else:
                    e = self.expr(rid, 0, 0, flat)
                    cint = _scalar_class(btf, rid)
                    if cint is not None:  # a map's scalar key/value: bytes(v) stays C
                        e = f"{self.name('_I', cint)}({e})"
            except _Overlap:
                continue
            if cut is not None:
                return self.function(e, f"{c.name}[:{keep}]", cut=cut)
            return self.function(e, c.name, size=c.size, codec_obj=c,
                                 fast=self.cut_last(t) if flat else None)
        raise BTFError(f"BTF: {c.name}: cannot lay out its members")  # pragma: no cover

    def cut_last(self, t: object) -> tuple[_Compiler, int, int, int] | None:
        """The inlined decoder of a struct whose last member, an array, is cut short:
        a header then a variable-length tail, like execsnoop's exec record."""
        if t.kind != Kind.STRUCT:  # type: ignore[attr-defined]
            return None
        fields = _fields_of(self.btf, t)
        if len(fields) < 2:
            return None
        last = fields[-1][1]
        if (_member_bits(self.btf, last) is not None
                or self.btf.kind_of(self.btf.resolve(last.type)) != Kind.ARRAY):  # type: ignore[attr-defined]
            return None
        ends = _member_ends(self.btf, t.id)  # type: ignore[attr-defined]
        lo, hi = (ends[-2][1] + 7) // 8, (ends[-1][1] + 7) // 8
        sub = _Compiler(self.btf)
        sub.env = self.env  # one namespace: names stay unique
        try:
            sub.composite(t, 0, 0, True, keep=len(fields) - 1)
        except _Overlap:
            return None
        return sub, lo, hi, last.bit_offset // 8  # type: ignore[attr-defined]

    def datasec(self, t: object, flat: bool) -> str:
        """A data section (.bss, ...) decodes like a struct of its variables."""
        cls = struct_class(self.btf, t)
        exprs = []
        for _attr, vsi in _datasec_vars(self.btf, t):
            var = self.btf[vsi.type]  # type: ignore[attr-defined]
            exprs.append(self.expr(var.type, vsi.offset, 1, flat)  # type: ignore[attr-defined]
                         if flat else self.call(var.type, vsi.offset))  # type: ignore[attr-defined]
        return self.build(cls, exprs, 0)


def _to_locals(exprs: list[str], nvals: int) -> tuple[list[str], bool]:
    """Rewrite ``v[3]`` as ``a3`` (and short ``list(v[i:j])`` as ``[ai, ...]``) when
    every use can be, so that decode() unpacks into locals.

    A plain scan, not ``re``: this module is imported by the first typed lookup of
    a run, and ``re`` would bring ``enum``, ``functools`` and ``collections`` along.
    """
    if nvals > 256:
        return exprs, False
    out = []
    for e in exprs:
        parts = []
        i = 0
        while (j := e.find("v[", i)) >= 0:
            k = e.find("]", j)
            inner = e[j + 2:k]
            if inner.isdigit():
                parts.append(f"{e[i:j]}a{inner}")
                i = k + 1
                continue
            lo, _, hi = inner.partition(":")
            if (lo.isdigit() and hi.isdigit() and e[j - 5:j] == "list("
                    and e[k + 1:k + 2] == ")" and int(hi) - int(lo) <= 64):
                names = ", ".join(f"a{n}" for n in range(int(lo), int(hi)))
                parts.append(f"{e[i:j - 5]}[{names}]")
                i = k + 2
                continue
            return exprs, False
        parts.append(e[i:])
        out.append("".join(parts))
    return out, True


class _Overlap(Exception):
    """Internal: two flat leaves overlap; the type is compiled without flattening."""


def _bits_expr(word: str, shift: int, nbits: int, signed: bool) -> str:
    mask = (1 << nbits) - 1
    if signed and nbits > 0:
        half = 1 << (nbits - 1)
        return f"((({word} >> {shift}) & {mask}) ^ {half}) - {half}"
    return f"(({word} >> {shift}) & {mask})"


def _maker(cls: type[StructValue]) -> Callable[..., StructValue]:
    """``mk(f0, f1, ...)``: a new instance from its field values (generated once per class)."""
    held = cls.__dict__.get("_mk_fn")
    if held is not None:  # the staticmethod itself: callable only from 3.10 on
        return held.__func__  # type: ignore[no-any-return]
    n = len(cls._fields)
    args = ", ".join(f"a{i}" for i in range(n))
    body = ["def mk(" + args + "):", "    o = new(C)"]
    env: dict[str, object] = {"new": object.__new__, "C": cls}
    for i, f in enumerate(cls._fields):
        assert f.isidentifier() and not keyword.iskeyword(f)  # see _attr_name
        body.append(f"    o.{f} = a{i}")
    body.append("    o._tail = b''")
    body.append("    return o")
    exec(compile("\n".join(body), f"<coreframe.btf.values {cls.__name__}>", "exec"), env)
    mk = env["mk"]
    type.__setattr__(cls, "_mk_fn", staticmethod(mk))  # type: ignore[arg-type]
    return mk  # type: ignore[return-value]


def _datasec_vars(btf: BTF, t: object) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    taken: set[str] = set()
    cursor = 0
    for vsi in sorted(t.vars, key=lambda v: v.offset):  # type: ignore[attr-defined]
        var = btf[vsi.type]
        if var.kind != Kind.VAR or vsi.offset < cursor:
            continue
        if vsi.offset + btf.size_of(var.type) > t.size:  # type: ignore[attr-defined]
            raise BTFError(f"BTF: {t.name}: variable {var.name!r} lies outside the "  # type: ignore[attr-defined]
                              "section")
        attr = _attr_name(var.name, len(out))
        while attr in taken:
            attr += "_"
        taken.add(attr)
        out.append((attr, vsi))
        cursor = vsi.offset + vsi.size
    return out


def struct_class(btf: BTF, t: object) -> type[StructValue]:
    """The StructValue subclass of a BTF struct/union/datasec (one per type, per BTF)."""
    cache = btf.__dict__.setdefault("_value_classes", {})
    cls = cache.get(t.id)  # type: ignore[attr-defined]
    if cls is not None:
        return cls  # type: ignore[no-any-return]
    enums: dict[str, dict[int, str]] = {}
    if t.kind == Kind.DATASEC:  # type: ignore[attr-defined]
        fields = tuple(a for a, _ in _datasec_vars(btf, t))
        name = t.name.lstrip(".").replace(".", "_") or f"datasec_{t.id}"  # type: ignore[attr-defined]
    else:
        flist = _fields_of(btf, t)
        fields = tuple(a for a, _, _ in flist)
        kind = "struct" if t.kind == Kind.STRUCT else "union"  # type: ignore[attr-defined]
        name = t.name or f"anon_{kind}_{t.id}"  # type: ignore[attr-defined]
        for attr, m, _ in flist:
            mt = btf[btf.resolve(m.type)]  # type: ignore[attr-defined]
            if mt.kind in (Kind.ENUM, Kind.ENUM64):
                enums[attr] = {v: n for n, v in reversed(mt.values)}  # type: ignore[attr-defined]
    ns: dict[str, object] = {"__slots__": fields, "_fields": fields, "_enums": enums,
                             "__module__": __name__, "__qualname__": name}
    cls = type(name if name.isidentifier() else f"struct_{t.id}", (StructValue,), ns)  # type: ignore[attr-defined]
    cache[t.id] = cls  # type: ignore[attr-defined]
    cls._codec = _LazyCodec(btf, t.id)  # type: ignore[assignment,attr-defined]
    return cls  # type: ignore[no-any-return]


class _LazyCodec:
    """A class's codec, built when first needed (building it builds the class first)."""

    def __init__(self, btf: BTF, type_id: int) -> None:
        self._args = (btf, type_id)

    def __get__(self, obj: object, owner: type) -> Codec:
        c = codec(*self._args)
        type.__setattr__(owner, "_codec", c)
        return c


# ---- encoding ------------------------------------------------------------------------------


def _encode_into(btf: BTF, tid: int, value: object, out: bytearray, off: int,
                 depth: int, path: str = "") -> None:
    """Write ``value`` as type ``tid`` at byte ``off`` of ``out`` (zero-filled before)."""
    if depth > _MAX_DEPTH:
        raise EncodeError(f"{path or 'value'}: type nests too deep")
    rid = btf.resolve(tid)
    t = btf[rid]
    k = t.kind
    size = btf.size_of(rid)
    where = f"{path}: " if path else ""
    if value is None:
        return
    if isinstance(value, (bytes, bytearray, memoryview)) and not (
            k == Kind.ARRAY and len(value) != size):
        data = bytes(value)
        if len(data) != size:
            raise EncodeError(f"{where}{len(data)} bytes given, {btf.c_type_name(tid)} "
                              f"takes {size}")
        out[off:off + size] = data
        return
    if _is_ctypes(value):
        data = bytes(value)  # type: ignore[call-overload]
        if len(data) != size:
            raise EncodeError(f"{where}ctypes value of {len(data)} bytes, "
                              f"{btf.c_type_name(tid)} takes {size}")
        out[off:off + size] = data
        return
    if k == Kind.INT:
        if t.is_bool:  # type: ignore[attr-defined]
            if not (isinstance(value, bool) or value in (0, 1)):
                raise EncodeError(f"{where}{value!r} is not a bool")
            out[off:off + size] = int(bool(value)).to_bytes(size, "little")
            return
        out[off:off + size] = _int_bytes(value, size, bool(t.signed), where)  # type: ignore[attr-defined]
        return
    if k == Kind.PTR:
        out[off:off + size] = _int_bytes(value, size, False, where)
        return
    if k in (Kind.ENUM, Kind.ENUM64):
        if isinstance(value, str):
            for n, v in t.values:  # type: ignore[attr-defined]
                if n == value:
                    value = v
                    break
            else:
                names = ", ".join(n for n, _ in t.values[:12])  # type: ignore[attr-defined]
                raise EncodeError(f"{where}{value!r} is not an enumerator ({names})")
        out[off:off + size] = _int_bytes(value, size, bool(t.signed), where)  # type: ignore[attr-defined]
        return
    if k == Kind.FLOAT:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise EncodeError(f"{where}{value!r} is not a number")
        fmt = {2: "<e", 4: "<f", 8: "<d"}.get(size)
        if fmt is None:
            raise EncodeError(f"{where}{size}-byte floats take bytes")
        out[off:off + size] = struct.pack(fmt, float(value))
        return
    if k == Kind.ARRAY:
        _encode_array(btf, t, value, out, off, depth, path)
        return
    if k in (Kind.STRUCT, Kind.UNION, Kind.DATASEC):
        _encode_struct(btf, t, value, out, off, depth, path)
        return
    raise EncodeError(f"{where}cannot write {k.name} values")


def _encode_array(btf: BTF, t: object, value: object, out: bytearray, off: int, depth: int,
                  path: str) -> None:
    n = t.nelems  # type: ignore[attr-defined]
    elem = t.elem_type  # type: ignore[attr-defined]
    esize = btf.size_of(elem)
    where = f"{path}: " if path else ""
    if isinstance(value, str):
        if not _is_text_char(btf, elem) and not (esize == 1):
            raise EncodeError(f"{where}a string does not fit {btf.c_type_name(t.id)}")  # type: ignore[attr-defined]
        value = value.encode("utf-8", "surrogateescape")
    if isinstance(value, (bytes, bytearray, memoryview)) and esize == 1:
        data = bytes(value)
        if len(data) > n:
            raise EncodeError(f"{where}{len(data)} bytes do not fit in {n}")
        out[off:off + len(data)] = data
        return
    if not isinstance(value, (list, tuple)):
        raise EncodeError(f"{where}{value!r} is not a list (array of {n})")
    if len(value) > n:
        raise EncodeError(f"{where}{len(value)} elements do not fit in {n}")
    for i, item in enumerate(value):
        _encode_into(btf, elem, item, out, off + i * esize, depth + 1, f"{path}[{i}]")


def _encode_struct(btf: BTF, t: object, value: object, out: bytearray, off: int, depth: int,
                   path: str) -> None:
    where = f"{path}: " if path else ""
    items: list[tuple[str, int, int, tuple[int, int, bool] | None]]
    if t.kind == Kind.DATASEC:  # type: ignore[attr-defined]
        items = [(a, btf[v.type].type, v.offset * 8, None)  # type: ignore[attr-defined]
                 for a, v in _datasec_vars(btf, t)]
    else:
        items = []
        for a, m, _ in _fields_of(btf, t):
            items.append((a, m.type, m.bit_offset, _member_bits(btf, m)))  # type: ignore[attr-defined]
    by_attr = {a: (tid, bo, bits) for a, tid, bo, bits in items}
    if isinstance(value, StructValue):
        pairs = [(f, getattr(value, f)) for f in value._fields]
    elif isinstance(value, dict):
        pairs = list(value.items())
    elif isinstance(value, (list, tuple)):
        if len(value) > len(items):
            raise EncodeError(f"{where}{len(value)} values for {len(items)} fields")
        pairs = [(items[i][0], v) for i, v in enumerate(value)]
    else:
        raise EncodeError(f"{where}{value!r} is not a struct value "
                          "(give an instance, a dict of fields or a tuple)")
    for name, v in pairs:
        spec = by_attr.get(name)
        if spec is None:
            raise EncodeError(f"{where}no field {name!r}{_did_you_mean(str(name), list(by_attr))}")
        tid, bit_off, bits = spec
        sub = f"{path}.{name}" if path else str(name)
        if v is None:
            continue
        if bits is not None:
            bit_off, nbits, signed = bits
            lo, hi = ((-(1 << (nbits - 1)), (1 << (nbits - 1)) - 1) if signed
                      else (0, (1 << nbits) - 1))
            if isinstance(v, bool):
                v = int(v)
            if not isinstance(v, int) or not lo <= v <= hi:
                raise EncodeError(f"{sub}: {v!r} does not fit in a {nbits}-bit bitfield")
            start = off + bit_off // 8
            nbytes = (bit_off % 8 + nbits + 7) // 8
            word = int.from_bytes(out[start:start + nbytes], "little")
            shift = bit_off % 8
            mask = ((1 << nbits) - 1) << shift
            word = (word & ~mask) | ((v << shift) & mask)
            out[start:start + nbytes] = word.to_bytes(nbytes, "little")
            continue
        _encode_into(btf, tid, v, out, off + bit_off // 8, depth + 1, sub)


def _int_bytes(value: object, size: int, signed: bool, where: str) -> bytes:
    if isinstance(value, bool):
        value = int(value)
    if not isinstance(value, int):
        raise EncodeError(f"{where}{value!r} is not an integer")
    bits = size * 8
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    if not lo <= value <= hi:
        raise EncodeError(f"{where}{value} is out of range [{lo}, {hi}]")
    return value.to_bytes(size, "little", signed=signed)


def _is_ctypes(value: object) -> bool:
    from ..sys import cdata

    return isinstance(value, (cdata.SimpleCData, cdata.Structure, cdata.Union, cdata.Array))


# ---- readers -------------------------------------------------------------------------------

def record_maker(rtype: object, btf: BTF | None
                 ) -> Callable[[memoryview, int, int], Value | _CData]:
    """``make(buf, off, n)`` turning an ``n``-byte record at ``off`` into a value.

    ``rtype`` is a C type name looked up in ``btf`` (``"struct event"``), a
    :class:`Codec`, a :class:`StructValue` subclass, or a ctypes type. A ctypes
    record of another size than its type carries ``.tail``: a shorter one is decoded
    from a zero-padded copy, its tail the bytes past its last complete field; a
    longer one's tail is the bytes past the type's size.
    """
    if isinstance(rtype, str):
        if btf is None:
            raise BTFError(f"record type {rtype!r}: this map has no BTF to look it up in "
                              "(pass a ctypes type, or read a map of a loaded object)")
        return codec_by_name(btf, rtype).decode
    if isinstance(rtype, Codec):
        return rtype.decode
    if isinstance(rtype, type) and issubclass(rtype, StructValue):
        return rtype._codec.decode
    from ..sys import cdata

    if isinstance(rtype, type) and issubclass(
            rtype, (cdata.SimpleCData, cdata.Structure, cdata.Union, cdata.Array)):
        return _ctypes_maker(rtype)
    raise BTFError(f"record type must be a C type name, a Codec or a ctypes type, "
                      f"not {type(rtype).__name__}")


def _ctypes_maker(ctype: type) -> Callable[[memoryview, int, int], _CData]:
    from ..sys import cdata

    size = cdata.sizeof(ctype)
    copy = ctype.from_buffer_copy  # type: ignore[attr-defined]
    ends = sorted((getattr(ctype, f[0]).offset + getattr(ctype, f[0]).size)
                  for f in getattr(ctype, "_fields_", ()))

    def make(buf: memoryview, off: int, n: int) -> _CData:
        if n == size:
            return copy(buf, off)
        if n > size:
            rec = copy(buf, off)
            rec.tail = bytes(memoryview(buf)[off + size:off + n])  # type: ignore[arg-type]
            return rec
        raw = bytes(memoryview(buf)[off:off + n])  # type: ignore[arg-type]
        rec = copy(raw + bytes(size - n))
        whole = max([e for e in ends if e <= n], default=0)
        rec.tail = raw[whole:]
        return rec

    return make


__all__ = ["CInt", "Codec", "EncodeError", "StructValue", "codec", "codec_by_name",
           "record_maker",
           "struct_class"]
