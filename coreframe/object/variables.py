"""Typed access to global variables (``spec.rodata.targ_uid = 1000``).

Each global data section becomes one array map whose value is the section's
image; the section's BTF DATASEC says which variable lives where and what C type
it has. Writes are checked against that type before they touch the image, so a
wrong value fails with the variable's name and C type instead of surfacing as a
verifier error or silently wrapping.
"""

from __future__ import annotations

import struct

from ..errors import ObjectError
from ..runtime.startup import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from ..btf.types import BTF
    from ..btf.values import Value
    from .parts import MapSpec
    from .spec import ObjectSpec


class VariableError(ObjectError, ValueError):
    """A value does not fit the variable's C type."""


class UnknownVariable(ObjectError, AttributeError):
    """No variable of that name in the section."""


class Variable(Record, fields="name offset size type_id c_type static"):
    """One global variable: where it lives in the section image and its BTF type."""

    __slots__ = ()

    name: str
    offset: int
    size: int
    type_id: int
    c_type: str
    static: bool


class DataSection:
    """Variables of one global data section, read and written through its map image.

    The section keeps each variable's place (offset, size, BTF type) and builds a
    :class:`Variable`, whose ``c_type`` is clang's spelling of the type, only when
    one is asked for: a tool that sets its ``.rodata`` before load needs the places,
    and spelling C types means importing ``btf.cdecl``.
    """

    __slots__ = ("_spec", "_section", "_map", "_vars", "_btf")

    def __init__(self, spec: ObjectSpec, section: str, map_spec: MapSpec) -> None:
        object.__setattr__(self, "_spec", spec)
        object.__setattr__(self, "_section", section)
        object.__setattr__(self, "_map", map_spec)
        object.__setattr__(self, "_btf", spec.btf)
        object.__setattr__(self, "_vars", _variables(spec.btf, section, map_spec))

    # ---- introspection ------------------------------------------------------------------

    @property
    def section(self) -> str:
        return self._section

    @property
    def label(self) -> str:
        """'rodata' for .rodata, 'rodata.foo' for .rodata.foo: how errors name the section."""
        return self._section.lstrip(".")

    @property
    def variables(self) -> list[Variable]:
        return [self._variable(slot) for slot in self._vars.values()]

    def _variable(self, slot: _Slot) -> Variable:
        name, offset, size, type_id, static = slot
        assert self._btf is not None
        return Variable(name, offset, size, type_id, self._btf.c_type_name(type_id), static)

    def names(self) -> list[str]:
        return list(self._vars)

    def __contains__(self, name: object) -> bool:
        return name in self._vars

    def __iter__(self) -> Any:
        return iter(self._vars)

    def __dir__(self) -> list[str]:
        return [*self._vars, "get", "set", "set_from_string", "names", "variables", "items"]

    def items(self) -> list[tuple[str, Any]]:
        return [(n, self.get(n)) for n in self._vars]

    def variable(self, name: str) -> Variable:
        return self._variable(self._slot(name))

    def _slot(self, name: str) -> _Slot:
        v = self._vars.get(name)
        if v is None:
            import difflib  # error path only: keep it off the start-up imports

            close = difflib.get_close_matches(name, list(self._vars), n=3, cutoff=0.5)
            hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            have = ", ".join(self._vars) or "none"
            raise UnknownVariable(f"{self.label} has no variable {name!r}{hint} "
                                  f"(variables: {have})")
        return v

    # ---- values ---------------------------------------------------------------------------

    def _read(self) -> bytes | bytearray:
        """The section image (here: the spec's initial value, edited in place)."""
        assert self._map.data is not None
        return self._map.data

    def _write(self, offset: int, raw: bytes) -> None:
        assert self._map.data is not None
        self._map.data[offset:offset + len(raw)] = raw

    def get(self, name: str) -> Value:
        """Current value of a variable as a Python object.

        Scalars are ints/bools/floats; structs, unions and arrays are typed from BTF
        like map values (``coreframe.btf.values``): a StructValue, a ``str`` for a
        char array, ``bytes`` for a ``__u8`` array, else a list.
        """
        v = self._slot(name)
        btf = self._btf
        assert btf is not None
        from ..btf.kinds import Kind

        raw = bytes(self._read()[v.offset:v.offset + v.size])
        if btf.kind_of(btf.resolve(v.type_id)) in (Kind.STRUCT, Kind.UNION, Kind.ARRAY):
            from ..btf.values import codec

            return codec(btf, v.type_id).decode(raw)
        return _decode(btf, v.type_id, raw)

    def set(self, name: str, value: Any) -> None:
        """Check ``value`` against the variable's type, then write it into the image."""
        v = self._slot(name)
        assert self._btf is not None
        old = bytes(self._read()[v.offset:v.offset + v.size])
        try:
            new = _encode(self._btf, v.type_id, value, old)
        except _Bad as e:
            raise self._bad_value(name, v.type_id, e) from None
        self._write(v.offset, new)

    def set_from_string(self, name: str, text: str) -> None:
        """Set from CLI text (``--set NAME=VALUE``), parsed according to the variable's type."""
        v = self._slot(name)
        assert self._btf is not None
        try:
            value = _parse_text(self._btf, v.type_id, text)
        except _Bad as e:
            raise self._bad_value(name, v.type_id, e) from None
        self.set(name, value)

    def _bad_value(self, name: str, type_id: int, problem: _Bad) -> VariableError:
        """What a value that does not fit the variable's type raises: the C type, what
        it holds, and why the value does not fit."""
        assert self._btf is not None
        return VariableError(f"{self.label} variable {name!r} is "
                             f"{self._btf.c_type_name(type_id)!r}"
                             f"{_describe(self._btf, type_id)}: {problem}")

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return self.get(name)

    def __setattr__(self, name: str, value: Any) -> None:
        self.set(name, value)

    def __getitem__(self, name: str) -> Any:
        return self.get(name)

    def __setitem__(self, name: str, value: Any) -> None:
        self.set(name, value)

    def __repr__(self) -> str:
        return f"<DataSection {self._section} {', '.join(self._vars)}>"


class LiveDataSection(DataSection):
    """Variables of a loaded object's data map, read and written through the kernel.

    Each write rewrites the whole map value (read-modify-write), so use it for
    settings and counters the program does not update concurrently. ``.rodata``
    is frozen at load and refuses writes.
    """

    __slots__ = ("_live",)

    def __init__(self, spec: ObjectSpec, section: str, map_spec: MapSpec, live: Any) -> None:
        super().__init__(spec, section, map_spec)
        object.__setattr__(self, "_live", live)

    def _read(self) -> bytes | bytearray:
        raw = self._live.raw.lookup(0)
        if raw is None:
            raise ObjectError(f"{self.label}: map has no value")
        return raw

    def _write(self, offset: int, raw: bytes) -> None:
        from ..sys import consts as C

        if self._map.map_flags & C.BPF_F_RDONLY_PROG:
            raise VariableError(f"{self.label} is read-only once loaded (frozen); set it "
                                "on the ObjectSpec before load()")
        image = bytearray(self._read())
        image[offset:offset + len(raw)] = raw
        self._live.raw.update(0, bytes(image))


class _Slot(Record, fields="name offset size type_id static"):
    """Where a variable lives in the section image: a :class:`Variable` without its
    C spelling."""

    __slots__ = ()

    name: str
    offset: int
    size: int
    type_id: int
    static: bool


def _variables(btf: BTF | None, section: str, m: MapSpec) -> dict[str, _Slot]:
    from ..btf.kinds import BTF_VAR_STATIC, Kind

    out: dict[str, _Slot] = {}
    if btf is None or not m.value_type_id:
        return out
    ds = btf[m.value_type_id]
    for vsi in ds.vars:
        var = btf[vsi.type]
        if var.kind != Kind.VAR or not var.name:
            continue
        if vsi.offset + vsi.size > m.value_size:
            raise ObjectError(f"{section}: variable {var.name!r} lies outside the section")
        if btf.size_of(var.type) != vsi.size:
            raise ObjectError(f"{section}: variable {var.name!r} is {vsi.size} bytes but its "
                              f"type {btf.c_type_name(var.type)!r} is "
                              f"{btf.size_of(var.type)}")
        out[var.name] = _Slot(var.name, vsi.offset, vsi.size, var.type,
                              var.linkage == BTF_VAR_STATIC)
    return out


class _Bad(Exception):
    """Internal: a value does not fit; the message is completed by the caller."""


def _describe(btf: BTF, type_id: int) -> str:
    """' (unsigned 32-bit)' style summary of the resolved type, or ''."""
    from ..btf.types import Kind

    t = btf[btf.resolve(type_id)]
    if t.kind == Kind.INT:
        if t.is_bool:
            return " (bool)"
        return f" ({'signed' if t.signed else 'unsigned'} {t.size * 8}-bit)"
    if t.kind in (Kind.ENUM, Kind.ENUM64):
        return f" (enum, {t.size * 8}-bit)"
    if t.kind == Kind.ARRAY:
        return f" (array of {t.nelems})"
    if t.kind == Kind.PTR:
        return " (pointer, 64-bit)"
    return ""


def _int_range(size: int, signed: bool) -> tuple[int, int]:
    bits = size * 8
    return (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)


def _encode(btf: BTF, type_id: int, value: Any, old: bytes) -> bytes:
    """Bytes for ``value`` as BTF type ``type_id``; ``old`` keeps unspecified parts."""
    from ..btf.types import Kind

    tid = btf.resolve(type_id)
    t = btf[tid]
    size = len(old)
    k = t.kind
    if k == Kind.INT:
        if t.is_bool:
            if isinstance(value, bool) or value in (0, 1):
                return int(bool(value)).to_bytes(size, "little")
            raise _Bad(f"{value!r} is not a bool")
        if t.is_char and size == 1 and isinstance(value, (str, bytes)) and len(value) == 1:
            value = ord(value)
        return _encode_int(value, size, t.signed)
    if k == Kind.PTR:
        return _encode_int(value, size, False)
    if k in (Kind.ENUM, Kind.ENUM64):
        if isinstance(value, str):
            for n, v in t.values:
                if n == value:
                    value = v
                    break
            else:
                names = ", ".join(n for n, _ in t.values[:12])
                raise _Bad(f"{value!r} is not one of its enumerators ({names})")
        return _encode_int(value, size, t.signed)
    if k == Kind.FLOAT:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _Bad(f"{value!r} is not a number")
        return struct.pack({4: "<f", 8: "<d"}.get(size, "<d"), float(value))[:size]
    if k == Kind.ARRAY:
        elem = btf.resolve(t.elem_type)
        esize = btf.size_of(t.elem_type)
        et = btf[elem]
        if et.kind == Kind.INT and esize == 1 and isinstance(value, (str, bytes, bytearray)):
            raw = (value.encode("utf-8", "surrogateescape") if isinstance(value, str)
                   else bytes(value))
            if len(raw) + 1 > t.nelems:
                raise _Bad(f"{value!r} is {len(raw)} bytes, but only {t.nelems - 1} fit "
                           "with the terminating NUL")
            return raw + bytes(size - len(raw))
        if not isinstance(value, (list, tuple)):
            raise _Bad(f"{value!r} is not a list (array of {t.nelems})")
        if len(value) > t.nelems:
            raise _Bad(f"{len(value)} elements do not fit in {t.nelems}")
        out = bytearray(old)
        for i, item in enumerate(value):
            seg = old[i * esize:(i + 1) * esize]
            try:
                out[i * esize:(i + 1) * esize] = _encode(btf, t.elem_type, item, seg)
            except _Bad as e:
                raise _Bad(f"element [{i}]: {e}") from None
        # zero the elements not given, without looping nelems times or growing the image
        start, end = len(value) * esize, min(t.nelems * esize, len(out))
        out[start:end] = bytes(max(0, end - start))
        return bytes(out)
    if k in (Kind.STRUCT, Kind.UNION):
        if not isinstance(value, dict) and hasattr(value, "_asdict"):
            value = value._asdict()  # a StructValue read from BTF (btf.values)
        if not isinstance(value, dict):
            raise _Bad(f"{value!r} is not a dict of field values")
        members = {m.name: m for m in t.members if m.name}
        out = bytearray(old)
        for fname, fval in value.items():
            m = members.get(fname)
            if m is None:
                raise _Bad(f"no field {fname!r} (fields: {', '.join(members)})")
            try:
                _encode_member(btf, m, fval, out)
            except _Bad as e:
                raise _Bad(f"field {fname!r}: {e}") from None
        return bytes(out)
    raise _Bad(f"writing {k.name} variables is not supported")


def _encode_member(btf: BTF, m: Any, value: Any, out: bytearray) -> None:
    if m.bitfield_size:
        from ..btf.types import Kind

        t = btf[btf.resolve(m.type)]
        signed = t.kind == Kind.INT and t.signed or getattr(t, "signed", False)
        lo, hi = _int_range_bits(m.bitfield_size, signed)
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            raise _Bad(f"{value!r} does not fit in a {m.bitfield_size}-bit bitfield")
        start = m.bit_offset // 8
        nbytes = (m.bit_offset % 8 + m.bitfield_size + 7) // 8
        word = int.from_bytes(out[start:start + nbytes], "little")
        shift = m.bit_offset % 8
        mask = ((1 << m.bitfield_size) - 1) << shift
        word = (word & ~mask) | ((value << shift) & mask)
        out[start:start + nbytes] = word.to_bytes(nbytes, "little")
        return
    off = m.bit_offset // 8
    size = btf.size_of(m.type)
    out[off:off + size] = _encode(btf, m.type, value, bytes(out[off:off + size]))


def _int_range_bits(bits: int, signed: bool) -> tuple[int, int]:
    return (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)


def _encode_int(value: Any, size: int, signed: bool) -> bytes:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Bad(f"{value!r} is not an integer")
    lo, hi = _int_range(size, signed)
    if not lo <= value <= hi:
        raise _Bad(f"{value} is out of range [{lo}, {hi}]")
    return value.to_bytes(size, "little", signed=signed)


def _decode(btf: BTF, type_id: int, raw: bytes, depth: int = 0) -> Any:
    from ..btf.types import Kind

    if depth > 64:  # a struct that contains itself (hostile BTF) would recurse forever
        raise ObjectError(f"BTF: type id {type_id} nests too deep to decode (loop?)")
    t = btf[btf.resolve(type_id)]
    k = t.kind
    if k == Kind.INT:
        if t.is_bool:
            return bool(int.from_bytes(raw, "little"))
        return int.from_bytes(raw, "little", signed=t.signed)
    if k == Kind.PTR:
        return int.from_bytes(raw, "little")
    if k in (Kind.ENUM, Kind.ENUM64):
        return int.from_bytes(raw, "little", signed=t.signed)
    if k == Kind.FLOAT:
        return struct.unpack({4: "<f", 8: "<d"}[len(raw)], raw)[0] if len(raw) in (4, 8) else raw
    if k == Kind.ARRAY:
        et = btf[btf.resolve(t.elem_type)]
        esize = btf.size_of(t.elem_type)
        if et.kind == Kind.INT and esize == 1 and (et.is_char or et.name == "char"):
            text = raw.split(b"\0", 1)[0]
            try:
                return text.decode()
            except UnicodeDecodeError:
                return text
        count = min(t.nelems, len(raw) // esize) if esize else 0  # never past the bytes
        return [_decode(btf, t.elem_type, raw[i * esize:(i + 1) * esize], depth + 1)
                for i in range(count)]
    if k in (Kind.STRUCT, Kind.UNION):
        out: dict[str, Any] = {}
        for m in t.members:
            if not m.name:
                continue
            if m.bitfield_size:
                start = m.bit_offset // 8
                nbytes = (m.bit_offset % 8 + m.bitfield_size + 7) // 8
                word = int.from_bytes(raw[start:start + nbytes], "little")
                val = (word >> (m.bit_offset % 8)) & ((1 << m.bitfield_size) - 1)
                mt = btf[btf.resolve(m.type)]
                if getattr(mt, "signed", False) and val >> (m.bitfield_size - 1):
                    val -= 1 << m.bitfield_size
                out[m.name] = val
            else:
                off = m.bit_offset // 8
                out[m.name] = _decode(btf, m.type, raw[off:off + btf.size_of(m.type)],
                                      depth + 1)
        return out
    return raw


_TRUE = {"1", "true", "yes", "on", "y"}
_FALSE = {"0", "false", "no", "off", "n"}


def _parse_text(btf: BTF, type_id: int, text: str) -> Any:
    """Turn ``--set`` text into the Python value ``_encode`` expects for this type."""
    from ..btf.types import Kind

    t = btf[btf.resolve(type_id)]
    k = t.kind
    if k == Kind.INT and t.is_bool:
        low = text.strip().lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise _Bad(f"{text!r} is not a bool (use true/false)")
    if k == Kind.PTR:
        # An address the BPF program reads; no number typed on a command line is one
        # (the verifier treats it as a scalar anyway). Python callers can still write it.
        raise _Bad("pointers cannot be set from the command line (a pointer's value is "
                   "an address, not a setting)")
    if k == Kind.INT:
        if t.is_char and t.size == 1 and len(text) == 1 and not text.isdigit():
            return text
        return _parse_int(text)
    if k in (Kind.ENUM, Kind.ENUM64):
        names = {n for n, _ in t.values}
        return text if text in names else _parse_int(text)
    if k == Kind.FLOAT:
        try:
            return float(text)
        except ValueError:
            raise _Bad(f"{text!r} is not a number") from None
    if k == Kind.ARRAY:
        et = btf[btf.resolve(t.elem_type)]
        if et.kind == Kind.INT and btf.size_of(t.elem_type) == 1 and not text.startswith("["):
            return text
        if text.startswith("["):
            return _parse_json(text)
        return [_parse_text(btf, t.elem_type, part.strip()) for part in text.split(",")
                if part.strip()]
    if k in (Kind.STRUCT, Kind.UNION):
        return _parse_json(text)
    raise _Bad(f"cannot set {k.name} variables from text")


def _parse_int(text: str) -> int:
    try:
        return int(text.strip(), 0)
    except ValueError:
        raise _Bad(f"{text!r} is not an integer") from None


def _parse_json(text: str) -> Any:
    try:
        import json  # --set with a list/struct value only

        return json.loads(text)
    except ValueError as e:
        raise _Bad(f"{text!r} is not valid JSON ({e})") from None
