"""Make an object's BTF acceptable to the running kernel, then load it.

clang leaves two things for the loader: DATASEC sizes and VAR offsets (taken from
the ELF section sizes and symbol values), and extern linkage the kernel rejects.
Older kernels also lack newer BTF kinds; like libbpf we rewrite those in place into
kinds of the same record size so type ids stay stable for func_info, line_info and
CO-RE. Works on the raw bytes with ``struct``: no dependency on the BTF decoder.
"""

from __future__ import annotations

import struct

from ..errors import BTFError
from ..runtime.compat import zip_strict
from ..runtime.startup import Record
from . import kinds as K

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping


_HDR = struct.Struct("<HBBIIIII")
_TYPE = struct.Struct("<III")

# Bytes after the 12-byte common header: fixed part, and per-vlen-entry part.
_EXTRA = {
    K.BTF_KIND_INT: 4, K.BTF_KIND_ARRAY: 12, K.BTF_KIND_VAR: 4, K.BTF_KIND_DECL_TAG: 4,
}
_PER_ENTRY = {
    K.BTF_KIND_STRUCT: 12, K.BTF_KIND_UNION: 12, K.BTF_KIND_ENUM: 8,
    K.BTF_KIND_FUNC_PROTO: 8, K.BTF_KIND_DATASEC: 12, K.BTF_KIND_ENUM64: 12,
}

# the kinds the sanitizer can rewrite, named as in coreframe.features.btf_kinds()
KERNEL_KINDS = K.SANITIZED_KINDS


class _Type(Record, fields="id off kind vlen name_off"):
    __slots__ = ()

    id: int
    off: int  # offset of the record inside the type section
    kind: int
    vlen: int
    name_off: int


_tuple_new = tuple.__new__


def _info(kind: int, vlen: int = 0, kflag: int = 0) -> int:
    return (kflag << 31) | (kind << 24) | vlen


def _split(data: bytes) -> tuple[bytearray, bytearray]:
    """(type section, string section) of a raw BTF blob."""
    if len(data) < _HDR.size:
        raise BTFError("BTF is truncated (no header)")
    magic, version, _flags, hdr_len, type_off, type_len, str_off, str_len = _HDR.unpack_from(data)
    if magic != K.BTF_MAGIC:
        raise BTFError(f"BTF has bad magic {magic:#x} (big-endian objects are not supported)")
    if version != K.BTF_VERSION:
        raise BTFError(f"BTF version {version} is not supported")
    t0, s0 = hdr_len + type_off, hdr_len + str_off
    if t0 + type_len > len(data) or s0 + str_len > len(data):
        raise BTFError("BTF sections run past the end of the data")
    return bytearray(data[t0:t0 + type_len]), bytearray(data[s0:s0 + str_len])


def _join(types: bytes | bytearray, strings: bytes | bytearray) -> bytes:
    hdr = _HDR.pack(K.BTF_MAGIC, K.BTF_VERSION, 0, _HDR.size, 0, len(types), len(types),
                    len(strings))
    return hdr + bytes(types) + bytes(strings)


def _walk(types: bytes | bytearray) -> list[_Type]:
    out: list[_Type] = []
    pos, tid = 0, 1
    while pos < len(types):
        if pos + 12 > len(types):
            raise BTFError(f"BTF type {tid} is truncated")
        name_off, info, _ = _TYPE.unpack_from(types, pos)
        kind, vlen = (info >> 24) & 0x1F, info & 0xFFFF
        if kind == 0 or kind > K.BTF_KIND_ENUM64:
            raise BTFError(f"BTF type {tid} has unknown kind {kind}")
        out.append(_tuple_new(_Type, (tid, pos, kind, vlen, name_off)))
        pos += 12 + _EXTRA.get(kind, 0) + _PER_ENTRY.get(kind, 0) * vlen
        tid += 1
    if pos != len(types):
        raise BTFError("BTF type section has trailing bytes")
    return out


def _name(strings: bytes | bytearray, off: int) -> str:
    end = strings.find(b"\0", off)
    return bytes(strings[off:end if end >= 0 else len(strings)]).decode(errors="replace")


def _add_string(strings: bytearray, text: str) -> int:
    """Offset of ``text`` in the string section, appending it when absent."""
    needle = text.encode() + b"\0"
    at = strings.find(b"\0" + needle)
    if at >= 0:
        return at + 1
    off = len(strings)
    strings.extend(needle)
    return off


def _rename_params(types: bytearray, by_id: dict[int, _Type], func: _Type, name_off: int) -> None:
    """Give every parameter of ``func``'s prototype the name at ``name_off``."""
    proto = by_id.get(_TYPE.unpack_from(types, func.off)[2])
    if proto is None or proto.kind != K.BTF_KIND_FUNC_PROTO:
        return
    for i in range(proto.vlen):
        struct.pack_into("<I", types, proto.off + 12 + 8 * i, name_off)


def _kernel_kinds() -> dict[str, bool]:
    """Which kinds the running kernel takes, asked of the feature probes: the one lazy
    import from btf up to features (the probes load BTF, they never sanitize it)."""
    from ..features import btf_kinds

    return btf_kinds()


def sanitize(
    btf_bytes: bytes,
    section_sizes: Mapping[str, int],
    symbol_offsets: Mapping[str, Mapping[str, int]],
    *,
    kernel_kinds: Mapping[str, bool] | None = None,
) -> bytes:
    """Fix DATASEC sizes/VAR offsets from the ELF and rewrite what the kernel rejects.

    ``section_sizes`` maps section name -> size; ``symbol_offsets`` maps section name
    -> {variable name: offset}. ``kernel_kinds`` overrides the kernel probes (keys in
    ``KERNEL_KINDS``), e.g. to produce BTF for an older kernel.
    """
    types, strings = _split(btf_bytes)
    all_types = _walk(types)
    by_id = {t.id: t for t in all_types}
    kinds = dict(_kernel_kinds() if kernel_kinds is None else kernel_kinds)
    for k in KERNEL_KINDS:
        kinds.setdefault(k, True)
    appended = bytearray()
    next_id = len(all_types) + 1
    dummy_var: int | None = None
    dummy_name = 0
    int64: int | None = None

    def append(record: bytes) -> int:
        nonlocal next_id
        appended.extend(record)
        next_id += 1
        return next_id - 1

    def ksym_dummy() -> int:
        """One int VAR 'dummy_ksym' stands in for every extern kfunc, as in libbpf."""
        nonlocal dummy_var, dummy_name
        if dummy_var is None:
            int_id = next(
                (t.id for t in all_types if t.kind == K.BTF_KIND_INT
                 and struct.unpack_from("<I", types, t.off + 8)[0] == 4
                 and struct.unpack_from("<I", types, t.off + 12)[0] & 0xFF == 32), None)
            if int_id is None:
                int_id = append(_TYPE.pack(0, _info(K.BTF_KIND_INT), 4)
                                + struct.pack("<I", (K.BTF_INT_SIGNED << 24) | 32))
            dummy_name = _add_string(strings, "dummy_ksym")
            dummy_var = append(_TYPE.pack(dummy_name, _info(K.BTF_KIND_VAR), int_id)
                               + struct.pack("<I", K.BTF_VAR_GLOBAL_ALLOCATED))
        return dummy_var

    # 1. DATASEC sizes and VAR offsets (before any kind rewrite).
    for t in all_types:
        if t.kind != K.BTF_KIND_DATASEC:
            continue
        sec = _name(strings, t.name_off)
        size = struct.unpack_from("<I", types, t.off + 8)[0]
        if size == 0 and sec in section_sizes:
            struct.pack_into("<I", types, t.off + 8, section_sizes[sec])
        offsets = symbol_offsets.get(sec, {})
        raw = [struct.unpack_from("<III", types, t.off + 12 + 12 * i) for i in range(t.vlen)]
        targets = []
        for vtype, _, _ in raw:
            var = by_id.get(vtype)
            if var is None:
                raise BTFError(f"BTF DATASEC {sec!r} refers to missing type {vtype}")
            targets.append(var)
        if any(v.kind == K.BTF_KIND_FUNC for v in targets):
            # extern kfuncs (.ksyms): the kernel takes only VARs in a DATASEC; lay the
            # entries out back to back and name the kfunc params like the dummy
            entries = []
            off = 0
            for (vtype, _, vsize), var in zip_strict(raw, targets):
                if var.kind == K.BTF_KIND_FUNC:
                    entries.append((ksym_dummy(), off, 4))
                    _rename_params(types, by_id, var, dummy_name)
                    off += 4
                else:
                    entries.append((vtype, off, vsize))
                    off += vsize
            struct.pack_into("<I", types, t.off + 8, off)
        else:
            ordered = []
            for i, ((vtype, voff, vsize), var) in enumerate(zip_strict(raw, targets)):
                if var.kind == K.BTF_KIND_VAR:
                    linkage = struct.unpack_from("<I", types, var.off + 12)[0]
                    vname = _name(strings, var.name_off)
                    if linkage != K.BTF_VAR_GLOBAL_EXTERN and vname in offsets:
                        voff = offsets[vname]
                ordered.append((voff, i, vtype, vsize))
            ordered.sort()  # the kernel wants ascending offsets; ties keep their order
            entries = [(vtype, voff, vsize) for voff, _, vtype, vsize in ordered]
        for i, entry in enumerate(entries):
            struct.pack_into("<III", types, t.off + 12 + 12 * i, *entry)

    # 2. Linkage the kernel refuses, and kinds it lacks (only VARs and FUNCs can
    # need a change when the kernel has every kind: the common case, kept short).
    every_kind = all(kinds[k] for k in KERNEL_KINDS)
    for t in all_types:
        if every_kind and t.kind != K.BTF_KIND_VAR and t.kind != K.BTF_KIND_FUNC:
            continue
        o = t.off
        name_off, info, size_or_type = _TYPE.unpack_from(types, o)
        if t.kind == K.BTF_KIND_VAR:
            linkage = struct.unpack_from("<I", types, o + 12)[0]
            if linkage == K.BTF_VAR_GLOBAL_EXTERN:
                struct.pack_into("<I", types, o + 12, K.BTF_VAR_GLOBAL_ALLOCATED)
            if not kinds["datasec"]:
                _TYPE.pack_into(types, o, name_off, _info(K.BTF_KIND_INT), 1)
                struct.pack_into("<I", types, o + 12, 8)
        elif t.kind == K.BTF_KIND_DATASEC and not kinds["datasec"]:
            _TYPE.pack_into(types, o, name_off, _info(K.BTF_KIND_STRUCT, t.vlen), size_or_type)
            for i in range(t.vlen):
                at = o + 12 + 12 * i
                vtype, voff, _vsize = struct.unpack_from("<III", types, at)
                var = by_id.get(vtype)
                struct.pack_into("<III", types, at, var.name_off if var else 0, vtype, voff * 8)
            end = strings.find(b"\0", name_off)
            strings[name_off:end] = strings[name_off:end].replace(b".", b"_")
        elif t.kind == K.BTF_KIND_FUNC:
            linkage = info & 0xFFFF
            if not kinds["func"]:
                _TYPE.pack_into(types, o, name_off, _info(K.BTF_KIND_TYPEDEF), size_or_type)
            elif linkage == K.BTF_FUNC_EXTERN or (linkage == K.BTF_FUNC_GLOBAL
                                                 and not kinds["func_global"]):
                new = K.BTF_FUNC_GLOBAL if kinds["func_global"] else K.BTF_FUNC_STATIC
                _TYPE.pack_into(types, o, name_off, _info(K.BTF_KIND_FUNC, new), size_or_type)
        elif t.kind == K.BTF_KIND_FUNC_PROTO and not kinds["func"]:
            # params (name_off, type) become enumerators (name_off, value): same size
            _TYPE.pack_into(types, o, name_off, _info(K.BTF_KIND_ENUM, t.vlen), 4)
        elif t.kind == K.BTF_KIND_FLOAT and not kinds["float"]:
            # anonymous: "float" is no valid struct name
            _TYPE.pack_into(types, o, 0, _info(K.BTF_KIND_STRUCT, 0), size_or_type)
        elif t.kind == K.BTF_KIND_DECL_TAG and not kinds["decl_tag"]:
            _TYPE.pack_into(types, o, name_off, _info(K.BTF_KIND_INT), 1)
            struct.pack_into("<I", types, o + 12, 8)
        elif t.kind == K.BTF_KIND_TYPE_TAG and not kinds["type_tag"]:
            _TYPE.pack_into(types, o, 0, _info(K.BTF_KIND_CONST), size_or_type)
        elif t.kind == K.BTF_KIND_ENUM64 and not kinds["enum64"]:
            if int64 is None:
                int64 = append(_TYPE.pack(0, _info(K.BTF_KIND_INT), 8) + struct.pack("<I", 64))
            _TYPE.pack_into(types, o, name_off, _info(K.BTF_KIND_UNION, t.vlen), size_or_type)
            for i in range(t.vlen):
                at = o + 12 + 12 * i
                mname = struct.unpack_from("<I", types, at)[0]
                struct.pack_into("<III", types, at, mname, int64, 0)
    return _join(bytes(types) + bytes(appended), strings)


__all__ = ["sanitize", "KERNEL_KINDS"]
