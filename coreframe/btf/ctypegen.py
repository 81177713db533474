"""ctypes types generated from BTF, for decoding ring-buffer records and map values.

Layouts are copied from BTF, not recomputed: every struct is ``_pack_ = 1`` with
explicit padding fields, so member offsets and the total size equal what the
compiler emitted even where ctypes' own alignment rules would differ (``__int128``,
packed structs). Bitfields become properties that read/write the bits at the exact
BTF bit offset, since ctypes' bitfield allocation is compiler- and version-dependent.
"""

from __future__ import annotations

import ctypes

from ..errors import ObjectError
from .types import BTF, Kind

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

_INTS = {
    (1, False): ctypes.c_uint8, (1, True): ctypes.c_int8,
    (2, False): ctypes.c_uint16, (2, True): ctypes.c_int16,
    (4, False): ctypes.c_uint32, (4, True): ctypes.c_int32,
    (8, False): ctypes.c_uint64, (8, True): ctypes.c_int64,
}
_CHAR_NAMES = frozenset({"char", "signed char", "unsigned char"})
_MAX_DEPTH = 64


def _cache(btf: BTF) -> dict[int, Any]:
    cache = btf.__dict__.get("_ctypes_cache")
    if cache is None:
        cache = btf.__dict__["_ctypes_cache"] = {}
    return cache


def ctype(btf: BTF, type_id: int) -> Any:
    """The ctypes type for BTF type ``type_id`` (memoized per BTF).

    Pointers become ``c_uint64`` (a BPF pointer is meaningless in this process),
    enums their integer type, typedefs and qualifiers their target, char arrays
    ``c_char * n`` (so they read as bytes).
    """
    return _ctype(btf, type_id, 0)


def _ctype(btf: BTF, type_id: int, depth: int) -> Any:
    try:
        return _ctype_inner(btf, type_id, depth)
    except (TypeError, ValueError, OverflowError, AttributeError, MemoryError) as e:
        raise ObjectError(f"BTF: type id {type_id} has no usable ctypes layout: {e}") from e


def _ctype_inner(btf: BTF, type_id: int, depth: int) -> Any:
    cache = _cache(btf)
    hit = cache.get(type_id)
    if hit is not None:
        return hit
    if depth > _MAX_DEPTH:
        raise ObjectError(f"BTF: type id {type_id}: type nesting too deep (loop?)")
    t = btf[type_id]
    k = t.kind
    result: Any
    if k == Kind.INT:
        result = _int_ctype(t)
    elif k in (Kind.ENUM, Kind.ENUM64):
        result = _INTS.get((t.size, t.signed))  # type: ignore[attr-defined]
        if result is None:
            result = ctypes.c_uint8 * t.size  # type: ignore[attr-defined]
    elif k == Kind.PTR:
        result = ctypes.c_uint64
    elif k in (Kind.TYPEDEF, Kind.CONST, Kind.VOLATILE, Kind.RESTRICT, Kind.TYPE_TAG, Kind.VAR):
        result = _ctype(btf, t.type, depth + 1)  # type: ignore[attr-defined]
    elif k == Kind.ARRAY:
        elem = btf.resolve(t.elem_type)  # type: ignore[attr-defined]
        et = btf[elem]
        if et.kind == Kind.INT and et.size == 1 and (  # type: ignore[attr-defined]
                et.is_char or et.name in _CHAR_NAMES):  # type: ignore[attr-defined]
            result = ctypes.c_char * t.nelems  # type: ignore[attr-defined]
        else:
            result = _ctype(btf, elem, depth + 1) * t.nelems  # type: ignore[attr-defined]
    elif k in (Kind.STRUCT, Kind.UNION):
        result = _composite(btf, t, depth)
    elif k == Kind.DATASEC:
        result = _datasec(btf, t, depth)
    elif k == Kind.FLOAT:
        size = t.size  # type: ignore[attr-defined]
        result = {4: ctypes.c_float, 8: ctypes.c_double}.get(size) or ctypes.c_uint8 * size
    else:
        what = "void" if k == Kind.UNKN else f"{k.name} {t.name!r}"
        raise ObjectError(f"BTF: type id {type_id} ({what}) has no ctypes layout")
    cache[type_id] = result
    return result


def _int_ctype(t: Any) -> Any:
    if t.is_bool and t.size == 1:
        return ctypes.c_bool
    ct = _INTS.get((t.size, t.signed))
    if ct is None:  # __int128 and odd sizes: raw little-endian bytes
        return ctypes.c_uint8 * t.size
    return ct


def _bitfield_property(byte_start: int, shift: int, nbits: int, signed: bool) -> property:
    """A property over ``nbits`` at bit ``shift`` of the bytes starting at ``byte_start``."""
    nbytes = (shift + nbits + 7) // 8
    mask = (1 << nbits) - 1

    def get(self: Any) -> int:
        raw = int.from_bytes(memoryview(self).cast("B")[byte_start:byte_start + nbytes],
                             "little")
        value = (raw >> shift) & mask
        if signed and value >> (nbits - 1):
            value -= 1 << nbits
        return value

    def set_(self: Any, value: int) -> None:
        buf = memoryview(self).cast("B")
        raw = int.from_bytes(buf[byte_start:byte_start + nbytes], "little")
        raw = (raw & ~(mask << shift)) | ((value & mask) << shift)
        buf[byte_start:byte_start + nbytes] = raw.to_bytes(nbytes, "little")

    return property(get, set_)


def _member_bits(btf: BTF, m: Any) -> tuple[int, int, bool] | None:
    """``(bit_offset, nbits, signed)`` when a member is a bitfield, else None.

    Covers both encodings: kind_flag structs carry ``bitfield_size``; older BTF
    puts the width and extra offset in the member's INT type.
    """
    target = btf[btf.resolve(m.type)]
    signed = bool(getattr(target, "signed", False))
    if m.bitfield_size:
        return m.bit_offset, m.bitfield_size, signed
    if target.kind == Kind.INT and (target.bits != 8 * target.size  # type: ignore[attr-defined]
                                    or target.offset):  # type: ignore[attr-defined]
        return m.bit_offset + target.offset, target.bits, signed  # type: ignore[attr-defined]
    if m.bit_offset % 8:
        size = btf.size_of(m.type)
        return m.bit_offset, 8 * size, signed
    return None


def _composite(btf: BTF, t: Any, depth: int) -> Any:
    is_union = t.kind == Kind.UNION
    fields: list[tuple[str, Any]] = []
    anonymous: list[str] = []
    props: dict[str, property] = {}
    cursor = 0
    npad = 0
    taken: set[str] = set()
    for i, m in enumerate(t.members):
        bits = _member_bits(btf, m)
        if bits is not None:
            if m.name and m.name not in taken:
                bit_off, nbits, signed = bits
                props[m.name] = _bitfield_property(bit_off // 8, bit_off % 8, nbits, signed)
                taken.add(m.name)
            continue
        off = m.bit_offset // 8
        ct = _ctype(btf, m.type, depth + 1)
        name = m.name
        if not name:
            name = f"_anon{i}"
            if btf.kind_of(btf.resolve(m.type)) in (Kind.STRUCT, Kind.UNION):
                anonymous.append(name)
        if name in taken:
            continue
        if not is_union:
            if off < cursor:  # overlapping (e.g. a zero-size marker): expose as a view
                props[name] = _view_property(off, ct)
                taken.add(name)
                continue
            if off > cursor:
                fields.append((f"_pad{npad}", ctypes.c_uint8 * (off - cursor)))
                npad += 1
        fields.append((name, ct))
        taken.add(name)
        cursor = max(cursor, off + ctypes.sizeof(ct))
    size = t.size
    if cursor > size:
        raise ObjectError(f"BTF: {t.kind.name.lower()} {t.name or '(anon)'} [{t.id}]: "
                          f"members end at byte {cursor}, past its size {size}")
    if is_union:
        fields.append(("_size", ctypes.c_uint8 * size))
    elif cursor < size:
        fields.append((f"_pad{npad}", ctypes.c_uint8 * (size - cursor)))
    base = ctypes.Union if is_union else ctypes.Structure
    shown = [n for n, _ in fields if not n.startswith(("_pad", "_anon")) and n != "_size"]
    shown += list(props)
    ns: dict[str, Any] = {"_pack_": 1, "_btf_id": t.id, "__repr__": _repr_fields(shown)}
    if anonymous:
        fields, anonymous = _unclash(fields, anonymous)
        ns["_anonymous_"] = anonymous
    ns["_fields_"] = fields
    ns.update(props)
    cls = type(t.name or f"anon_{t.kind.name.lower()}_{t.id}", (base,), ns)
    if ctypes.sizeof(cls) != size:  # pragma: no cover - padding above guarantees it
        raise ObjectError(f"BTF: cannot lay out {t.kind.name.lower()} {t.name} [{t.id}]")
    return cls


def _repr_fields(names: list[str]) -> Any:
    """``count_key(pid=1, cpu=0)`` rather than ``<...count_key object at 0x...>``."""

    def __repr__(self: Any) -> str:
        parts = []
        for n in names:
            v = getattr(self, n)
            if isinstance(v, ctypes.Array):
                v = bytes(v) if v._type_ in (ctypes.c_char, ctypes.c_uint8) else list(v)
            parts.append(f"{n}={v!r}")
        return f"{type(self).__name__}({', '.join(parts)})"

    return __repr__


def _unclash(fields: list[tuple[str, Any]],
             anonymous: list[str]) -> tuple[list[tuple[str, Any]], list[str]]:
    """Rename anonymous members whose placeholder name also names a field inside them.

    CPython's ctypes crashes (SIGSEGV) or fails when a field promoted out of an
    anonymous member has the same name as an anonymous member; hostile BTF (or
    an unnamed non-struct member nested inside) can produce exactly that.
    """
    inner: set[str] = set()
    for _, ct in fields:
        _field_names(ct, inner, 0)
    own = {n for n, _ in fields}
    rename: dict[str, str] = {}
    for name in anonymous:
        new = name
        while new in inner or (new != name and new in own) or new in rename.values():
            new += "_"
        rename[name] = new
    return [(rename.get(n, n), ct) for n, ct in fields], [rename[n] for n in anonymous]


def _field_names(ct: Any, out: set[str], depth: int) -> None:
    while isinstance(ct, type) and issubclass(ct, ctypes.Array):
        ct = ct._type_
    sub = getattr(ct, "_fields_", None)
    if not sub or depth > _MAX_DEPTH:
        return
    for name, field_type, *_ in sub:
        out.add(name)
        _field_names(field_type, out, depth + 1)


def _view_property(offset: int, ct: Any) -> property:
    def get(self: Any) -> Any:
        value = ct.from_buffer(self, offset)
        return value.value if hasattr(value, "value") and not isinstance(
            value, ctypes.Array) else value

    return property(get)


def _datasec(btf: BTF, t: Any, depth: int) -> Any:
    """A struct over a data section (.rodata/.data/.bss): one field per variable."""
    fields: list[tuple[str, Any]] = []
    cursor = 0
    npad = 0
    for v in sorted(t.vars, key=lambda v: v.offset):
        var = btf[v.type]
        if var.kind != Kind.VAR or v.offset < cursor:
            continue
        if v.offset > cursor:
            fields.append((f"_pad{npad}", ctypes.c_uint8 * (v.offset - cursor)))
            npad += 1
        ct = _ctype(btf, v.type, depth + 1)
        fields.append((var.name, ct))
        cursor = v.offset + ctypes.sizeof(ct)
    if t.size > cursor:
        fields.append((f"_pad{npad}", ctypes.c_uint8 * (t.size - cursor)))
    name = t.name.lstrip(".").replace(".", "_") or f"datasec_{t.id}"
    return type(name, (ctypes.Structure,), {"_pack_": 1, "_fields_": fields, "_btf_id": t.id})


_PREFIX_KINDS = {
    "struct": (Kind.STRUCT,),
    "union": (Kind.UNION,),
    "enum": (Kind.ENUM, Kind.ENUM64),
}
_PLAIN_KINDS = (Kind.TYPEDEF, Kind.STRUCT, Kind.UNION, Kind.ENUM, Kind.ENUM64, Kind.INT,
                Kind.FLOAT, Kind.DATASEC, Kind.VAR)


def find_type(btf: BTF, name: str) -> int:
    """Type id for ``"struct x"``, ``"union x"``, ``"enum x"`` or a plain/typedef name."""
    words = name.split()
    if len(words) == 2 and words[0] in _PREFIX_KINDS:
        kinds, bare = _PREFIX_KINDS[words[0]], words[1]
    else:
        kinds, bare = _PLAIN_KINDS, name.strip()
    ids = btf.find(bare)
    for kind in kinds:
        for tid in ids:
            if btf.kind_of(tid) == kind:
                return tid
    raise ObjectError(_missing_type(btf, name, words[0] if len(words) == 2 else "", kinds))


def _missing_type(btf: BTF, name: str, prefix: str, kinds: tuple[Kind, ...]) -> str:
    """'no type' with what puts a type in an object's BTF, and the closest names."""
    import difflib  # error path only

    spelled = []
    for tid in btf.ids_of_kinds(*kinds):
        own = btf.name_of(tid)
        if own:
            spelled.append(f"{prefix} {own}" if prefix else own)
    close = difflib.get_close_matches(name, spelled, n=3, cutoff=0.6)
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    why = ""
    if prefix in ("struct", "union"):
        bare = name.split()[1]
        why = (f" (clang writes a {prefix} into the object's BTF only when it is referenced "
               "from a global variable or a map (or a function's signature), not when it is "
               f"only used for a local or sent through a buffer: declare e.g. `{prefix} "
               f"{bare} *unused_{bare} __attribute__((unused));` in the BPF program)")
    return f"BTF: no type {name!r}{why}{hint}"


def ctype_by_name(btf: BTF, name: str) -> Any:
    """``BTF.ctype(name)``: the ctypes type for a C type name."""
    return ctype(btf, find_type(btf, name))
