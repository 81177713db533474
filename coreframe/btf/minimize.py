"""The minimal BTF a set of objects' CO-RE relocations need (``coreframe btf min``).

What ``bpftool gen min_core_btf`` makes for kernels without BTF: every relocation of
every object is resolved against the full target BTF (``CoreRelocator``, which reports
each candidate that matches), and only what the matching needs is kept:

* field relocations: the candidate's root type and, along its access path, each
  struct/union member taken (with its type, through typedefs, qualifiers and array
  elements); other members are dropped, but sizes and bit offsets stay, so every
  offset, size, signedness and shift computes as before. A zero-length array kept in
  the middle of a struct keeps the struct's last member too, so it is not mistaken for a
  flexible array (CO-RE bounds-checks one and not the other);
* type relocations (exists, size, target id): the candidate with what the
  compatibility check walks (pointers, arrays, function prototypes), structs without
  members (the check stops at their kind);
* type-matches relocations: the candidate with every member, recursively, and behind
  pointers the pointed-to type's kind and name;
* enum value relocations: the whole enum.

Every matching candidate is kept, not only the first, so a relocation that the full
BTF finds ambiguous is ambiguous in the minimal one too. A pointer to a type nothing
needs points to void. Types keep their relative order; ids are renumbered
(:attr:`MinBTF.ids` maps old to new, which is what a ``bpf_core_type_id_kernel()``
result differs by).
"""

from __future__ import annotations

from ..errors import RelocationError
from ..runtime.startup import Record
from .kinds import (
    BTF_KIND_ARRAY,
    BTF_KIND_CONST,
    BTF_KIND_DATASEC,
    BTF_KIND_DECL_TAG,
    BTF_KIND_ENUM,
    BTF_KIND_ENUM64,
    BTF_KIND_FUNC,
    BTF_KIND_FUNC_PROTO,
    BTF_KIND_INT,
    BTF_KIND_PTR,
    BTF_KIND_RESTRICT,
    BTF_KIND_STRUCT,
    BTF_KIND_TYPE_TAG,
    BTF_KIND_TYPEDEF,
    BTF_KIND_UNION,
    BTF_KIND_VAR,
    BTF_KIND_VOLATILE,
    BTF_MAGIC,
    BTF_VERSION,
)
from .relo import BPF_CORE_TYPE_MATCHES

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

    from .ext import BTFExt, CoreRelo
    from .types import BTF

_MODIFIERS = frozenset((BTF_KIND_CONST, BTF_KIND_VOLATILE, BTF_KIND_RESTRICT, BTF_KIND_TYPEDEF,
                        BTF_KIND_TYPE_TAG))
_COMPOSITES = frozenset((BTF_KIND_STRUCT, BTF_KIND_UNION))
# kinds whose third header word is a type id (the others': a size, or unused)
_REFERS = _MODIFIERS | {BTF_KIND_PTR, BTF_KIND_FUNC, BTF_KIND_VAR, BTF_KIND_DECL_TAG}
_FIELD_KINDS = frozenset(range(0, 6))
_ENUMVAL_KINDS = frozenset((10, 11))
_ALL: set[int] = set()  # a composite kept with every member (compared by identity)
_HDR_LEN = 24


class MinBTF(Record, fields="data ids relocations objects"):
    """The minimal BTF (``data``), old -> new type ids, how many relocations of how
    many objects it was made for."""

    __slots__ = ()

    data: bytes
    ids: dict[int, int]
    relocations: int
    objects: int


def _kind(btf: BTF, tid: int) -> int:
    return (btf.raw(tid)[1] >> 24) & 0x1F


def _vlen(btf: BTF, tid: int) -> int:
    return btf.raw(tid)[1] & 0xFFFF


class Minimizer:
    """Marks what the relocations of each added object touch in ``target``; :meth:`build`
    writes it as a BTF of its own."""

    def __init__(self, target: BTF) -> None:
        self.target = target
        # type id -> None (no members), a set of member indexes, or _ALL (every member)
        self._kept: dict[int, set[int] | None] = {}
        self._followed: set[int] = set()
        self._matched: set[tuple[int, bool]] = set()
        self.relocations = 0
        self.objects = 0

    # ---- 1. resolve and mark -------------------------------------------------------------

    def add(self, local: BTF, ext: BTFExt) -> dict[CoreRelo, object]:
        """Resolve every CO-RE relocation of one object (in .BTF.ext order, as the loader
        does) and mark what each matching candidate needs; returns the outcomes."""
        from .core import CoreRelocator

        relocator = CoreRelocator(local, self.target, on_match=self._on_match)
        outcomes = relocator.resolve_all(ext.core_relos)
        self.relocations += sum(len(relos) for relos in ext.core_relos.values())
        self.objects += 1
        return dict(outcomes)

    def _on_match(self, relo: CoreRelo, btf: BTF, root: int, raw: tuple[int, ...]) -> None:
        if btf is not self.target:
            raise RelocationError("btf min: module BTF candidates are not supported")
        kind = relo.kind
        if kind in _FIELD_KINDS:
            self._mark_field_path(root, raw)
        elif kind in _ENUMVAL_KINDS:
            self._mark(root, follow_ptrs=False)
        elif kind == BPF_CORE_TYPE_MATCHES:
            self._mark_match(root, behind_ptr=False)
        else:
            self._mark(root, follow_ptrs=True)

    def _keep(self, tid: int) -> None:
        if tid and tid not in self._kept:
            self._kept[tid] = None

    def _keep_member(self, tid: int, idx: int) -> None:
        members = self._kept.get(tid)
        if members is _ALL:
            return
        if members is None:
            members = self._kept[tid] = set()
        members.add(idx)

    def _mark(self, tid: int, follow_ptrs: bool) -> None:
        """Keep ``tid`` and what its kind refers to (pointees only with ``follow_ptrs``);
        a struct's members are kept by who needs them."""
        btf = self.target
        while tid:
            if tid in self._kept and (not follow_ptrs or tid in self._followed):
                return
            self._keep(tid)
            if follow_ptrs:
                self._followed.add(tid)
            kind = _kind(btf, tid)
            if kind in _MODIFIERS or (kind == BTF_KIND_PTR and follow_ptrs):
                tid = btf.raw(tid)[2]
            elif kind == BTF_KIND_ARRAY:
                t = btf[tid]
                self._mark(t.index_type, follow_ptrs)
                tid = t.elem_type
            elif kind == BTF_KIND_FUNC_PROTO:
                t = btf[tid]
                for _name, ptype in t.params:
                    self._mark(ptype, follow_ptrs)
                tid = t.return_type
            else:
                return

    def _mark_field_path(self, root: int, raw: tuple[int, ...]) -> None:
        """libbpf's walk of a matched field spec: each member taken, with its type."""
        btf = self.target
        tid = root
        self._mark(tid, follow_ptrs=False)
        for idx in raw[1:]:
            tid = btf.resolve(tid)
            kind = _kind(btf, tid)
            if kind in _COMPOSITES:
                self._keep_member(tid, idx)
                member = btf.member_at(tid, idx)
                self._mark(member.type, follow_ptrs=False)
                last = _vlen(btf, tid) - 1
                inner = btf.resolve(member.type)
                if (idx != last and _kind(btf, inner) == BTF_KIND_ARRAY
                        and btf[inner].nelems == 0):
                    self._keep_member(tid, last)
                    self._mark(btf.member_at(tid, last).type, follow_ptrs=False)
                tid = member.type
            elif kind == BTF_KIND_ARRAY:
                tid = btf[tid].elem_type
            else:  # the relocator matched this path: it cannot step into anything else
                raise RelocationError(f"btf min: access path of [{root}] steps into "
                                      f"[{tid}], neither a struct/union nor an array")

    def _mark_match(self, tid: int, behind_ptr: bool) -> None:
        """What TYPE_MATCHES compares: composites whole (by value), their kind and name
        alone behind a pointer; enums whole."""
        btf = self.target
        while tid and (tid, behind_ptr) not in self._matched:
            self._matched.add((tid, behind_ptr))
            self._keep(tid)
            kind = _kind(btf, tid)
            if kind in _MODIFIERS:
                tid = btf.raw(tid)[2]
            elif kind == BTF_KIND_PTR:
                tid, behind_ptr = btf.raw(tid)[2], True
            elif kind == BTF_KIND_ARRAY:
                t = btf[tid]
                self._mark(t.index_type, follow_ptrs=False)
                tid = t.elem_type
            elif kind == BTF_KIND_FUNC_PROTO:
                t = btf[tid]
                for _name, ptype in t.params:
                    self._mark_match(ptype, behind_ptr)
                tid = t.return_type
            elif kind in _COMPOSITES and not behind_ptr:
                self._kept[tid] = _ALL
                for member in btf[tid].members:
                    self._mark_match(member.type, behind_ptr)
                return
            else:
                return

    # ---- 2. write ------------------------------------------------------------------------

    def build(self) -> MinBTF:
        """The kept types, renumbered in their original order, as raw BTF."""
        btf = self.target
        order = sorted(self._kept)
        ids = {old: new for new, old in enumerate(order, 1)}
        strings = bytearray(b"\0")
        placed: dict[bytes, int] = {b"": 0}

        def name(off: int) -> int:
            if not off:
                return 0
            text = btf.string_bytes(off)
            got = placed.get(text)
            if got is None:
                got = placed[text] = len(strings)
                strings.extend(text + b"\0")
            return got

        def ref(tid: int) -> int:
            return ids.get(tid, 0)  # a type nothing needs: void

        words, first = btf.words, btf.start_id
        offsets_of = btf.offsets
        out: list[int] = []
        for tid in order:
            p = offsets_of[tid - first]
            name_off, info, st = words[p], words[p + 1], words[p + 2]
            kind = (info >> 24) & 0x1F
            vlen = info & 0xFFFF
            body = p + 3
            if kind in _REFERS:
                st = ref(st)
            if kind in _COMPOSITES:
                keep = self._kept[tid]
                picked = range(vlen) if keep is _ALL else sorted(keep or ())
                out += [name(name_off), (info & ~0xFFFF) | len(picked), st]
                for i in picked:
                    q = body + 3 * i
                    out += [name(words[q]), ref(words[q + 1]), words[q + 2]]
                continue
            out += [name(name_off), info, st]
            if kind == BTF_KIND_INT:
                out.append(words[body])
            elif kind == BTF_KIND_ARRAY:
                out += [ref(words[body]), ref(words[body + 1]), words[body + 2]]
            elif kind == BTF_KIND_ENUM:
                for i in range(vlen):
                    q = body + 2 * i
                    out += [name(words[q]), words[q + 1]]
            elif kind == BTF_KIND_ENUM64:
                for i in range(vlen):
                    q = body + 3 * i
                    out += [name(words[q]), words[q + 1], words[q + 2]]
            elif kind == BTF_KIND_FUNC_PROTO:
                for i in range(vlen):
                    q = body + 2 * i
                    out += [name(words[q]), ref(words[q + 1])]
            elif kind in (BTF_KIND_VAR, BTF_KIND_DECL_TAG):
                out.append(words[body])
            elif kind == BTF_KIND_DATASEC:  # pragma: no cover - never a CO-RE candidate
                raise RelocationError("btf min: a DATASEC cannot be a CO-RE candidate")
        return MinBTF(_encode(out, bytes(strings)), ids, self.relocations, self.objects)


def _encode(words: list[int], strings: bytes) -> bytes:
    from array import array

    types = array("I", words).tobytes()
    header = b"".join((
        BTF_MAGIC.to_bytes(2, "little"), bytes((BTF_VERSION, 0)),
        _HDR_LEN.to_bytes(4, "little"), (0).to_bytes(4, "little"),
        len(types).to_bytes(4, "little"), len(types).to_bytes(4, "little"),
        len(strings).to_bytes(4, "little"),
    ))
    return header + types + strings


def min_core_btf(target: BTF, objects: Iterable[tuple[BTF, BTFExt]]) -> MinBTF:
    """The minimal BTF for the CO-RE relocations of ``objects`` (their .BTF and
    .BTF.ext) against ``target``."""
    m = Minimizer(target)
    for local, ext in objects:
        m.add(local, ext)
    return m.build()
