"""Text and JSON dumps of BTF.

``dump_raw`` reproduces ``bpftool btf dump file F format raw`` (bpftool 7.1)
byte for byte, so the two can be diffed. A kernel's BTF has ~130k types and
dumps to ~300k lines; a Python statement per line, or an object per printed
field, costs more than bpftool's whole run. So the raw dump is one
``bytes % tuple``:

* the arguments are the type section's own u32 words (one ``tolist``), where a
  single pass over the records overwrites each ``name_off, info`` pair with
  ``type id, name`` and each vlen entry's name offset with its name;
* the template joins one small template per distinct ``info`` word (kind,
  kind_flag and vlen fix a record's layout and its fixed text, FUNC linkage
  included; vmlinux has ~300 of them), each consuming exactly its record's words.

The rare words printed other than as plain decimals (INT encoding, signed enum
values, bitfield offsets, VAR linkage, ...) are replaced by ready values first,
bytes ones shown with ``%s``. Output stays bytes: names are copied from the
string table undecoded, exactly as bpftool prints them.
"""

from __future__ import annotations

from itertools import accumulate, count, repeat
from operator import add

from ..errors import BTFError
from ..runtime.compat import zip_strict
from .kinds import KIND_STR as _KIND_STR
from .types import BTF, Kind, Type

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

_INT_ENC = {0: "(none)", 1: "SIGNED", 2: "CHAR", 4: "BOOL"}
_FUNC_LINKAGE = {0: "static", 1: "global", 2: "extern"}
_VAR_LINKAGE = {0: "static", 1: "global", 2: "extern"}

_B_INT_ENC = {k: v.encode() for k, v in _INT_ENC.items()}
_B_FUNC_LINKAGE = {k: v.encode() for k, v in _FUNC_LINKAGE.items()}
_B_VAR_LINKAGE = {k: v.encode() for k, v in _VAR_LINKAGE.items()}
_B_UNKNOWN_LINKAGE = b"(unknown)"

# Words per vlen entry of the kinds whose entries start with a name offset.
_NAMED_ENTRY_WORDS = {Kind.STRUCT: 3, Kind.UNION: 3, Kind.ENUM: 2, Kind.FUNC_PROTO: 2,
                      Kind.ENUM64: 3}
# Kinds with words printed as something other than a plain decimal (INT encoding,
# VAR linkage, DECL_TAG's signed index, ...), with kind_flag clear / set.
_REWRITTEN = (Kind.INT, Kind.VAR, Kind.DATASEC, Kind.DECL_TAG, Kind.ENUM64)
_REWRITTEN_KFLAG = (*_REWRITTEN, Kind.STRUCT, Kind.UNION, Kind.ENUM)  # bitfields, signed
_BLANK = 1
_REWRITE = 4
# What the walk does per record, by the top byte of ``info`` (kind | kind_flag << 7):
# 0 nothing; _BLANK empty the size/type word, which ARRAY and FWD do not print;
# 2 or 3 name every vlen entry (that many words each); _REWRITE call
# _RawDump.rewrite (which names the entries too).
_ACTION = bytes(
    _REWRITE if (top & 0x1F) in (_REWRITTEN_KFLAG if top & 0x80 else _REWRITTEN)
    else _BLANK if (top & 0x1F) in (Kind.ARRAY, Kind.FWD)
    else _NAMED_ENTRY_WORDS.get(top & 0x1F, 0)
    for top in range(256)
)


def _template(info: int) -> bytes:
    """The format template of every record with this ``info`` word, newline included.

    Arguments, in word order: type id (in the name_off slot), name (in the info
    slot), then the record's remaining words, entry names in place of their
    offsets; the other ``%s`` slots hold bytes from ``_RawDump.rewrite``.
    """
    kind = (info >> 24) & 0x1F
    kflag = info >> 31
    vlen = info & 0xFFFF
    head = b"[%d] " + _KIND_STR.get(kind, "").encode() + b" '%s'"
    if kind in (Kind.PTR, Kind.TYPEDEF, Kind.VOLATILE, Kind.CONST, Kind.RESTRICT,
                Kind.TYPE_TAG):
        return head + b" type_id=%d\n"
    if kind == Kind.FUNC:
        return head + b" type_id=%d linkage=" + _B_FUNC_LINKAGE.get(
            vlen, _B_UNKNOWN_LINKAGE) + b"\n"
    if kind == Kind.FUNC_PROTO:
        return (head + b" ret_type_id=%%d vlen=%d" % vlen
                + b"\n\t'%s' type_id=%d" * vlen + b"\n")
    if kind == Kind.STRUCT or kind == Kind.UNION:
        member = b"\n\t'%s' type_id=%d bits_offset=" + (b"%s" if kflag else b"%d")
        return head + b" size=%%d vlen=%d" % vlen + member * vlen + b"\n"
    if kind == Kind.ENUM or kind == Kind.ENUM64:
        sign = b"SIGNED" if kflag else b"UNSIGNED"
        if kind == Kind.ENUM:
            value = b"\n\t'%s' val=%d"
        else:
            value = b"\n\t'%s' val=%d%s" + (b"LL" if kflag else b"ULL")
        return head + b" encoding=%s size=%%d vlen=%d" % (sign, vlen) + value * vlen + b"\n"
    if kind == Kind.INT:
        return head + b" size=%d%s\n"
    if kind == Kind.ARRAY:
        return head + b"%s type_id=%d index_type_id=%d nr_elems=%d\n"
    if kind == Kind.FWD:
        return head + b"%s fwd_kind=" + (b"union" if kflag else b"struct") + b"\n"
    if kind == Kind.VAR:
        return head + b" type_id=%d, linkage=%s\n"
    if kind == Kind.DATASEC:
        return (head + b" size=%%d vlen=%d" % vlen
                + b"\n\ttype_id=%d offset=%d size=%s" * vlen + b"\n")
    if kind == Kind.FLOAT:
        return head + b" size=%d\n"
    if kind == Kind.DECL_TAG:
        return head + b" type_id=%d component_idx=%d\n"
    raise BTFError(f"BTF: unknown kind {kind} in info word 0x{info:08x}")


class _Templates(dict[int, bytes]):
    """``info`` word -> template; a kernel has a few hundred distinct ones."""

    def __missing__(self, info: int) -> bytes:
        t = self[info] = _template(info)
        return t


class _Names(dict[int, bytes]):
    """String offset -> name bytes, pre-filled with every string of the local table
    (offset 0 reads ``(anon)``, as bpftool prints it).

    Misses (base strings of split BTF, offsets into the middle of a string) fall
    back to the checked lookup, which raises ObjectError outside the string table.
    """

    def __init__(self, btf: BTF) -> None:
        super().__init__()
        self._btf = btf
        strings, base = btf.string_section()
        if len(strings):
            parts = bytes(strings[:-1]).split(b"\0")
            offsets = accumulate(map(add, map(len, parts), repeat(1)), initial=base)
            self.update(zip(offsets, parts))
        self[0] = b"(anon)"

    def __missing__(self, off: int) -> bytes:
        name = self._btf.string_bytes(off)
        self[off] = name
        return name


class _RawDump:
    """One ``dump_raw_bytes`` call: the argument words and the names."""

    def __init__(self, btf: BTF) -> None:
        self.btf = btf
        self.names = _Names(btf)
        self.args: list[Any] = btf.words.tolist()

    def run(self) -> bytes:
        """Turn the words into arguments in one pass over the types, then format."""
        btf = self.btf
        offsets = btf.offsets
        if not len(offsets):
            return b""
        args = self.args
        infos = list(map(args.__getitem__, map(add, offsets, repeat(1))))
        name_at = self.names.__getitem__
        action = _ACTION
        rewrites: list[int] = []
        add_rewrite = rewrites.append
        for tid, p, info in zip(count(btf.start_id), offsets, infos):
            args[p + 1] = name_at(args[p])
            args[p] = tid
            step = action[info >> 24]
            if step:
                if step == _BLANK:
                    args[p + 2] = b""
                elif step == _REWRITE:
                    add_rewrite(p)
                    add_rewrite(info)
                elif info & 0xFFFF > 2:
                    entry_names = slice(p + 3, p + 3 + step * (info & 0xFFFF), step)
                    args[entry_names] = map(name_at, args[entry_names])
                elif info & 0xFFFF:  # one or two entries (most FUNC_PROTOs): no slices
                    args[p + 3] = name_at(args[p + 3])
                    if info & 0xFFFF == 2:
                        args[p + 3 + step] = name_at(args[p + 3 + step])
        it = iter(rewrites)
        for p, info in zip_strict(it, it):
            self.rewrite(p, info)
        return b"".join(map(_Templates().__getitem__, infos)) % tuple(args)

    def rewrite(self, p: int, info: int) -> None:
        """Prepare the words of record ``p`` that are not printed as plain decimals."""
        args = self.args
        kind = (info >> 24) & 0x1F
        kflag = info >> 31
        vlen = info & 0xFFFF
        step = _NAMED_ENTRY_WORDS.get(kind)
        if step is not None:
            entry_names = slice(p + 3, p + 3 + step * vlen, step)
            args[entry_names] = map(self.names.__getitem__, args[entry_names])
        if kind == Kind.STRUCT or kind == Kind.UNION:
            for q in range(p + 5, p + 3 + 3 * vlen, 3):
                c = args[q]
                args[q] = b"%d bitfield_size=%d" % (c & 0xFFFFFF, c >> 24) if c >> 24 else b"%d" % c
        elif kind == Kind.ENUM:
            for q in range(p + 4, p + 3 + 2 * vlen, 2):
                v = args[q]
                args[q] = v - (1 << 32) if v >> 31 else v
        elif kind == Kind.ENUM64:
            for q in range(p + 4, p + 3 + 3 * vlen, 3):
                lo, hi = args[q], args[q + 1]
                v = lo | hi << 32
                args[q] = v - (1 << 64) if kflag and hi >> 31 else v
                args[q + 1] = b""
        elif kind == Kind.INT:
            d = args[p + 3]
            args[p + 3] = b" bits_offset=%d nr_bits=%d encoding=%s" % (
                (d >> 16) & 0xFF, d & 0xFF, _B_INT_ENC.get((d >> 24) & 0x0F, b"UNKN"))
        elif kind == Kind.VAR:
            args[p + 3] = _B_VAR_LINKAGE.get(args[p + 3], _B_UNKNOWN_LINKAGE)
        elif kind == Kind.DECL_TAG:
            v = args[p + 3]
            args[p + 3] = v - (1 << 32) if v >> 31 else v
        elif kind == Kind.DATASEC:
            self.datasec(p, vlen)

    def datasec(self, p: int, vlen: int) -> None:
        """Each DATASEC entry's size slot also names the variable's kind and name."""
        args = self.args
        btf = self.btf
        ntypes = len(btf)
        for q in range(p + 3, p + 3 + 3 * vlen, 3):
            var = args[q]
            text = b"%d" % args[q + 2]
            if var == 0:
                text += b" (UNKNOWN '(anon)')"
            elif var < ntypes:
                v_name, v_info, _ = btf.raw(var)
                text += b" (%s '%s')" % (_KIND_STR[(v_info >> 24) & 0x1F].encode(),
                                         self.names[v_name])
            args[q + 2] = text


def dump_raw_bytes(btf: BTF) -> bytes:
    """Every type of ``btf`` (not its base) in bpftool's ``format raw`` text, as bytes.

    Names are copied undecoded, so this is what bpftool writes even for names
    that are not UTF-8; the CLI writes it straight to stdout's buffer.
    """
    return _RawDump(btf).run()


def dump_raw(btf: BTF) -> str:
    """Every type of ``btf`` (not its base) in bpftool's ``format raw`` text."""
    return dump_raw_bytes(btf).decode("utf-8", "replace")


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
    import json

    doc = {"start_id": btf.start_id, "types": [type_to_dict(t) for t in btf]}
    return json.dumps(doc, indent=indent)


def dump_btf_file(path: str, fmt: str = "raw") -> None:
    """``coreframe btf dump``: write FILE's types to stdout: raw (bytes), JSON, or C
    (a ``vmlinux.h``, see ``coreframe.btf.cdump``).

    The running kernel's vmlinux goes through the index cache (coreframe.btf.kernel)
    instead of being parsed record by record.
    """
    import os
    import sys

    from .kernel import VMLINUX_PATH, btf_from_path, vmlinux

    btf = vmlinux() if os.path.realpath(path) == VMLINUX_PATH else btf_from_path(path)
    if fmt == "raw" or fmt == "c":
        if fmt == "c":
            from .cdump import dump_c_bytes

            data = dump_c_bytes(btf)
        else:
            data = dump_raw_bytes(btf)
        sys.stdout.flush()
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    text = dump_json(btf, indent=1)
    sys.stdout.write(text)
    if text and not text.endswith("\n"):
        sys.stdout.write("\n")
