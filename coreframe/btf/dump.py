"""Text and JSON dumps of BTF.

``dump_raw`` reproduces ``bpftool btf dump file F format raw`` (bpftool 7.1)
byte for byte, so the two can be diffed. It decodes records straight from the
raw u32 words instead of building type objects: a kernel dump is ~300k lines
and object allocation would dominate.
"""

from __future__ import annotations

import json
from itertools import accumulate, count
from typing import Any

from ..errors import ObjectError
from .types import BTF, Kind, Type

_INT_ENC = {0: "(none)", 1: "SIGNED", 2: "CHAR", 4: "BOOL"}
_FUNC_LINKAGE = {0: "static", 1: "global", 2: "extern"}
_VAR_LINKAGE = {0: "static", 1: "global", 2: "extern"}
_KIND_STR = {k.value: k.name for k in Kind}
_KIND_STR[0] = "UNKNOWN"
_KIND_STR[Kind.VOLATILE] = "VOLATILE"


class _Names(dict[int, str]):
    """String offset -> quoted-ready name; misses (base strings, mid-string offsets)
    fall back to the checked lookup, which raises ObjectError when out of range."""

    def __init__(self, btf: BTF) -> None:
        super().__init__()
        self._btf = btf

    def __missing__(self, off: int) -> str:
        name = self._btf.string(off) if off else "(anon)"
        self[off] = name
        return name


def _names(btf: BTF) -> _Names:
    """Pre-decode the whole local string table in one pass (C-speed split/decode)."""
    names = _Names(btf)
    start, length = btf._str_start, btf._str_len
    if length:
        parts = btf._data[start:start + length - 1].split(b"\0")
        offsets = accumulate((len(p) + 1 for p in parts), initial=btf._str_base)
        names.update(zip(offsets, (p.decode("utf-8", "replace") for p in parts), strict=False))
    names[0] = "(anon)"
    return names


def dump_raw(btf: BTF) -> str:
    """Every type of ``btf`` (not its base) in bpftool's ``format raw`` text."""
    w = btf._words
    S = _names(btf)
    ntypes = len(btf)
    out: list[str] = []
    add = out.append
    extend = out.extend
    int_enc = _INT_ENC
    func_link = _FUNC_LINKAGE
    for tid, p in zip(count(btf.start_id), btf._offsets):
        name_off = w[p]
        info = w[p + 1]
        st = w[p + 2]
        kind = (info >> 24) & 0x1F
        vlen = info & 0xFFFF
        if kind == 12:
            add(f"[{tid}] FUNC '{S[name_off]}' type_id={st} "
                f"linkage={func_link.get(vlen, '(unknown)')}")
        elif kind == 13:
            add(f"[{tid}] FUNC_PROTO '{S[name_off]}' ret_type_id={st} vlen={vlen}")
            if vlen:
                m = w[p + 3:p + 3 + 2 * vlen]
                extend([f"\t'{S[a]}' type_id={b}" for a, b in zip(m[0::2], m[1::2], strict=False)])
        elif kind == 2:
            add(f"[{tid}] PTR '{S[name_off]}' type_id={st}")
        elif kind == 4 or kind == 5:
            add(f"[{tid}] {'STRUCT' if kind == 4 else 'UNION'} '{S[name_off]}' "
                f"size={st} vlen={vlen}")
            if vlen:
                m = w[p + 3:p + 3 + 3 * vlen]
                if info >> 31:
                    extend([
                        f"\t'{S[a]}' type_id={b} bits_offset={c & 0xFFFFFF} bitfield_size={c >> 24}"
                        if c >> 24 else f"\t'{S[a]}' type_id={b} bits_offset={c}"
                        for a, b, c in zip(m[0::3], m[1::3], m[2::3], strict=False)
                    ])
                else:
                    extend([f"\t'{S[a]}' type_id={b} bits_offset={c}"
                            for a, b, c in zip(m[0::3], m[1::3], m[2::3], strict=False)])
        elif kind == 10:
            add(f"[{tid}] CONST '{S[name_off]}' type_id={st}")
        elif kind == 3:
            add(f"[{tid}] ARRAY '{S[name_off]}' type_id={w[p + 3]} "
                f"index_type_id={w[p + 4]} nr_elems={w[p + 5]}")
        elif kind == 8:
            add(f"[{tid}] TYPEDEF '{S[name_off]}' type_id={st}")
        elif kind == 6:
            signed = info >> 31
            add(f"[{tid}] ENUM '{S[name_off]}' encoding={'SIGNED' if signed else 'UNSIGNED'} "
                f"size={st} vlen={vlen}")
            if vlen:
                m = w[p + 3:p + 3 + 2 * vlen]
                if signed:
                    extend([f"\t'{S[a]}' val={b - (1 << 32) if b >> 31 else b}"
                            for a, b in zip(m[0::2], m[1::2], strict=False)])
                else:
                    extend([f"\t'{S[a]}' val={b}" for a, b in zip(m[0::2], m[1::2], strict=False)])
        elif kind == 19:
            signed = info >> 31
            add(f"[{tid}] ENUM64 '{S[name_off]}' "
                f"encoding={'SIGNED' if signed else 'UNSIGNED'} size={st} vlen={vlen}")
            m = w[p + 3:p + 3 + 3 * vlen]
            for a, lo, hi in zip(m[0::3], m[1::3], m[2::3], strict=False):
                v = lo | hi << 32
                if signed:
                    add(f"\t'{S[a]}' val={v - (1 << 64) if hi >> 31 else v}LL")
                else:
                    add(f"\t'{S[a]}' val={v}ULL")
        elif kind == 1:
            data = w[p + 3]
            add(f"[{tid}] INT '{S[name_off]}' size={st} bits_offset={(data >> 16) & 0xFF} "
                f"nr_bits={data & 0xFF} encoding={int_enc.get((data >> 24) & 0x0F, 'UNKN')}")
        elif kind == 14:
            add(f"[{tid}] VAR '{S[name_off]}' type_id={st}, "
                f"linkage={_VAR_LINKAGE.get(w[p + 3], '(unknown)')}")
        elif kind == 15:
            add(f"[{tid}] DATASEC '{S[name_off]}' size={st} vlen={vlen}")
            m = w[p + 3:p + 3 + 3 * vlen]
            for a, b, c in zip(m[0::3], m[1::3], m[2::3], strict=False):
                line = f"\ttype_id={a} offset={b} size={c}"
                if a < ntypes:
                    if a == 0:
                        line += " (UNKNOWN '(anon)')"
                    else:
                        v_name, v_info, _ = btf.raw(a)
                        line += f" ({_KIND_STR[(v_info >> 24) & 0x1F]} '{S[v_name]}')"
                add(line)
        elif kind == 7:
            add(f"[{tid}] FWD '{S[name_off]}' fwd_kind={'union' if info >> 31 else 'struct'}")
        elif kind == 9:
            add(f"[{tid}] VOLATILE '{S[name_off]}' type_id={st}")
        elif kind == 11:
            add(f"[{tid}] RESTRICT '{S[name_off]}' type_id={st}")
        elif kind == 16:
            add(f"[{tid}] FLOAT '{S[name_off]}' size={st}")
        elif kind == 17:
            idx = w[p + 3]
            add(f"[{tid}] DECL_TAG '{S[name_off]}' type_id={st} "
                f"component_idx={idx - (1 << 32) if idx >> 31 else idx}")
        elif kind == 18:
            add(f"[{tid}] TYPE_TAG '{S[name_off]}' type_id={st}")
        else:  # pragma: no cover - the scan rejects unknown kinds
            raise ObjectError(f"BTF: type id {tid} has unknown kind {kind}")
    if not out:
        return ""
    out.append("")
    return "\n".join(out)


def type_to_dict(t: Type) -> dict[str, Any]:
    """A JSON-ready dict for one decoded type; keys are stable across releases."""
    d: dict[str, Any] = {"id": t.id, "kind": t.kind.name, "name": t.name}
    k = t.kind
    if k == Kind.INT:
        d.update(size=t.size, bits_offset=t.offset, nr_bits=t.bits,  # type: ignore[attr-defined]
                 signed=t.signed, char=t.is_char, bool=t.is_bool)  # type: ignore[attr-defined]
    elif k in (Kind.PTR, Kind.TYPEDEF, Kind.VOLATILE, Kind.CONST, Kind.RESTRICT, Kind.TYPE_TAG):
        d["type_id"] = t.type  # type: ignore[attr-defined]
    elif k == Kind.ARRAY:
        d.update(type_id=t.elem_type, index_type_id=t.index_type,  # type: ignore[attr-defined]
                 nr_elems=t.nelems)  # type: ignore[attr-defined]
    elif k in (Kind.STRUCT, Kind.UNION):
        d["size"] = t.size  # type: ignore[attr-defined]
        d["members"] = [
            {"name": m.name, "type_id": m.type, "bits_offset": m.bit_offset,
             "bitfield_size": m.bitfield_size}
            for m in t.members  # type: ignore[attr-defined]
        ]
    elif k in (Kind.ENUM, Kind.ENUM64):
        d.update(size=t.size, signed=t.signed)  # type: ignore[attr-defined]
        d["values"] = [{"name": n, "val": v} for n, v in t.values]  # type: ignore[attr-defined]
    elif k == Kind.FWD:
        d["fwd_kind"] = "union" if t.is_union else "struct"  # type: ignore[attr-defined]
    elif k == Kind.FUNC:
        d.update(type_id=t.type,  # type: ignore[attr-defined]
                 linkage=_FUNC_LINKAGE.get(t.linkage, "(unknown)"))  # type: ignore[attr-defined]
    elif k == Kind.FUNC_PROTO:
        d["ret_type_id"] = t.return_type  # type: ignore[attr-defined]
        d["params"] = [{"name": p.name, "type_id": p.type}
                       for p in t.params]  # type: ignore[attr-defined]
    elif k == Kind.VAR:
        d.update(type_id=t.type,  # type: ignore[attr-defined]
                 linkage=_VAR_LINKAGE.get(t.linkage, "(unknown)"))  # type: ignore[attr-defined]
    elif k == Kind.DATASEC:
        d["size"] = t.size  # type: ignore[attr-defined]
        d["vars"] = [{"type_id": v.type, "offset": v.offset, "size": v.size}
                     for v in t.vars]  # type: ignore[attr-defined]
    elif k == Kind.FLOAT:
        d["size"] = t.size  # type: ignore[attr-defined]
    elif k == Kind.DECL_TAG:
        d.update(type_id=t.type, component_idx=t.component_idx)  # type: ignore[attr-defined]
    return d


def dump_json(btf: BTF, indent: int | None = None) -> str:
    """``{"start_id": N, "types": [...]}`` with one object per type, in id order."""
    doc = {"start_id": btf.start_id, "types": [type_to_dict(t) for t in btf]}
    return json.dumps(doc, indent=indent)
