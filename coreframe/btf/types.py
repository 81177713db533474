"""BTF parsing with lazy type decoding.

A kernel BTF blob holds ~130k types; decoding all of them costs far more than a
loader's whole start-up budget. So a :class:`BTF` keeps the raw bytes, an array
of record offsets (one tight scan) and a name index sorted by name, and decodes
a type object only when somebody asks for it. ``coreframe.btf.kernel`` caches
the offsets and the name index on disk so a warm start does no scan at all.

Layout facts follow the UAPI header ``linux/btf.h``: a header whose ``hdr_len``
may grow, a type section of 12-byte ``btf_type`` records each followed by
kind-specific data, and a NUL-separated string section.
"""

from __future__ import annotations

from itertools import compress, count, repeat

from ..errors import BTFError
from ..runtime.startup import (
    KernelEnum,  # noqa: F401 - re-exported
    Record,
    getitem,
    itemgetter,
)
from .kinds import (
    BTF_HDR_MIN,
    BTF_INT_BOOL,
    BTF_INT_CHAR,
    BTF_INT_SIGNED,
    BTF_MAGIC,
    BTF_VERSION,
    Kind,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence
    from typing import Any



# Words (u32) a record occupies besides its vlen entries, and words per vlen entry.
_BASE_WORDS = {
    Kind.INT: 4, Kind.PTR: 3, Kind.ARRAY: 6, Kind.STRUCT: 3, Kind.UNION: 3, Kind.ENUM: 3,
    Kind.FWD: 3, Kind.TYPEDEF: 3, Kind.VOLATILE: 3, Kind.CONST: 3, Kind.RESTRICT: 3,
    Kind.FUNC: 3, Kind.FUNC_PROTO: 3, Kind.VAR: 4, Kind.DATASEC: 3, Kind.FLOAT: 3,
    Kind.DECL_TAG: 4, Kind.TYPE_TAG: 3, Kind.ENUM64: 3,
}
_VLEN_WORDS = {
    Kind.STRUCT: 3, Kind.UNION: 3, Kind.ENUM: 2, Kind.FUNC_PROTO: 2, Kind.DATASEC: 3,
    Kind.ENUM64: 3,
}
# Tables indexed by ``info >> 24`` (kind plus kind_flag and the reserved bits): an
# invalid top byte maps to a step that overshoots any buffer, so the scan loop needs
# no per-record check and the error is diagnosed once, after the loop.
_BAD_STEP = 1 << 40
STEP_BASE: list[int] = [_BAD_STEP] * 256
STEP_VLEN: list[int] = [0] * 256
for _k, _w in _BASE_WORDS.items():
    STEP_BASE[_k] = STEP_BASE[_k | 0x80] = _w
    STEP_VLEN[_k] = STEP_VLEN[_k | 0x80] = _VLEN_WORDS.get(_k, 0)
del _k, _w

_MODIFIERS = frozenset({Kind.CONST, Kind.VOLATILE, Kind.RESTRICT, Kind.TYPE_TAG})
_tuple_new = tuple.__new__


class Member(Record, fields="name type bit_offset bitfield_size"):
    """One STRUCT/UNION member; ``bitfield_size`` is 0 for a plain member."""

    __slots__ = ()

    name: str
    type: int
    bit_offset: int
    bitfield_size: int


class VarSecinfo(Record, fields="type offset size"):
    """One DATASEC entry: a VAR (or FUNC) type id and its place in the section."""

    __slots__ = ()

    type: int
    offset: int
    size: int


class Param(Record, fields="name type"):
    """One FUNC_PROTO parameter (``name`` is empty when the prototype omits it)."""

    __slots__ = ()

    name: str
    type: int


class Type:
    """Common part of every decoded BTF type."""

    __slots__ = ("id", "kind", "name")
    kind: Kind

    def __init__(self, type_id: int, name: str) -> None:
        self.id = type_id
        self.name = name

    def __repr__(self) -> str:
        fields = ", ".join(
            f"{s}={getattr(self, s)!r}" for cls in type(self).__mro__
            for s in getattr(cls, "__slots__", ()) if s not in ("id", "kind", "name")
        )
        extra = f", {fields}" if fields else ""
        return f"<{self.kind.name} [{self.id}] {self.name!r}{extra}>"


class Void(Type):
    """Type id 0."""

    __slots__ = ()

    kind = Kind.UNKN


class Int(Type):
    """INT: ``encoding`` is a mask of BTF_INT_SIGNED/CHAR/BOOL."""

    __slots__ = ("size", "encoding", "offset", "bits")
    kind = Kind.INT

    def __init__(self, type_id: int, name: str, size: int, data: int) -> None:
        super().__init__(type_id, name)
        self.size = size
        self.encoding = (data >> 24) & 0x0F
        self.offset = (data >> 16) & 0xFF
        self.bits = data & 0xFF

    @property
    def signed(self) -> bool:
        return bool(self.encoding & BTF_INT_SIGNED)

    @property
    def is_char(self) -> bool:
        return bool(self.encoding & BTF_INT_CHAR)

    @property
    def is_bool(self) -> bool:
        return bool(self.encoding & BTF_INT_BOOL)


class _Ref(Type):
    __slots__ = ("type",)

    def __init__(self, type_id: int, name: str, ref: int) -> None:
        super().__init__(type_id, name)
        self.type = ref


class Ptr(_Ref):
    __slots__ = ()

    kind = Kind.PTR


class Typedef(_Ref):
    __slots__ = ()

    kind = Kind.TYPEDEF


class Volatile(_Ref):
    __slots__ = ()

    kind = Kind.VOLATILE


class Const(_Ref):
    __slots__ = ()

    kind = Kind.CONST


class Restrict(_Ref):
    __slots__ = ()

    kind = Kind.RESTRICT


class TypeTag(_Ref):
    __slots__ = ()

    kind = Kind.TYPE_TAG


class Array(Type):
    __slots__ = ("elem_type", "index_type", "nelems")
    kind = Kind.ARRAY

    def __init__(self, type_id: int, name: str, elem: int, index: int, nelems: int) -> None:
        super().__init__(type_id, name)
        self.elem_type = elem
        self.index_type = index
        self.nelems = nelems


class Struct(Type):
    __slots__ = ("size", "members")
    kind = Kind.STRUCT

    def __init__(self, type_id: int, name: str, size: int, members: list[Member]) -> None:
        super().__init__(type_id, name)
        self.size = size
        self.members = members


class Union(Struct):
    __slots__ = ()

    kind = Kind.UNION


class Enum(Type):
    """ENUM; ``values`` is a list of ``(name, value)``, signed when ``signed``."""

    __slots__ = ("size", "signed", "values")
    kind = Kind.ENUM

    def __init__(
        self, type_id: int, name: str, size: int, signed: bool, values: list[tuple[str, int]]
    ) -> None:
        super().__init__(type_id, name)
        self.size = size
        self.signed = signed
        self.values = values


class Enum64(Enum):
    __slots__ = ()

    kind = Kind.ENUM64


class Fwd(Type):
    __slots__ = ("is_union",)
    kind = Kind.FWD

    def __init__(self, type_id: int, name: str, is_union: bool) -> None:
        super().__init__(type_id, name)
        self.is_union = is_union


class Func(Type):
    """FUNC: ``type`` is its FUNC_PROTO, ``linkage`` a BTF_FUNC_* value."""

    __slots__ = ("type", "linkage")
    kind = Kind.FUNC

    def __init__(self, type_id: int, name: str, ref: int, linkage: int) -> None:
        super().__init__(type_id, name)
        self.type = ref
        self.linkage = linkage


class FuncProto(Type):
    __slots__ = ("return_type", "params")
    kind = Kind.FUNC_PROTO

    def __init__(self, type_id: int, name: str, ret: int, params: list[Param]) -> None:
        super().__init__(type_id, name)
        self.return_type = ret
        self.params = params


class Var(Type):
    """VAR: ``linkage`` is a BTF_VAR_* value."""

    __slots__ = ("type", "linkage")
    kind = Kind.VAR

    def __init__(self, type_id: int, name: str, ref: int, linkage: int) -> None:
        super().__init__(type_id, name)
        self.type = ref
        self.linkage = linkage


class Datasec(Type):
    __slots__ = ("size", "vars")
    kind = Kind.DATASEC

    def __init__(self, type_id: int, name: str, size: int, vars: list[VarSecinfo]) -> None:
        super().__init__(type_id, name)
        self.size = size
        self.vars = vars


class Float(Type):
    __slots__ = ("size",)
    kind = Kind.FLOAT

    def __init__(self, type_id: int, name: str, size: int) -> None:
        super().__init__(type_id, name)
        self.size = size


class DeclTag(Type):
    """DECL_TAG: ``component_idx`` is -1 for the type itself, else a member/param index."""

    __slots__ = ("type", "component_idx")
    kind = Kind.DECL_TAG

    def __init__(self, type_id: int, name: str, ref: int, component_idx: int) -> None:
        super().__init__(type_id, name)
        self.type = ref
        self.component_idx = component_idx


def _pick(seq: Any, indexes: Sequence[int]) -> tuple[int, ...]:
    """``seq[i]`` for every index, gathered by one C-level itemgetter call."""
    if len(indexes) > 1:
        return itemgetter(*indexes)(seq)
    return tuple(seq[i] for i in indexes)




def scan_types(words: Any, base_off: int) -> Sequence[int]:
    """Return the word offset of every type record in a type section.

    ``words`` is the type section viewed as u32s; ``base_off`` is the section's
    byte offset in the blob, used only in error messages. This is the one loop
    that touches every record, so it does nothing but step over them.
    """
    offsets: list[int] = []
    append = offsets.append
    step_base = STEP_BASE
    step_vlen = STEP_VLEN
    steps: dict[int, int] = {}  # info word -> record length; few distinct values repeat
    get = steps.get
    end = len(words)
    p = 0
    try:
        while p < end:
            append(p)
            info = words[p + 1]
            step = get(info)
            if step is None:
                top = info >> 24
                step = steps[info] = step_base[top] + (info & 0xFFFF) * step_vlen[top]
            p += step
    except IndexError:
        p = end + 1
    if p != end:
        _diagnose_scan(words, offsets[-1], base_off, len(offsets))
    return _u32s(offsets)


def _u32_at(data: Any, off: int) -> int:
    """The little-endian u32 at byte ``off`` of bytes or an mmap."""
    return int.from_bytes(data[off:off + 4], "little")


def _u32s(values: list[int]) -> Sequence[int]:
    """``values`` as stored: a list when short, else a compact u32 array.

    A kernel's 100k+ offsets take 4 bytes each in an array against a list's 8 plus
    an int object; an object's few hundred stay a list, because importing ``array``
    pulls in ``collections`` at every tool's start-up.
    """
    if len(values) < 8192:
        return values
    from array import array

    return array("I", values)


def _u32_bytes(values: Sequence[int]) -> bytes:
    """Native u32s packed; ``struct`` for short inputs so ``array`` stays unimported."""
    if len(values) < 8192:
        import struct

        return struct.pack(f"={len(values)}I", *values)
    from array import array

    return array("I", values).tobytes()


def _diagnose_scan(words: Any, p: int, base_off: int, nth: int) -> None:
    """Explain why the scan ended off the section end (always raises)."""
    where = f"BTF type #{nth} at byte offset {base_off + 4 * p}"
    end = len(words)
    if p + 3 > end:
        raise BTFError(f"{where}: truncated type record ({4 * (end - p)} of 12 bytes left)")
    info = words[p + 1]
    kind = (info >> 24) & 0x1F
    if info & 0x60000000:
        raise BTFError(f"{where}: reserved bits set in info 0x{info:08x}")
    if STEP_BASE[kind] == _BAD_STEP:
        raise BTFError(f"{where}: unknown BTF kind {kind}")
    vlen = info & 0xFFFF
    need = 4 * (STEP_BASE[kind] + vlen * STEP_VLEN[kind])
    raise BTFError(
        f"{where}: {Kind(kind).name} record with vlen {vlen} needs {need} bytes, "
        f"only {4 * (end - p)} left in the type section"
    )


class BTF:
    """One BTF blob (possibly split on top of a base), decoded lazily."""

    def __init__(
        self,
        data: Any,
        base: BTF | None = None,
        *,
        offsets: Sequence[int] | None = None,
        name_index: tuple[Sequence[int], Sequence[int]] | None = None,
    ) -> None:
        """Parse the header and index the types of ``data`` (bytes or a read-only mmap).

        ``offsets`` and ``name_index`` come from a trusted cache (checked by the
        caller against a content hash); when absent they are computed here.
        """
        self._data = data
        self.base = base
        size = len(data)
        if size < 8:
            raise BTFError(f"BTF: {size} bytes is too short for a header")
        # the header is read with int.from_bytes: a warm start imports no struct
        magic, version, flags = data[0] | data[1] << 8, data[2], data[3]
        hdr_len = _u32_at(data, 4)
        if magic != BTF_MAGIC:
            if magic == 0x9FEB:
                raise BTFError("BTF: big-endian BTF is not supported")
            raise BTFError(f"BTF: bad magic 0x{magic:04x} at byte offset 0 (want 0xeb9f)")
        if version != BTF_VERSION:
            raise BTFError(f"BTF: unsupported version {version} at byte offset 2")
        if hdr_len < BTF_HDR_MIN or hdr_len > size:
            raise BTFError(
                f"BTF: header length {hdr_len} at byte offset 4 is outside 24..{size}"
            )
        type_off, type_len, str_off, str_len = (_u32_at(data, i) for i in (8, 12, 16, 20))
        self.flags = flags
        self.hdr_len = hdr_len
        body = size - hdr_len
        if type_off + type_len > body:
            raise BTFError(
                f"BTF: type section [{hdr_len + type_off}, +{type_len}) runs past the "
                f"end of the {size}-byte blob"
            )
        if str_off + str_len > body:
            raise BTFError(
                f"BTF: string section [{hdr_len + str_off}, +{str_len}) runs past the "
                f"end of the {size}-byte blob"
            )
        if type_off % 4 or type_len % 4:
            raise BTFError(
                f"BTF: type section at byte offset {hdr_len + type_off} with length "
                f"{type_len} is not 4-byte aligned"
            )
        self._type_start = hdr_len + type_off
        self._type_len = type_len
        self._str_start = hdr_len + str_off
        self._str_len = str_len
        self._end = hdr_len + max(type_off + type_len, str_off + str_len)
        if base is None:
            self._first_id = 1
            self._str_base = 0
        else:
            self._first_id = len(base)
            self._str_base = base._str_base + base._str_len
        if str_len == 0:
            if base is None:
                raise BTFError("BTF: empty string section")
        else:
            if data[self._str_start + str_len - 1] != 0:
                raise BTFError(
                    f"BTF: string section does not end with NUL at byte offset "
                    f"{self._str_start + str_len - 1}"
                )
            if base is None and data[self._str_start] != 0:
                raise BTFError(
                    f"BTF: string section at byte offset {self._str_start} does not start "
                    "with the empty string"
                )
        view = memoryview(data)
        self._words = view[self._type_start:self._type_start + type_len].cast("I")
        if offsets is None:
            offsets = scan_types(self._words, self._type_start)
            self._check_names(offsets)
        self._offsets = offsets
        self._name_index = name_index
        self._cache: dict[int, Type] = {}
        self._resolved: dict[int, int] = {}

    # ---- construction -------------------------------------------------------------

    @classmethod
    def from_bytes(cls, data: bytes, base: BTF | None = None) -> BTF:
        """Parse a raw BTF blob; pass ``base`` for split BTF (kernel module BTF)."""
        return cls(bytes(data), base)

    def patched(self, data: bytes) -> BTF:
        """This BTF over ``data``: a copy of :meth:`to_bytes` whose values were changed
        in place (sizes, offsets, linkage) with every record's layout kept, so the
        type scan is reused rather than repeated."""
        if len(data) != self._end or data[:self.hdr_len] != self._data[:self.hdr_len]:
            raise BTFError("BTF: a patched copy must keep the header and the size")
        return BTF(data, self.base, offsets=self._offsets)

    @classmethod
    def from_file(cls, path: str, base: BTF | None = None) -> BTF:
        """Parse a raw BTF file such as /sys/kernel/btf/vmlinux."""
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as e:
            raise BTFError(f"cannot read BTF file {path}: {e.strerror}") from e
        return cls(data, base)

    def _check_names(self, offsets: Sequence[int]) -> None:
        """Validate every type's name offset once, so lookups can trust them."""
        words = self._words
        limit = self._str_base + self._str_len
        name_offs = _pick(words, offsets)
        self._scan_names = name_offs  # reused by build_name_index on a cold start
        if name_offs and max(name_offs) >= limit:
            bad = next(i for i, n in enumerate(name_offs) if n >= limit)
            raise BTFError(
                f"BTF type #{bad + 1} at byte offset {self._type_start + 4 * offsets[bad]}: "
                f"name offset {name_offs[bad]} outside the {limit}-byte string table"
            )

    # ---- strings ------------------------------------------------------------------

    @property
    def offsets(self) -> Sequence[int]:
        """Word offset of each of this BTF's own type records in :attr:`words`."""
        return self._offsets

    @property
    def words(self) -> memoryview:
        """The type section as u32 words (the records :attr:`offsets` point into)."""
        return self._words

    def string_section(self) -> tuple[memoryview, int]:
        """This BTF's own string section and the string offset it starts at (non-zero
        for split BTF, whose offsets continue its base's)."""
        start = self._str_start
        return memoryview(self._data)[start:start + self._str_len], self._str_base

    def name_index(self) -> tuple[Sequence[int], Sequence[int]]:
        """The name index: string offsets of the named types sorted by name, and their
        type ids (what ``coreframe.btf.kernel`` caches)."""
        return self._index()

    def string_bytes(self, off: int) -> bytes:
        """The NUL-terminated string at string offset ``off`` (split-aware)."""
        if off < self._str_base:
            assert self.base is not None
            return self.base.string_bytes(off)
        rel = off - self._str_base
        if rel >= self._str_len:
            raise BTFError(
                f"BTF: string offset {off} outside the string table "
                f"({self._str_base + self._str_len} bytes)"
            )
        start = self._str_start + rel
        return self._data[start:self._data.find(b"\0", start)]

    def _strings(self, offs: list[int]) -> list[str]:
        """Decode many names at once (member lists); '' for offset 0."""
        if not offs:
            return []
        if self._str_base or max(offs) >= self._str_len:
            return [self.string(o) if o else "" for o in offs]
        data = self._data
        find = data.find
        s0 = self._str_start
        return [data[s0 + o:find(b"\0", s0 + o)].decode("utf-8", "replace") if o else ""
                for o in offs]

    def string(self, off: int) -> str:
        """The string at string offset ``off``, e.g. a line_info file name."""
        return self.string_bytes(off).decode("utf-8", "replace")

    # ---- type access --------------------------------------------------------------

    def __len__(self) -> int:
        """Number of type ids, counting void and the base's types."""
        return self._first_id + len(self._offsets)

    def __iter__(self) -> Iterator[Type]:
        """Every type of this BTF (not the base), in id order."""
        for tid in range(self._first_id, len(self)):
            yield self[tid]

    @property
    def start_id(self) -> int:
        """First type id defined by this blob (1, or the base's length for split BTF)."""
        return self._first_id

    def _record(self, type_id: int) -> tuple[BTF, int]:
        """(owning BTF, word offset) of a type id; ObjectError when out of range."""
        if self.base is None and 0 < type_id <= len(self._offsets):
            return self, self._offsets[type_id - 1]
        btf = self
        while type_id < btf._first_id:
            if btf.base is None:
                raise BTFError(f"BTF: type id {type_id} is invalid")
            btf = btf.base
        local = type_id - btf._first_id
        if local >= len(btf._offsets):
            raise BTFError(f"BTF: type id {type_id} out of range ({len(btf)} types)")
        return btf, btf._offsets[local]

    def raw(self, type_id: int) -> tuple[int, int, int]:
        """``(name_off, info, size_or_type)`` of a type record, undecoded."""
        btf, p = self._record(type_id)
        w = btf._words
        return w[p], w[p + 1], w[p + 2]

    def member_at(self, type_id: int, index: int) -> Member:
        """Member ``index`` of STRUCT/UNION ``type_id``, decoded alone (see find_member)."""
        btf, p = self._record(type_id)
        w = btf._words
        info = w[p + 1]
        if (info >> 24) & 0x1F not in (Kind.STRUCT, Kind.UNION) or not (
                0 <= index < info & 0xFFFF):
            raise BTFError(f"BTF: type id {type_id} has no member #{index}")
        q = p + 3 + 3 * index
        name = self.string(w[q]) if w[q] else ""
        if info >> 31:
            return Member(name, w[q + 1], w[q + 2] & 0xFFFFFF, w[q + 2] >> 24)
        return Member(name, w[q + 1], w[q + 2], 0)

    def find_member(self, type_id: int, name: str) -> tuple[int, Member] | None:
        """(index, member) of the first member of STRUCT/UNION ``type_id`` named ``name``.

        Compares the raw name bytes in place, so finding a field of a large kernel
        struct (task_struct has ~250 members) does not decode all of them. None when
        no member has that name, or when an anonymous member comes first (the caller
        must then search through it, so it needs the decoded type anyway).
        """
        btf, p = self._record(type_id)
        w = btf._words
        info = w[p + 1]
        if (info >> 24) & 0x1F not in (Kind.STRUCT, Kind.UNION):
            return None
        vlen = info & 0xFFFF
        offs = w[p + 3:p + 3 + 3 * vlen:3].tolist()
        if btf._str_base or not offs or max(offs) >= btf._str_len:
            return None
        want = name.encode() + b"\0"
        n = len(want)
        data = btf._data  # bytes or a mmap: compared by slices
        s0 = btf._str_start
        for i, off in enumerate(offs):
            if not off:
                return None
            if data[s0 + off:s0 + off + n] == want:
                return i, self.member_at(type_id, i)
        return None

    def ids_of_kinds(self, *kinds: int) -> list[int]:
        """Ids of this blob's own types (not the base's) of the given kinds, in order.

        Reads the kind straight from each record: one pass over a few hundred
        object types, without a call per type.
        """
        w = self._words
        want = frozenset(kinds)
        first = self._first_id
        return [first + i for i, p in enumerate(self._offsets) if (w[p + 1] >> 24) & 0x1F in want]

    def kind_of(self, type_id: int) -> Kind:
        """The kind of a type without decoding it."""
        if type_id == 0:
            return Kind.UNKN
        btf, p = self._record(type_id)
        return _KINDS[(btf._words[p + 1] >> 24) & 0x1F]

    def type_offset(self, type_id: int) -> int:
        """Byte offset of a local type's record inside :meth:`to_bytes`."""
        if type_id < self._first_id:
            raise BTFError(f"BTF: type id {type_id} belongs to the base BTF")
        _, p = self._record(type_id)
        return self._type_start + 4 * p

    def __getitem__(self, type_id: int) -> Type:
        try:
            return self._cache[type_id]
        except KeyError:
            pass
        except TypeError:
            raise BTFError(f"BTF: type id must be an int, not {type_id!r}") from None
        if type_id == 0:
            t: Type = Void(0, "")
        else:
            btf, p = self._record(type_id)
            if btf is not self:
                return btf[type_id]
            t = self._decode(type_id, p)
        self._cache[type_id] = t
        return t

    def _decode(self, tid: int, p: int) -> Type:
        w = self._words
        name_off, info, st = w[p], w[p + 1], w[p + 2]
        name = self.string(name_off) if name_off else ""
        kind = (info >> 24) & 0x1F
        vlen = info & 0xFFFF
        kflag = info >> 31
        if kind == Kind.STRUCT or kind == Kind.UNION:
            raw = w[p + 3:p + 3 + 3 * vlen].tolist()
            names = self._strings(raw[0::3])
            # tuple.__new__ straight from C (no Python-level __new__ per member):
            # decoding a kernel-sized struct makes hundreds of these
            if kflag:
                members = list(map(_tuple_new, repeat(Member), zip(
                    names, raw[1::3], [o & 0xFFFFFF for o in raw[2::3]],
                    [o >> 24 for o in raw[2::3]])))
            else:
                members = list(map(_tuple_new, repeat(Member),
                                   zip(names, raw[1::3], raw[2::3], repeat(0))))
            cls = Struct if kind == Kind.STRUCT else Union
            return cls(tid, name, st, members)
        if kind == Kind.INT:
            return Int(tid, name, st, w[p + 3])
        if kind in _REF_CLASSES:
            return _REF_CLASSES[kind](tid, name, st)
        if kind == Kind.ARRAY:
            return Array(tid, name, w[p + 3], w[p + 4], w[p + 5])
        if kind == Kind.ENUM:
            raw = w[p + 3:p + 3 + 2 * vlen].tolist()
            conv = int
            if kflag:  # signed values (rare); sys.cint is not needed to read a cached object
                from ..sys.cint import s32 as conv
            values = [(self.string(raw[i]), conv(raw[i + 1])) for i in range(0, 2 * vlen, 2)]
            return Enum(tid, name, st, bool(kflag), values)
        if kind == Kind.ENUM64:
            raw = w[p + 3:p + 3 + 3 * vlen].tolist()
            values = []
            for i in range(0, 3 * vlen, 3):
                v = raw[i + 1] | (raw[i + 2] << 32)
                if kflag and v & (1 << 63):
                    v -= 1 << 64
                values.append((self.string(raw[i]), v))
            return Enum64(tid, name, st, bool(kflag), values)
        if kind == Kind.FWD:
            return Fwd(tid, name, bool(kflag))
        if kind == Kind.FUNC:
            return Func(tid, name, st, vlen)
        if kind == Kind.FUNC_PROTO:
            raw = w[p + 3:p + 3 + 2 * vlen].tolist()
            params = [Param(self.string(raw[i]) if raw[i] else "", raw[i + 1])
                      for i in range(0, 2 * vlen, 2)]
            return FuncProto(tid, name, st, params)
        if kind == Kind.VAR:
            return Var(tid, name, st, w[p + 3])
        if kind == Kind.DATASEC:
            raw = w[p + 3:p + 3 + 3 * vlen].tolist()
            secs = [VarSecinfo(raw[i], raw[i + 1], raw[i + 2]) for i in range(0, 3 * vlen, 3)]
            return Datasec(tid, name, st, secs)
        if kind == Kind.FLOAT:
            return Float(tid, name, st)
        if kind == Kind.DECL_TAG:
            from ..sys.cint import s32

            return DeclTag(tid, name, st, s32(w[p + 3]))
        raise BTFError(f"BTF: type id {tid} has unknown kind {kind}")  # pragma: no cover

    # ---- name index ---------------------------------------------------------------

    def build_name_index(self) -> tuple[Sequence[int], Sequence[int]]:
        """Build ``(name offsets, type ids)`` sorted by name; anonymous types left out.

        All per-type work runs in C-level ``map``/``filter`` over the raw words and
        a bytes copy of the string table; only the sort compares Python objects.
        """
        name_offs = self.__dict__.pop("_scan_names", None)
        self.__dict__.pop("_scan_packed", None)
        self.__dict__.pop("_scan_strtab", None)
        self.__dict__.pop("_scan_memo", None)
        if name_offs is None:
            name_offs = _pick(self._words, self._offsets)
        named_offs = list(filter(None, name_offs))
        tids = list(compress(count(self._first_id), name_offs))
        if self._str_base:
            names = list(map(self.string_bytes, named_offs))
        else:
            strtab = bytes(self._data[self._str_start:self._str_start + self._str_len])
            ends = map(strtab.index, repeat(b"\0"), named_offs)
            names = list(map(getitem, repeat(strtab), map(slice, named_offs, ends)))
        order = sorted(range(len(names)), key=names.__getitem__)
        return _u32s(_pick(named_offs, order)), _u32s(_pick(tids, order))

    def _index(self) -> tuple[Sequence[int], Sequence[int]]:
        if self._name_index is None:
            self._name_index = self.build_name_index()
        return self._name_index

    def _range(self, target: bytes, prefix: bool) -> tuple[int, int]:
        """Index range of names equal to (or starting with) ``target``."""
        offs, _ = self._index()
        if self._str_base:
            sb = self.string_bytes
        else:
            # the index holds checked offsets into this blob's own strings: slice
            # them in place (a binary search reads ~34 names per lookup)
            data, s0 = self._data, self._str_start
            find = data.find

            def sb(off: int) -> bytes:
                p = s0 + off
                return data[p:find(b"\0", p)]

        lo, hi = 0, len(offs)
        while lo < hi:
            mid = (lo + hi) // 2
            if sb(offs[mid]) < target:
                lo = mid + 1
            else:
                hi = mid
        start = lo
        hi = len(offs)
        while lo < hi:
            mid = (lo + hi) // 2
            s = sb(offs[mid])
            if (s.startswith(target) if prefix else s == target):
                lo = mid + 1
            else:
                hi = mid
        return start, lo

    def _scan_find(self, name: bytes, prefix: bool) -> list[int] | None:
        """Look a name up without the sorted index, or None when that is not possible.

        On a cold start (no cached index) sorting 130k names costs more than every
        lookup a CO-RE run makes, so the lookup searches the string table for the
        name (strings are NUL-separated, so ``\0name\0`` only matches whole
        strings and ``\0prefix`` only their starts) and then the per-type name
        offsets for the string offsets found, both with C-level ``bytes.find``.
        """
        names = self.__dict__.get("_scan_names")
        if names is None or self._str_base:
            return None
        memo = self.__dict__.setdefault("_scan_memo", {})
        hit = memo.get((name, prefix))
        if hit is not None:
            return hit
        if prefix:
            ids = self._ids_of(self._strings_from(name, names), names)
        else:
            # CO-RE asks for NAME and then for its NAME___flavor types: one pass
            # over the string table answers both.
            found = self._strings_from(name, names)
            flavor = name + b"___"
            ids = self._ids_of([(o, t) for o, t in found if t == name], names)
            memo[(flavor, True)] = self._ids_of(
                [(o, t) for o, t in found if t.startswith(flavor)], names)
        memo[(name, prefix)] = ids
        return ids

    def _strings_from(self, stem: bytes, names: Sequence[int]) -> list[tuple[int, bytes]]:
        """(string offset, string) of every string in the table that starts with ``stem``."""
        strtab = self.__dict__.get("_scan_strtab")
        if strtab is None:
            strtab = self._scan_strtab = bytes(
                self._data[self._str_start:self._str_start + self._str_len])
        needle = b"\0" + stem
        out = []
        pos = strtab.find(needle)
        while pos >= 0:
            end = strtab.index(b"\0", pos + 1)
            out.append((pos + 1, strtab[pos + 1:end]))
            pos = strtab.find(needle, end)
        return out

    def _ids_of(self, strings: list[tuple[int, bytes]], names: Sequence[int]) -> list[int]:
        """Ids of the types whose name is one of ``strings`` (ascending per string)."""
        packed = self.__dict__.get("_scan_packed")
        if packed is None:
            packed = self._scan_packed = _u32_bytes(names)
        ids: list[int] = []
        for off, _ in strings:
            pat = off.to_bytes(4, "little")
            hit = packed.find(pat)
            while hit >= 0:
                if hit % 4:
                    hit = packed.find(pat, hit + 1)
                    continue
                ids.append(self._first_id + hit // 4)
                hit = packed.find(pat, hit + 4)
        return ids

    def _local_find(self, name: bytes, kind: Kind | None, prefix: bool) -> list[int]:
        ids: Sequence[int] | None = None
        if self._name_index is None:
            ids = self._scan_find(name, prefix)
        if ids is None:
            start, stop = self._range(name, prefix)
            ids = self._index()[1][start:stop]
        if kind is None:
            return list(ids)
        return [t for t in ids if self.kind_of(t) == kind]

    def find(self, name: str, kind: Kind | None = None) -> list[int]:
        """Ids of the types called ``name`` (optionally of one kind), base first, sorted."""
        if not name:
            return []
        key = name.encode()
        found = self.base.find(name, kind) if self.base is not None else []
        found += sorted(self._local_find(key, kind, False))
        return found

    def find_prefix(self, prefix: str, kind: Kind | None = None) -> list[int]:
        """Ids of the types whose name starts with ``prefix`` (for CO-RE flavors)."""
        found = self.base.find_prefix(prefix, kind) if self.base is not None else []
        found += sorted(self._local_find(prefix.encode(), kind, True))
        return found

    def find_one(self, name: str, kind: Kind | None = None) -> int:
        """The single type called ``name``; ObjectError if absent or ambiguous."""
        ids = self.find(name, kind)
        what = f"{kind.name} {name!r}" if kind is not None else repr(name)
        if not ids:
            raise BTFError(f"BTF: no type {what}")
        if len(ids) > 1:
            raise BTFError(f"BTF: {len(ids)} types named {what}: ids {ids[:8]}")
        return ids[0]

    # ---- type algebra -------------------------------------------------------------

    def resolve(self, type_id: int, strip_typedef: bool = True) -> int:
        """Follow const/volatile/restrict/type_tag (and typedefs) to the real type."""
        if strip_typedef:
            hit = self._resolved.get(type_id)
            if hit is not None:
                return hit
            result = self._resolve(type_id, True)
            self._resolved[type_id] = result
            return result
        return self._resolve(type_id, False)

    def _resolve(self, type_id: int, strip_typedef: bool) -> int:
        for _ in range(64):
            if type_id == 0:
                return 0
            btf, p = self._record(type_id)
            w = btf._words
            kind = (w[p + 1] >> 24) & 0x1F
            if kind in _MODIFIERS or (strip_typedef and kind == Kind.TYPEDEF):
                type_id = w[p + 2]
            else:
                return type_id
        raise BTFError(f"BTF: type id {type_id}: modifier chain too long (loop?)")

    def size_of(self, type_id: int) -> int:
        """Size in bytes, as libbpf's btf__resolve_size computes it."""
        nelems = 1
        for _ in range(64):
            kind = self.kind_of(type_id)
            if kind in _SIZED:
                size = self.raw(type_id)[2]
                break
            if kind == Kind.PTR:
                size = 8
                break
            if kind in _MODIFIERS or kind in (Kind.TYPEDEF, Kind.VAR):
                type_id = self.raw(type_id)[2]
            elif kind == Kind.ARRAY:
                arr = self[type_id]
                assert isinstance(arr, Array)
                nelems *= arr.nelems
                type_id = arr.elem_type
            else:
                raise BTFError(f"BTF: type id {type_id} ({kind.name}) has no size")
        else:
            raise BTFError(f"BTF: type id {type_id}: type chain too long (loop?)")
        return nelems * size

    def name_of(self, type_id: int) -> str:
        """The type's own name ('' for anonymous types and void)."""
        if type_id == 0:
            return ""
        name_off = self.raw(type_id)[0]
        return self.string(name_off) if name_off else ""

    def c_type_name(self, type_id: int) -> str:
        """C spelling of a type as clang spells it: ``unsigned int``, ``char[16]``,
        ``const char *const *``, ``void (*)(int)`` (see ``coreframe.btf.cdecl``)."""
        from .cdecl import c_type_name

        return c_type_name(self, type_id)

    # ---- raw form -----------------------------------------------------------------

    def to_bytes(self) -> bytes:
        """The BTF blob as parsed (header, types, strings); for split BTF only this part."""
        return bytes(self._data[:self._end])

    def ctype(self, name: str) -> type:
        """ctypes type for ``"struct event"``, ``"union x"``, ``"enum y"`` or a type name."""
        from .ctypegen import ctype_by_name

        return ctype_by_name(self, name)

    def __repr__(self) -> str:
        split = f", split on {len(self.base)} base types" if self.base is not None else ""
        return f"<BTF {len(self)} types{split}>"


_REF_CLASSES: dict[int, Any] = {
    Kind.PTR: Ptr, Kind.TYPEDEF: Typedef, Kind.VOLATILE: Volatile, Kind.CONST: Const,
    Kind.RESTRICT: Restrict, Kind.TYPE_TAG: TypeTag,
}
_KINDS = tuple(Kind)
_SIZED = frozenset({Kind.INT, Kind.STRUCT, Kind.UNION, Kind.ENUM, Kind.ENUM64, Kind.DATASEC,
                    Kind.FLOAT})
