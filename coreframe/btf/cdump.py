"""``vmlinux.h`` from BTF: every type as a compilable C definition.

The output is what ``bpftool btf dump file F format c`` writes (bpftool 7.1 on
libbpf 1.1), so the two can be diffed. The facts of the algorithm are libbpf's
btf_dump:

* Types are visited in id order; each visit first orders what the type needs
  (``_order``), depth first: a type *embedded* in another (a member by value, an
  array element, a typedef's target) must be complete before it, a type reached
  through a pointer only needs a forward declaration, unless it is anonymous
  (then its definition is written inline, and what it embeds must come first).
  Named structs/unions, enums (named, or anonymous and referenced by nothing:
  top-level constants), forward declarations and typedefs are queued as
  top-level definitions.
* Writing a queued definition (``_emit``) writes first what its members need:
  a struct met again while it is being written gets ``struct X;`` before use;
  a typedef met while its target is being written is written early.
* A struct whose members are not naturally aligned, or whose size is not a
  multiple of its alignment, is ``__attribute__((packed))`` (a union too, where
  libbpf only looks at structs and so mis-sizes such a union); holes are filled
  with ``long: N;``-style anonymous bitfields so every member lands at its BTF
  offset; one-byte and word-sized enums get ``__attribute__((mode(...)))``.
* Two types with the same name (a kernel has a few: two ``struct
  bpf_map_desc``) are told apart as ``NAME___2``, counted in the order names are
  first written; enumerators share the typedef namespace.

Declarators (``int (*fn)(void *)``) come from ``coreframe.btf.cdecl`` in its
bpftool spelling, the same printer that spells types in messages.
The run works on per-type tables (kind, name, link) built from the raw records
in one pass, so a kernel's ~130k types need no decoded type objects.
"""

from __future__ import annotations

import sys
from itertools import accumulate, repeat
from operator import add

from ..errors import BTFError
from ..runtime.compat import zip_strict
from .cdecl import BPFTOOL, Declarator, TypeView
from .kinds import Kind

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .types import BTF

_INT, _PTR, _ARRAY, _STRUCT, _UNION = Kind.INT, Kind.PTR, Kind.ARRAY, Kind.STRUCT, Kind.UNION
_ENUM, _ENUM64, _FWD, _TYPEDEF = Kind.ENUM, Kind.ENUM64, Kind.FWD, Kind.TYPEDEF
_VOLATILE, _CONST, _RESTRICT, _TYPE_TAG = Kind.VOLATILE, Kind.CONST, Kind.RESTRICT, Kind.TYPE_TAG
_FUNC, _FUNC_PROTO, _VAR, _DATASEC = Kind.FUNC, Kind.FUNC_PROTO, Kind.VAR, Kind.DATASEC
_FLOAT, _DECL_TAG = Kind.FLOAT, Kind.DECL_TAG

HEADER = (
    "#ifndef __VMLINUX_H__\n"
    "#define __VMLINUX_H__\n"
    "\n"
    "#ifndef BPF_NO_PRESERVE_ACCESS_INDEX\n"
    "#pragma clang attribute push (__attribute__((preserve_access_index)), apply_to = record)\n"
    "#endif\n"
    "\n"
)
FOOTER = (
    "#ifndef BPF_NO_PRESERVE_ACCESS_INDEX\n"
    "#pragma clang attribute pop\n"
    "#endif\n"
    "\n"
    "#endif /* __VMLINUX_H__ */\n"
)

# Order states: a definition being ordered (ORDERING) and met again is a cycle,
# resolvable only through a pointer to a named struct/union.
_NOT_ORDERED, _ORDERING, _ORDERED = 0, 1, 2
# Emit states: a struct met again while EMITTING needs a forward declaration.
_NOT_EMITTED, _EMITTING, _EMITTED = 0, 1, 2

_MODIFIERS = frozenset({_VOLATILE, _CONST, _RESTRICT, _TYPE_TAG})
_ONE_REF = frozenset({_VOLATILE, _CONST, _RESTRICT, _PTR, _TYPEDEF, _FUNC, _VAR, _DECL_TAG,
                      _TYPE_TAG})
_SIZED = frozenset({_INT, _STRUCT, _UNION, _ENUM, _ENUM64, _DATASEC, _FLOAT})
_RESOLVE_THROUGH = frozenset({_TYPEDEF, _VOLATILE, _CONST, _RESTRICT, _VAR, _DECL_TAG,
                              _TYPE_TAG})
_U32_MAX = 0xFFFFFFFF
_EINVAL = -22
_E2BIG = -7
_MAX_RESOLVE_DEPTH = 32  # libbpf's bound on typedef/modifier/array chains when sizing
# names the kernel's compiler knows and a header must not redefine
_COMPILER_BUILTINS = frozenset({"__builtin_va_list"})
# GCC's internal Arm SIMD polynomial types, aliased to standard ones when met
_MISSING_BASE_TYPES = {
    "__Poly8_t": "unsigned char",
    "__Poly16_t": "unsigned short",
    "__Poly64_t": "unsigned long long",
    "__Poly128_t": "unsigned __int128",
}
_LONG_NAMES = frozenset({
    "long", "long int", "int long", "unsigned long", "long unsigned", "unsigned long int",
    "unsigned int long", "long unsigned int", "long int unsigned", "int unsigned long",
    "int long unsigned",
})
_PFX = ["\t" * i for i in range(14)]


def _pfx(lvl: int) -> str:
    """Indentation of nesting level ``lvl`` (libbpf stops indenting at 13 tabs)."""
    return _PFX[lvl] if lvl < 13 else _PFX[13]


def _roundup(x: int, y: int) -> int:
    """``roundup(x, y)`` with C's truncating division; ``x`` when ``y`` is 0 (only
    malformed BTF has zero-sized or unalignable members)."""
    if y == 0:
        return x
    n = x + y - 1
    q = abs(n) // abs(y)
    if (n < 0) != (y < 0):
        q = -q
    return q * y


class _Tables(TypeView):
    """Kind, name and links of every type id (base types included), read from the
    raw records once; the declarator and the dumper read these lists."""

    def __init__(self, btf: BTF) -> None:
        chain = []
        b: BTF | None = btf
        while b is not None:
            chain.append(b)
            b = b.base
        chain.reverse()
        self.btf = btf
        kinds = [0]
        infos = [0]
        name_offs = [0]
        refs = [0]
        words_of: list[object] = [None]
        pos = [0]
        names: dict[int, str] = {0: ""}
        for blob in chain:
            w = blob.words
            offs = blob.offsets
            n = len(offs)
            if not n:
                continue
            info = list(map(w.__getitem__, map(add, offs, repeat(1))))
            infos += info
            kinds += [(i >> 24) & 0x1F for i in info]
            name_offs += map(w.__getitem__, offs)
            refs += map(w.__getitem__, map(add, offs, repeat(2)))
            words_of += repeat(w, n)
            pos += offs
            names.update(_string_table(blob))
        self.kinds = kinds
        self.infos = infos
        self.name_offs = name_offs
        self.refs = refs
        self._words_of = words_of
        self._pos = pos
        self._names = names
        self.count = len(kinds)

    # ---- TypeView -------------------------------------------------------------------

    def kind(self, tid: int) -> int:
        return self.kinds[tid]

    def string(self, off: int) -> str:
        s = self._names.get(off)
        if s is None:  # an offset into the middle of a string
            s = self._names[off] = self.btf.string_bytes(off).decode("utf-8", "surrogateescape")
        return s

    def name(self, tid: int) -> str:
        return self.string(self.name_offs[tid])

    def has_name(self, tid: int) -> bool:
        return self.name_offs[tid] != 0

    def ref(self, tid: int) -> int:
        return self.refs[tid]

    def vlen(self, tid: int) -> int:
        return self.infos[tid] & 0xFFFF

    def kflag(self, tid: int) -> bool:
        return bool(self.infos[tid] >> 31)

    def fwd_is_union(self, tid: int) -> bool:
        return bool(self.infos[tid] >> 31)

    def words(self, tid: int, first: int, count: int) -> list[int]:
        """``count`` u32 words of a record from its word ``first`` (3 = first vlen entry)."""
        p = self._pos[tid] + first
        return self._words_of[tid][p:p + count].tolist()  # type: ignore[index]

    def array(self, tid: int) -> tuple[int, int]:
        elem, _index, nelems = self.words(tid, 3, 3)
        return elem, nelems

    def array_index(self, tid: int) -> int:
        return self.words(tid, 4, 1)[0]

    def params(self, tid: int) -> list[tuple[str, int]]:
        raw = self.words(tid, 3, 2 * self.vlen(tid))
        string = self.string
        return [(string(raw[i]), raw[i + 1]) for i in range(0, len(raw), 2)]

    def members(self, tid: int) -> list[tuple[str, int, int, int]]:
        """(name, type, bit offset, bitfield size) of each STRUCT/UNION member."""
        raw = self.words(tid, 3, 3 * self.vlen(tid))
        string = self.string
        if self.kflag(tid):
            return [(string(raw[i]), raw[i + 1], raw[i + 2] & 0xFFFFFF, raw[i + 2] >> 24)
                    for i in range(0, len(raw), 3)]
        return [(string(raw[i]), raw[i + 1], raw[i + 2], 0) for i in range(0, len(raw), 3)]

    def member_types(self, tid: int) -> list[int]:
        return self.words(tid, 3, 3 * self.vlen(tid))[1::3]

    def raw_member_offsets(self, tid: int) -> list[int]:
        """Each member's offset word as stored (bitfield size in the top byte with kind_flag)."""
        return self.words(tid, 3, 3 * self.vlen(tid))[2::3]


def _string_table(blob: BTF) -> dict[int, str]:
    """String offset -> string of one blob's own string section (split-aware offsets).

    Decoded with surrogateescape so names that are not UTF-8 come back out as the
    bytes they were, as bpftool copies them."""
    strings, base = blob.string_section()
    if not len(strings):
        return {}
    parts = bytes(strings[:-1]).decode("utf-8", "surrogateescape").split("\0")
    sizes = map(len, (p.encode("utf-8", "surrogateescape") for p in parts))
    offsets = accumulate(map(add, sizes, repeat(1)), initial=base)
    return dict(zip(offsets, parts))


class CHeaderDump:
    """One ``format c`` run over a BTF: the state libbpf's btf_dump keeps per type."""

    def __init__(self, btf: BTF) -> None:
        self.t = t = _Tables(btf)
        n = t.count
        self.n = n
        self.order_state = bytearray(n)
        self.emit_state = bytearray(n)
        self.fwd_emitted = bytearray(n)
        self.referenced = bytearray(n)
        # void is always complete
        self.order_state[0] = _ORDERED
        self.emit_state[0] = _EMITTED
        self.resolved = bytearray(n)
        self.cached_names: dict[int, str] = {}
        self.type_names: dict[str, int] = {}  # struct/union/enum tag -> occurrences
        self.ident_names: dict[str, int] = {}  # typedef and enumerator names -> occurrences
        self.ptr_sz = self._pointer_size()
        self._align: dict[int, int] = {}
        self._size: dict[int, int] = {}
        self.decl = Declarator(t, BPFTOOL, type_name=self.type_name,
                               ident_name=self.ident_name, inline_def=self._inline_def)
        self.out: list[str] = []
        self.queue: list[int] = []

    # ---- the run ----------------------------------------------------------------------

    def run(self) -> str:
        """The whole header: every type in id order, each after what it needs."""
        self._mark_referenced()
        out = self.out
        out.append(HEADER)
        queue = self.queue
        order = self._order
        emit = self._emit
        limit = sys.getrecursionlimit()
        # definitions nest as deep as structs embed structs; a loop of modifiers or
        # typedefs in a hostile BTF recurses until the limit and is reported below
        sys.setrecursionlimit(max(limit, 20000))
        try:
            for tid in range(1, self.n):
                queue.clear()
                order(tid, False)
                for q in queue:
                    emit(q, 0)
        except RecursionError:
            raise BTFError("BTF: type graph loops through typedefs or modifiers "
                              "(no C declaration can express it)") from None
        finally:
            sys.setrecursionlimit(limit)
        out.append(FOOTER)
        return "".join(out)

    def _pointer_size(self) -> int:
        """Pointer size as libbpf guesses it: the size of a 4- or 8-byte ``long``."""
        t = self.t
        kinds, refs = t.kinds, t.refs
        for tid in range(1, t.count):
            if kinds[tid] == _INT and refs[tid] in (4, 8) and t.name(tid) in _LONG_NAMES:
                return refs[tid]
        return 8

    def _mark_referenced(self) -> None:
        """Mark every type some other type refers to: an anonymous enum nobody refers
        to is a top-level set of constants, one that is referred to is written inline."""
        t = self.t
        kinds, refs = t.kinds, t.refs
        referenced = self.referenced
        n = self.n
        targets: list[int] = []
        add_all = targets.extend
        for tid in range(1, n):
            k = kinds[tid]
            if k in _ONE_REF:
                targets.append(refs[tid])
            elif k == _ARRAY:
                add_all(t.words(tid, 3, 2))
            elif k == _STRUCT or k == _UNION:
                add_all(t.member_types(tid))
            elif k == _FUNC_PROTO:
                # the parameters; the return type is held in place by nothing
                add_all(t.words(tid, 3, 2 * t.vlen(tid))[1::2])
                if refs[tid] >= n:
                    targets.append(refs[tid])  # out of range: reported below
            elif k == _DATASEC:
                add_all(t.words(tid, 3, 3 * t.vlen(tid))[0::3])
        if targets and max(targets) >= n:
            raise BTFError(f"BTF: a type refers to type id {max(targets)}, "
                              f"past the last id {n - 1}")
        for ref in targets:
            referenced[ref] = 1

    # ---- ordering ---------------------------------------------------------------------

    def _order(self, tid: int, through_ptr: bool) -> bool:
        """Queue what ``tid`` needs, then ``tid`` if it is a definition; True when the
        link to it is strong (it must be complete first), False when a forward
        declaration is enough."""
        state = self.order_state
        if state[tid] == _ORDERED:
            return True
        t = self.t
        k = t.kinds[tid]
        if state[tid] == _ORDERING:
            # a loop through a pointer to a named struct/union: its forward
            # declaration breaks it
            if (k == _STRUCT or k == _UNION) and through_ptr and t.name_offs[tid]:
                return False
            raise BTFError(f"BTF: unsatisfiable type cycle at type id {tid} "
                              "(a struct contains itself)")
        if k == _INT or k == _FLOAT:
            state[tid] = _ORDERED
            return False
        if k == _PTR:
            strong = self._order(t.refs[tid], True)
            state[tid] = _ORDERED
            return strong
        if k == _ARRAY:
            return self._order(t.array(tid)[0], False)
        if k == _STRUCT or k == _UNION:
            named = t.name_offs[tid] != 0
            # through a pointer a named struct needs only `struct X;`; an anonymous
            # one is defined inline, so what it embeds must come first
            if through_ptr and named:
                return False
            state[tid] = _ORDERING
            for m in t.member_types(tid):
                self._order(m, False)
            if named:
                self.queue.append(tid)
            state[tid] = _ORDERED
            return True
        if k == _ENUM or k == _ENUM64 or k == _FWD:
            if t.name_offs[tid] or not self.referenced[tid]:
                self.queue.append(tid)
            state[tid] = _ORDERED
            return True
        if k == _TYPEDEF:
            strong = self._order(t.refs[tid], through_ptr)
            if through_ptr and not strong:
                return False
            self.queue.append(tid)
            state[tid] = _ORDERED
            return True
        if k in _MODIFIERS:
            return self._order(t.refs[tid], through_ptr)
        if k == _FUNC_PROTO:
            strong = self._order(t.refs[tid], through_ptr)
            for _, p in t.params(tid):
                if self._order(p, through_ptr):
                    strong = True
            return strong
        # FUNC, VAR, DATASEC, DECL_TAG: nothing of C's type system to define
        state[tid] = _ORDERED
        return False

    # ---- emitting ---------------------------------------------------------------------

    def _emit(self, tid: int, cont_id: int) -> None:
        """Write ``tid``'s definition (``cont_id`` 0) or what a use of it inside the
        definition of ``cont_id`` needs first."""
        state = self.emit_state
        if state[tid] == _EMITTED:
            return
        t = self.t
        k = t.kinds[tid]
        out = self.out
        if state[tid] == _EMITTING:
            # met again while being written
            if self.fwd_emitted[tid]:
                return
            if k == _STRUCT or k == _UNION:
                # a struct refers to itself from inside: no declaration needed
                if tid == cont_id or not t.name_offs[tid]:
                    return
                out.append(self._struct_fwd(tid) + ";\n\n")
                self.fwd_emitted[tid] = 1
            elif k == _TYPEDEF:
                # the typedef is needed before its target is complete (a pointer
                # to it inside the target): write it now
                if not self._blacklisted(tid):
                    self._typedef_def(tid, 0)
                    out.append(";\n\n")
                self.fwd_emitted[tid] = 1
            return
        top_level = cont_id == 0
        if k == _INT:
            alias = _MISSING_BASE_TYPES.get(self.type_name(tid))
            if alias is not None:
                out.append(f"typedef {alias} {self.type_name(tid)};\n\n")
            state[tid] = _EMITTED
        elif k == _ENUM or k == _ENUM64:
            if top_level:
                self._enum_def(tid, 0, out)
                out.append(";\n\n")
            state[tid] = _EMITTED
        elif k == _PTR or k in _MODIFIERS:
            self._emit(t.refs[tid], cont_id)
        elif k == _ARRAY:
            self._emit(t.array(tid)[0], cont_id)
        elif k == _FWD:
            out.append(("union " if t.fwd_is_union(tid) else "struct ")
                       + self.type_name(tid) + ";\n\n")
            state[tid] = _EMITTED
        elif k == _TYPEDEF:
            state[tid] = _EMITTING
            self._emit(t.refs[tid], tid)
            if not self.fwd_emitted[tid] and not self._blacklisted(tid):
                self._typedef_def(tid, 0)
                out.append(";\n\n")
            state[tid] = _EMITTED
        elif k == _STRUCT or k == _UNION:
            state[tid] = _EMITTING
            named = t.name_offs[tid] != 0
            if top_level or not named:
                # the members are written out here (a top-level definition, or an
                # anonymous struct inline): first what they need
                inner = tid if named else cont_id
                for m in t.member_types(tid):
                    self._emit(m, inner)
            elif not self.fwd_emitted[tid] and tid != cont_id:
                out.append(self._struct_fwd(tid) + ";\n\n")
                self.fwd_emitted[tid] = 1
            if top_level:
                self._struct_def(tid, 0, out)
                out.append(";\n\n")
                state[tid] = _EMITTED
            else:
                state[tid] = _NOT_EMITTED
        elif k == _FUNC_PROTO:
            self._emit(t.refs[tid], cont_id)
            for _, p in t.params(tid):
                self._emit(p, cont_id)

    def _blacklisted(self, tid: int) -> bool:
        """A typedef of a compiler built-in, which the compiler defines itself."""
        return bool(self.t.name_offs[tid]) and self.t.name(tid) in _COMPILER_BUILTINS

    # ---- names ------------------------------------------------------------------------

    def _resolve_name(self, tid: int, names: dict[str, int]) -> str:
        """The name written for ``tid``: its own, or ``NAME___N`` for the N-th type
        of that name, counted when first written."""
        t = self.t
        if not t.name_offs[tid]:
            return ""
        if self.resolved[tid]:
            return self.cached_names.get(tid) or t.name(tid)
        orig = t.name(tid)
        self.resolved[tid] = 1
        k = t.kinds[tid]
        if k == _FWD or (k == _ENUM and not t.vlen(tid)):
            return orig
        dups = names.get(orig, 0) + 1
        names[orig] = dups
        if dups > 1:
            new = f"{orig}___{dups}"
            if len(new.encode("utf-8", "surrogateescape")) > 255:  # libbpf's name buffer
                new = new.encode("utf-8", "surrogateescape")[:255].decode(
                    "utf-8", "surrogateescape")
            self.cached_names[tid] = new
            return new
        return orig

    def type_name(self, tid: int) -> str:
        return self._resolve_name(tid, self.type_names)

    def ident_name(self, tid: int) -> str:
        return self._resolve_name(tid, self.ident_names)

    # ---- sizes and alignment ----------------------------------------------------------

    def align_of(self, tid: int) -> int:
        """Alignment as libbpf's btf__align_of computes it; -EINVAL for types
        without one (void, functions, forward declarations)."""
        hit = self._align.get(tid)
        if hit is not None:
            return hit
        t = self.t
        k = t.kinds[tid] if tid else 0
        if k == _INT or k == _ENUM or k == _ENUM64 or k == _FLOAT:
            a = min(self.ptr_sz, t.refs[tid])
        elif k == _PTR:
            a = self.ptr_sz
        elif k == _TYPEDEF or k in _MODIFIERS:
            a = self.align_of(t.refs[tid])
        elif k == _ARRAY:
            a = self.align_of(t.array(tid)[0])
        elif k == _STRUCT or k == _UNION:
            a = self._struct_align(tid)
        else:
            a = _EINVAL
        self._align[tid] = a
        return a

    def _struct_align(self, tid: int) -> int:
        t = self.t
        max_align = 1
        kflag = t.kflag(tid)
        for mtype, off in zip_strict(t.member_types(tid), t.raw_member_offsets(tid)):
            align = self.align_of(mtype)
            if align <= 0:
                return align
            max_align = max(max_align, align)
            # a member off its natural alignment: the struct is packed
            if not (kflag and off >> 24) and off % (8 * align):
                return 1
        if t.refs[tid] % max_align:
            return 1
        return max_align

    def resolve_size(self, tid: int) -> int:
        """Size in bytes as libbpf's btf__resolve_size computes it (negative: none)."""
        hit = self._size.get(tid)
        if hit is not None:
            return hit
        t = self.t
        nelems = 1
        size = -1
        cur = tid
        for _ in range(_MAX_RESOLVE_DEPTH):
            if cur == 0:
                break
            k = t.kinds[cur]
            if k in _SIZED:
                size = t.refs[cur]
                break
            if k == _PTR:
                size = self.ptr_sz
                break
            if k in _RESOLVE_THROUGH:
                cur = t.refs[cur]
            elif k == _ARRAY:
                elem, count = t.array(cur)
                if nelems and count > _U32_MAX // nelems:
                    size = _E2BIG
                    break
                nelems *= count
                cur = elem
            else:
                break
        if size < 0:
            result = _EINVAL if size == -1 else size
        elif nelems and size > _U32_MAX // nelems:
            result = _E2BIG
        else:
            result = nelems * size
        self._size[tid] = result
        return result

    def _is_packed(self, tid: int) -> bool:
        """Whether a struct's layout needs ``__attribute__((packed))``."""
        t = self.t
        max_align = 1
        kflag = t.kflag(tid)
        for mtype, off in zip_strict(t.member_types(tid), t.raw_member_offsets(tid)):
            align = self.align_of(mtype)
            if align and not (kflag and off >> 24):
                # C compares the u32 offset with an int divisor turned unsigned
                div = (8 * align) & _U32_MAX
                if off % div:
                    return True
            max_align = max(align, max_align)
        return bool(t.refs[tid] % max_align)

    # ---- definitions ------------------------------------------------------------------

    def _struct_fwd(self, tid: int) -> str:
        word = "struct" if self.t.kinds[tid] == _STRUCT else "union"
        name = self.type_name(tid)
        return word + " " + name if self.t.name_offs[tid] else word

    def _inline_def(self, tid: int, lvl: int, out: list[str]) -> None:
        """An anonymous struct, union or enum, written where it is used."""
        k = self.t.kinds[tid]
        if k == _STRUCT or k == _UNION:
            self._struct_def(tid, lvl, out)
        else:
            self._enum_def(tid, lvl, out)

    def _struct_def(self, tid: int, lvl: int, out: list[str]) -> None:
        t = self.t
        is_struct = t.kinds[tid] == _STRUCT
        size = t.refs[tid]
        align = self.align_of(tid)
        # libbpf asks this of structs only; a union whose size is no multiple of its
        # alignment (cros_ec's 18-byte union holding a u64) is packed just the same
        packed = self._is_packed(tid)
        out.append(self._struct_fwd(tid) + " {")
        members = t.members(tid)
        off = 0
        prev_bitfield = False
        indent = "\n" + _pfx(lvl + 1)
        emit_decl = self.decl.emit
        for fname, mtype, m_off, m_sz in members:
            m_align = 1 if packed else self.align_of(mtype)
            self._padding(off, m_off, m_align, prev_bitfield and m_sz != 0, lvl + 1, out)
            out.append(indent)
            emit_decl(mtype, fname, lvl + 1, out)
            if m_sz:
                out.append(f": {m_sz};")
                off = m_off + m_sz
                prev_bitfield = True
            else:
                out.append(";")
                off = m_off + max(0, self.resolve_size(mtype)) * 8
                prev_bitfield = False
        if is_struct:
            end = (size * 8) & _U32_MAX
            if end >= 1 << 31:
                end -= 1 << 32
            self._padding(off, end, align, False, lvl + 1, out)
        # an empty struct stays on one line
        if members or size:
            out.append("\n" + _pfx(lvl) + "}")
        else:
            out.append("}")
        if packed:
            out.append(" __attribute__((packed))")

    def _padding(self, cur: int, nxt: int, nxt_align: int, in_bitfield: bool, lvl: int,
                 out: list[str]) -> None:
        """Anonymous bitfields filling the hole [cur, nxt) bits before a member, so the
        compiler puts it at its BTF offset: the widest of long/int/short/char that
        reaches an aligned offset inside the hole, then whole units, then the rest."""
        if cur >= nxt:
            return
        pads = (("long", self.ptr_sz * 8), ("int", 32), ("short", 16), ("char", 8))
        pfx = "\n" + _pfx(lvl)
        pad_type, pad_bits = pads[-1]
        new_off = cur
        for pad_type, pad_bits in pads:  # noqa: B007 (the chosen pad is used below)
            new_off = _roundup(cur, pad_bits)
            if new_off <= nxt:
                break
        if cur < new_off <= nxt:
            # `<type>: 0` forces the aligned offset when the compiler would not get
            # there by itself: inside a run of bitfields, when the next member's own
            # alignment is smaller, or when a `<type>: N` would fit in the hole left
            if (in_bitfield
                    or (new_off == nxt and _roundup(cur, nxt_align * 8) != new_off)
                    or (new_off != nxt and nxt - new_off <= new_off - cur)):
                out.append(f"{pfx}{pad_type}: {new_off - cur if in_bitfield else 0};")
            cur = new_off
        while cur != nxt:
            bits = min(nxt - cur, pad_bits)
            if bits == pad_bits:
                out.append(f"{pfx}{pad_type}: {pad_bits};")
                cur += bits
                continue
            # the remainder takes the smallest type that holds it
            for pad_type, pad_bits in reversed(pads):  # noqa: B007
                if pad_bits < bits:
                    continue
                out.append(f"{pfx}{pad_type}: {bits};")
                cur += bits
                break
            else:  # pragma: no cover - a remainder is always under a long's bits
                break

    def _enum_def(self, tid: int, lvl: int, out: list[str]) -> None:
        t = self.t
        name = self.type_name(tid)
        out.append("enum " + name if t.name_offs[tid] else "enum")
        vlen = t.vlen(tid)
        if not vlen:
            return
        out.append(" {")
        signed = t.kflag(tid)
        idents = self.ident_names
        pfx = "\n" + _pfx(lvl + 1)
        is64 = t.kinds[tid] == _ENUM64
        raw = t.words(tid, 3, (3 if is64 else 2) * vlen)
        step = 3 if is64 else 2
        fits_int = fits_uint = True  # whether the compiler would make the enum 4 bytes
        for i in range(0, len(raw), step):
            ident = t.string(raw[i])
            # enumerators share the typedefs' namespace
            dups = idents.get(ident, 0) + 1
            idents[ident] = dups
            if dups > 1:
                ident = f"{ident}___{dups}"
            if is64:
                val = raw[i + 1] | raw[i + 2] << 32
                if signed and val >> 63:
                    val -= 1 << 64
                fits_int = fits_int and -(1 << 31) <= val < 1 << 31
                fits_uint = fits_uint and 0 <= val < 1 << 32
                out.append(f"{pfx}{ident} = {val}{'LL' if signed else 'ULL'},")
            else:
                val = raw[i + 1]
                if signed and val >> 31:
                    val -= 1 << 32
                out.append(f"{pfx}{ident} = {val},")
        out.append("\n" + _pfx(lvl) + "}")
        size = t.refs[tid]
        if size == 1:
            out.append(" __attribute__((mode(byte)))")
        elif size == 8 and self.ptr_sz == 8 and (not is64 or fits_int or fits_uint):
            # an 8-byte enum whose values all fit in an int or an unsigned int would
            # be 4 bytes: word mode keeps it 8. libbpf asks only whether every value's
            # upper half is zero, which misses small negative values of a signed enum
            out.append(" __attribute__((mode(word)))")

    def _typedef_def(self, tid: int, lvl: int) -> None:
        t = self.t
        name = self.ident_name(tid)
        # old GCCs emit __gnuc_va_list as a typedef of void
        if t.refs[tid] == 0 and name == "__gnuc_va_list":
            self.out.append("typedef __builtin_va_list __gnuc_va_list")
            return
        self.out.append("typedef ")
        self.decl.emit(t.refs[tid], name, lvl, self.out)


def dump_c(btf: BTF) -> str:
    """Every type of ``btf`` (its base's included) as a compilable C header, as
    ``bpftool btf dump file F format c`` writes it."""
    return CHeaderDump(btf).run()


def dump_c_bytes(btf: BTF) -> bytes:
    """:func:`dump_c` as bytes, names copied as stored even when they are not UTF-8."""
    return dump_c(btf).encode("utf-8", "surrogateescape")
