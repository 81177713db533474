""".BTF.ext parsing: func_info, line_info and CO-RE relocation records.

The section is a header followed by up to three "info" blobs. Each blob starts
with a record size, then per-ELF-section blocks (section name offset, record
count, records). Names and strings are offsets into the string table of the
object's .BTF, which is why parsing needs that BTF too.

Record sizes larger than the ones known here are accepted and the unknown tail
of each record is ignored, as the kernel and libbpf do, so newer compilers'
objects keep working.
"""

from __future__ import annotations

from itertools import repeat

from coreframe.btf.kinds import BTF_MAGIC  # .BTF and .BTF.ext share the magic
from coreframe.errors import BTFError, ObjectError
from coreframe.runtime.compat import zip_strict
from coreframe.runtime.startup import Record, and_, itemgetter, rshift

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from coreframe.btf.types import BTF

BTF_EXT_MAGIC = 0xEB9F

# Known record sizes (bpf_func_info, bpf_line_info, bpf_core_relo).
FUNC_INFO_SIZE = 8
LINE_INFO_SIZE = 16
CORE_RELO_SIZE = 16

# Header: magic, version, flags, hdr_len, then (off, len) pairs relative to hdr_len.
# ``struct`` is imported by the parsing functions only: a spec read back from the
# cache holds its records already, and a warm start imports no struct at all.
_HDR_MIN = "<HBBIIIII"  # up to line_info_len
_HDR_MIN_SIZE = 24
_HDR_CORE = "<II"  # core_relo_off, core_relo_len at byte 24
_HDR_CORE_SIZE = 8
_tuple_new = tuple.__new__
_first2 = itemgetter(0, 1)


# Records are named tuples (coreframe.runtime.startup.Record), not frozen dataclasses: an
# object carries thousands of line_info records, and a tuple is built in one C call
# (a frozen dataclass pays an object.__setattr__ per field). Nor typing.NamedTuple,
# whose class creation evaluates each field annotation at import.
class FuncInfo(Record, fields="insn_off type_id"):
    """One bpf_func_info record: the BTF FUNC describing code at ``insn_off``."""

    __slots__ = ()

    insn_off: int
    type_id: int


class LineInfo(Record, fields="insn_off file_name line_text line col"):
    """One bpf_line_info record, with its strings resolved."""

    __slots__ = ()

    insn_off: int
    file_name: str
    line_text: str
    line: int
    col: int


class CoreRelo(Record, fields="insn_off type_id access_str kind"):
    """One bpf_core_relo record: relocate the instruction at ``insn_off`` (bytes)."""

    __slots__ = ()

    insn_off: int
    type_id: int
    access_str: str
    kind: int


class BTFExt:
    """Parsed .BTF.ext: per-ELF-section lists of func_info, line_info and CO-RE relos."""

    def __init__(
        self,
        func_info: dict[str, list[FuncInfo]],
        line_info: dict[str, list[LineInfo]],
        core_relos: dict[str, list[CoreRelo]],
        *,
        version: int = 1,
        flags: int = 0,
    ) -> None:
        self.func_info = func_info
        self.core_relos = core_relos
        self.version = version
        self.flags = flags
        self._line_info: dict[str, list[LineInfo]] | None = line_info
        self._line_blocks: Callable[[], list[_Block]] | None = None
        self._line_rows: dict[str, list[tuple[int, ...]]] | None = None
        # rows checked by an earlier run (a cached spec's), decoded on first use
        self._line_rows_source: Callable[[], dict[str, list[tuple[int, ...]]]] | None = None
        self._strings: _StringTable | None = None
        self._raw: bytes | None = None  # the section, when parsed from one
        self._btf: BTF | bytes | None = None

    @classmethod
    def restored(cls, raw: bytes, btf: BTF | bytes, func_info: dict[str, list[FuncInfo]],
                 core_relos: dict[str, list[CoreRelo]], version: int, flags: int,
                 line_rows: Callable[[], dict[str, list[tuple[int, ...]]]]) -> BTFExt:
        """The BTFExt that :meth:`from_bytes` made of ``raw`` in an earlier run, from
        what that run kept (a cached spec): nothing is parsed again unless the
        decoded ``line_info`` is asked for. ``line_rows`` returns the checked rows."""
        ext = cls(func_info, None, core_relos, version=version, flags=flags)
        ext._raw = raw
        ext._btf = btf
        ext._line_rows_source = line_rows
        return ext

    @property
    def source(self) -> tuple[bytes, BTF | bytes] | None:
        """The .BTF.ext section and the BTF it was read against, when it was read from
        one (None for a BTFExt built from records)."""
        if self._raw is None or self._btf is None:
            return None
        return self._raw, self._btf

    @property
    def line_info(self) -> dict[str, list[LineInfo]]:
        """line_info records per section, strings resolved, built on first use.

        An object has thousands of them; opening it, resolving CO-RE and even
        loading it (see :attr:`line_rows`) never need them decoded.
        """
        if self._line_info is None and self._line_blocks is None and self._raw is not None:
            parsed = BTFExt.from_bytes(self._raw, self._btf)  # type: ignore[arg-type]
            self._line_blocks, self._strings = parsed._line_blocks, parsed._strings
        if self._line_info is None:
            assert self._line_blocks is not None and self._strings is not None
            out: dict[str, list[LineInfo]] = {}
            for sec, rows, pos, rec_size in self._line_blocks():
                out.setdefault(sec, []).extend(_line_info(rows, pos, rec_size, self._strings))
            self._line_info = out
        return self._line_info

    @property
    def line_rows(self) -> dict[str, list[tuple[int, ...]]] | None:
        """Raw line_info words per section (insn_off in bytes, file_name_off, line_off,
        line_col), or None for a BTFExt built from records.

        The string offsets point into the object's own .BTF, which is what the
        kernel is given, so the loader passes them through untouched.
        """
        if self._line_rows is None and self._line_rows_source is not None:
            self._line_rows = self._line_rows_source()
            self._line_rows_source = None
        if self._line_rows is None and self._line_blocks is not None:
            assert self._strings is not None
            out: dict[str, list[tuple[int, ...]]] = {}
            for sec, rows, pos, rec_size in self._line_blocks():
                # every distinct string offset is checked once (an ObjectError, not a
                # kernel EINVAL, for a corrupt object)
                _resolve_all(self._strings, rows, 1, "line_info file name", pos, rec_size)
                _resolve_all(self._strings, rows, 2, "line_info line", pos, rec_size)
                out.setdefault(sec, []).extend(rows)
            self._line_rows = out
        return self._line_rows

    def __repr__(self) -> str:
        fi = sum(map(len, self.func_info.values()))
        li = sum(map(len, self.line_info.values()))
        cr = sum(map(len, self.core_relos.values()))
        return f"<BTFExt func_info={fi} line_info={li} core_relos={cr}>"

    @classmethod
    def from_bytes(cls, data: bytes | bytearray | memoryview, btf: BTF | bytes) -> BTFExt:
        """Parse a .BTF.ext section; ``btf`` is the object's .BTF (parsed or raw), for strings."""
        import struct

        buf = memoryview(data).cast("B") if not isinstance(data, bytes) else data
        if len(buf) < _HDR_MIN_SIZE:
            raise BTFError(f".BTF.ext: truncated header ({len(buf)} bytes)")
        magic, version, flags, hdr_len, fi_off, fi_len, li_off, li_len = struct.unpack_from(
            _HDR_MIN, buf, 0
        )
        if magic != BTF_EXT_MAGIC:
            raise BTFError(f".BTF.ext: bad magic {magic:#06x} at offset 0 (expected 0xeb9f)")
        if version != 1:
            raise BTFError(f".BTF.ext: unsupported version {version} at offset 2")
        if hdr_len < _HDR_MIN_SIZE or hdr_len > len(buf):
            raise BTFError(f".BTF.ext: bad header length {hdr_len} at offset 4")
        cr_off = cr_len = 0
        if hdr_len >= _HDR_MIN_SIZE + _HDR_CORE_SIZE:
            cr_off, cr_len = struct.unpack_from(_HDR_CORE, buf, _HDR_MIN_SIZE)

        strings = _StringTable(btf)
        func_info = _parse_blob(
            buf, hdr_len, fi_off, fi_len, FUNC_INFO_SIZE, "func_info", strings, _func_info
        )
        core_relos = _parse_blob(
            buf, hdr_len, cr_off, cr_len, CORE_RELO_SIZE, "core_relo", strings, _core_relo
        )
        _check_blob_bounds(buf, hdr_len, li_off, li_len, "line_info")
        ext = cls(func_info, None, core_relos, version=version, flags=flags)
        blocks: list[list[_Block]] = []

        def line_blocks() -> list[_Block]:
            if not blocks:
                blocks.append(_parse_blocks(buf, hdr_len, li_off, li_len, LINE_INFO_SIZE,
                                            "line_info", strings))
            return blocks[0]

        ext._line_blocks = line_blocks
        ext._strings = strings
        ext._raw = bytes(buf)
        ext._btf = btf
        return ext


class _StringTable:
    """Resolves string offsets of the object's BTF, caching each lookup."""

    def __init__(self, btf: Any) -> None:
        self._lookup = string_lookup(btf)
        self.cache: dict[int, str] = {}

    def get(self, off: int, what: str, at: int) -> str:
        s = self.cache.get(off)
        if s is None:
            try:
                s = self._lookup(off)
            except ObjectError as e:
                raise BTFError(
                    f".BTF.ext: {what} string offset {off} at offset {at} is invalid ({e})"
                ) from None
            if s is None:
                raise BTFError(f".BTF.ext: {what} string offset {off} at offset {at} is invalid")
            self.cache[off] = s
        return s


def string_lookup(btf: Any) -> Callable[[int], str]:
    """Return a callable mapping a BTF string offset to its text.

    ``btf`` is a parsed :class:`~coreframe.btf.types.BTF` (its ``string()``),
    or the raw bytes of a .BTF section for callers that have not parsed it.
    """
    if isinstance(btf, (bytes, bytearray, memoryview)):
        return _raw_lookup(_btf_string_section(bytes(btf)))
    fn = getattr(btf, "string", None)
    if not callable(fn):
        raise TypeError(f"cannot read BTF strings from {type(btf).__name__}")
    return fn


def _raw_lookup(strtab: bytes) -> Callable[[int], str]:
    def lookup(off: int) -> str:
        if off >= len(strtab):
            raise ObjectError(f"offset past string table of {len(strtab)} bytes")
        end = strtab.find(b"\0", off)
        if end < 0:
            raise ObjectError("string runs past the end of the string table")
        try:
            return strtab[off:end].decode()
        except UnicodeDecodeError as e:
            raise ObjectError(f"string is not UTF-8 ({e.reason})") from None

    return lookup


def _btf_string_section(raw: bytes) -> bytes:
    """String section of a raw .BTF blob (header: magic, ver, flags, hdr_len, 4 x u32)."""
    import struct

    try:
        magic, _v, _f, hdr_len, _to, _tl, str_off, str_len = struct.unpack_from("<HBBIIIII", raw)
    except struct.error:
        raise BTFError(".BTF: truncated header") from None
    if magic != BTF_MAGIC:
        raise BTFError(f".BTF: bad magic {magic:#06x}")
    start = hdr_len + str_off
    if start + str_len > len(raw):
        raise BTFError(".BTF: string section runs past the end")
    return raw[start : start + str_len]


def _func_info(rows: Any, pos: int, rec_size: int, strings: _StringTable) -> list[FuncInfo]:
    return list(map(_tuple_new, repeat(FuncInfo), map(_first2, rows)))


def _resolve_all(strings: _StringTable, rows: Any, column: int, what: str, pos: int,
                 rec_size: int) -> None:
    """Look every distinct string offset of one column up once (errors name the record)."""
    cache = strings.cache
    col = list(map(itemgetter(column), rows))
    for off in set(col).difference(cache):
        # list.index finds the first record using it (for the error message) at C speed
        strings.get(off, what, pos + col.index(off) * rec_size + 4 * column)


def _line_info(rows: Any, pos: int, rec_size: int, strings: _StringTable) -> list[LineInfo]:
    # An object has thousands of line_info records but few distinct strings: the
    # strings are resolved once each, then every record is built by C-level map()s.
    _resolve_all(strings, rows, 1, "line_info file name", pos, rec_size)
    _resolve_all(strings, rows, 2, "line_info line", pos, rec_size)
    get = strings.cache.__getitem__
    line_col = list(map(itemgetter(3), rows))
    fields = zip_strict(map(itemgetter(0), rows), map(get, map(itemgetter(1), rows)),
                 map(get, map(itemgetter(2), rows)), map(rshift, line_col, repeat(10)),
                 map(and_, line_col, repeat(0x3FF)))
    return list(map(_tuple_new, repeat(LineInfo), fields))


def _core_relo(rows: Any, pos: int, rec_size: int, strings: _StringTable) -> list[CoreRelo]:
    get = strings.get
    return [CoreRelo(insn_off, type_id, get(access_off, "core_relo access", pos + i * rec_size + 8),
                     kind)
            for i, (insn_off, type_id, access_off, kind, *_) in enumerate(rows)]


def _check_blob_bounds(buf: Any, hdr_len: int, off: int, length: int, what: str) -> None:
    """An info blob must lie inside the section (checked at open, even for lazy blobs)."""
    start = hdr_len + off
    end = start + length
    if length and (off % 4 or start > len(buf) or end > len(buf)):
        raise BTFError(
            f".BTF.ext: {what} [{start}, {end}) lies outside the {len(buf)}-byte section"
        )


_Block = tuple[str, list[tuple[int, ...]], int, int]  # section, rows, offset, record size


def _parse_blob(
    buf: Any,
    hdr_len: int,
    off: int,
    length: int,
    min_rec: int,
    what: str,
    strings: _StringTable,
    make: Any,
) -> dict[str, list[Any]]:
    """Parse one info blob into {section name: [records]}."""
    out: dict[str, list[Any]] = {}
    for sec_name, rows, pos, rec_size in _parse_blocks(buf, hdr_len, off, length, min_rec,
                                                       what, strings):
        out.setdefault(sec_name, []).extend(make(rows, pos, rec_size, strings))
    return out


def _parse_blocks(
    buf: Any,
    hdr_len: int,
    off: int,
    length: int,
    min_rec: int,
    what: str,
    strings: _StringTable,
) -> list[_Block]:
    """Split one info blob into per-section blocks of raw u32 rows, checking its layout."""
    import struct

    out: list[_Block] = []
    if length == 0:
        return out
    _check_blob_bounds(buf, hdr_len, off, length, what)
    start = hdr_len + off
    end = start + length
    if length < 4:
        raise BTFError(f".BTF.ext: {what} too short for its record size at offset {start}")
    (rec_size,) = struct.unpack_from("<I", buf, start)
    if rec_size < min_rec or rec_size % 4:
        raise BTFError(f".BTF.ext: {what} record size {rec_size} at offset {start} is invalid")
    pos = start + 4
    while pos < end:
        if pos + 8 > end:
            raise BTFError(f".BTF.ext: truncated {what} block header at offset {pos}")
        name_off, num = struct.unpack_from("<II", buf, pos)
        sec_name = strings.get(name_off, f"{what} section name", pos)
        if not sec_name:
            raise BTFError(f".BTF.ext: {what} block at offset {pos} has an empty section name")
        if num == 0:
            raise BTFError(f".BTF.ext: {what} block for {sec_name!r} at offset {pos} is empty")
        pos += 8
        if pos + num * rec_size > end:
            raise BTFError(
                f".BTF.ext: {what} block for {sec_name!r} at offset {pos - 8} claims {num} "
                f"records of {rec_size} bytes, past the end of the blob"
            )
        # one C-level unpack per block; a record larger than we know keeps its
        # unknown tail words, which the builders ignore
        rows = list(struct.iter_unpack(f"<{rec_size // 4}I", buf[pos:pos + num * rec_size]))
        if any(map(and_, map(itemgetter(0), rows), repeat(7))):
            i = next(i for i, row in enumerate(rows) if row[0] & 7)
            raise BTFError(
                f".BTF.ext: {what} record at offset {pos + i * rec_size} has insn_off "
                f"{rows[i][0]}, not a multiple of the 8-byte instruction size"
            )
        out.append((sec_name, rows, pos, rec_size))
        pos += num * rec_size
    return out
