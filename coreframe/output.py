"""The output layer every tool shares: columns, JSON lines, lost counts, histograms.

A tool declares its record columns once (:class:`Col`: header, record field,
width, format, JSON key) and the layer renders them in libbpf-tools' text style
(a header line, printf-like alignment, ``-T``/``-t`` time columns first) or, with
``--json``, as one JSON object per line (the schema is in docs/output.md).
Lost and dropped counts go to stderr (and into ``Output.counts``), and
histograms print like libbpf-tools' ``print_log2_hist``/``print_linear_hist``
with the same data as JSON rows.

``coreframe run`` imports this module for most tools, so it imports neither json
(nor the re it pulls in) nor typing at module level: JSON text is built with the
C encoder json.dumps itself uses for strings, and ``json`` is imported only for
values that encoder cannot spell (nested dicts of unknown types).
"""

from __future__ import annotations

import sys
import time

from .runtime.startup import json_string_encoder as _string_encoder

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence
    from typing import Any, TextIO


def _first_enc_str(value: str) -> str:
    """Stands in for the string encoder until JSON is first written: loading the
    ``_json`` extension is a cost a text-only run never needs."""
    return json_string_encoder()(value)


# the string encoder json.dumps(ensure_ascii=False) uses, without importing json
_enc_str: Callable[[str], str] = _first_enc_str


def json_string_encoder() -> Callable[[str], str]:
    """The function ``json.dumps(ensure_ascii=False)`` quotes one str with (quotes
    included), for tools that write JSON by hand; json itself is not imported."""
    global _enc_str
    if _enc_str is _first_enc_str:
        _enc_str = _KIND_ENCODER[str] = _string_encoder()
    return _enc_str


# -- JSON values ----------------------------------------------------------------------------


class JSONText(str):
    """Text that is already valid JSON (a number, string, array...): written as is.

    For tools that build part of a record's JSON themselves, faster than the
    generic encoder can (execsnoop's argument arrays).
    """

    __slots__ = ()


def cstr(raw: bytes | bytearray | memoryview) -> str:
    """A C char array as text: up to the first NUL, undecodable bytes replaced."""
    return bytes(raw).partition(b"\0")[0].decode("utf-8", "replace")


def printable(text: str) -> str:
    """``text`` with the bytes that were not UTF-8 as U+FFFD.

    Typed records (coreframe.btf.values) decode char arrays with
    ``surrogateescape`` so the bytes survive; a lone surrogate cannot be written
    to a UTF-8 stream, so output shows them as the replacement character.
    """
    if text.isascii():
        return text
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _float(v: float) -> str:
    if v != v:
        return "NaN"
    if v in (float("inf"), float("-inf")):
        return "Infinity" if v > 0 else "-Infinity"
    return repr(v)


def to_plain(value: Any) -> Any:
    """A record (or part of one) as plain Python data: dicts, lists, str, int, float.

    Accepts what tools hand the layer: objects with ``to_dict()`` (typed records),
    dicts, ctypes structures, unions and arrays, bytes (C strings: cut at the
    first NUL) and plain scalars.
    """
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        return cstr(value)
    to_dict = getattr(value, "to_dict", None)
    if to_dict is not None:
        return to_plain(to_dict())
    if isinstance(value, dict):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    fields = getattr(type(value), "_fields_", None)
    if fields is not None:  # ctypes Structure / Union
        return {f[0]: to_plain(getattr(value, f[0])) for f in fields}
    if hasattr(value, "_length_") and hasattr(value, "_type_"):  # ctypes Array
        return [to_plain(v) for v in value]
    return str(value)


def encode_json(value: Any) -> str:
    """``value`` as compact JSON text, exactly as ``json.dumps(to_plain(value),
    separators=(",", ":"), ensure_ascii=False)`` would write it."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    tp = type(value)
    if tp is JSONText:
        return value
    if tp is str:
        return _enc_str(value if value.isascii() else printable(value))
    if tp is int:
        return int.__repr__(value)
    if tp is float:
        return _float(value)
    if tp is list or tp is tuple:
        return "[" + ",".join(map(encode_json, value)) + "]"
    if tp is dict:
        return "{" + ",".join(f"{_enc_str(str(k))}:{encode_json(v)}"
                              for k, v in value.items()) + "}"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return int.__repr__(value)
    if isinstance(value, float):
        return _float(value)
    if isinstance(value, str):
        return _enc_str(printable(value))
    return encode_json(to_plain(value))


def json_line(obj: dict[str, Any], out: TextIO) -> None:
    """Write one JSON object per line; flushed so pipes like ``| jq`` see it at once."""
    out.write(encode_json(obj))
    out.write("\n")
    out.flush()


# -- columns --------------------------------------------------------------------------------

_DEFAULT = object()


class Col:
    """One column of a tool's records: text header and layout, record field, JSON key.

    ``width`` follows printf: negative left-aligns (``%-16s``), positive
    right-aligns (``%7d``), 0 pads nothing (the last column). ``fmt`` is a format
    spec for the value (``".3f"``) or a callable turning the value into the text
    shown. ``field`` is the record attribute (or dict key) read by
    :meth:`Table.emit`; it defaults to the header in lower case. ``key`` is the
    JSON key (default: ``field``); ``key=None`` keeps the column out of JSON,
    ``header=None`` out of the text (see :func:`Field`). ``when`` names a tool
    option: the column is there only when that option is set (e.g. ``-U`` for a
    UID column). ``kind`` (int, float, str, bool or :class:`JSONText`) lets the
    JSON writer skip looking at the value's type, for tools that pass values
    positionally at high rates.
    """

    __slots__ = ("header", "field", "width", "fmt", "key", "when", "kind")

    def __init__(self, header: str | None, field: str | None = None, width: int = 0,
                 fmt: str | Callable[[Any], str] | None = None, *, key: Any = _DEFAULT,
                 when: str | None = None, kind: type | None = None) -> None:
        if field is None:
            if header is None:
                raise TypeError("Col needs a header or a field")
            field = header.lower()
        self.header = header
        self.field = field
        self.width = width
        self.fmt = fmt
        self.key = field if key is _DEFAULT else key
        self.when = when
        self.kind = kind

    def __repr__(self) -> str:
        return (f"Col({self.header!r}, {self.field!r}, {self.width}"
                + (f", key={self.key!r}" if self.key != self.field else "") + ")")

    def text_spec(self) -> str:
        """The str.format field for this column's value (``{:<16}``, ``{:>7.3f}``)."""
        spec = self.fmt if isinstance(self.fmt, str) else ""
        if self.width < 0:
            return "{:<" + str(-self.width) + spec + "}"
        if self.width > 0:
            return "{:>" + str(self.width) + spec + "}"
        return "{:" + spec + "}" if spec else "{}"

    def header_text(self) -> str:
        if self.width < 0:
            return f"{self.header:<{-self.width}}"
        if self.width > 0:
            return f"{self.header:>{self.width}}"
        return str(self.header)


def Field(field: str, key: Any = _DEFAULT, *, when: str | None = None,  # noqa: N802
          kind: type | None = None) -> Col:
    """A JSON-only member of the record (no text column)."""
    return Col(None, field, key=key, when=when, kind=kind)


class TimeCol(Col):
    """Where a record's time goes: libbpf-tools' ``-T`` (``TIME``, HH:MM:SS) and ``-t``
    (``TIME(s)``, seconds since tracing started) text columns, and the JSON ``time``
    key (wall-clock seconds, always present). A table without one gets it first."""

    __slots__ = ()

    def __init__(self) -> None:
        super().__init__(None, "time", key="time")


TIME = TimeCol()

# libbpf-tools' columns for -T and -t: printf("%-8s ", ...) and printf("%-8.3f ", ...)
_CLOCK_HEADER = f"{'TIME':<8} "
_SINCE_HEADER = f"{'TIME(s)':<8} "


class Table:
    """One record shape rendered for one run: text (with its header) or JSON lines.

    ``options`` are the tool's parsed options: ``as_json``, ``time`` (-T),
    ``timestamp`` (-t) and whatever the columns' ``when`` name. ``time_field``
    names the record field holding the event's CLOCK_MONOTONIC time in
    nanoseconds (``bpf_ktime_get_ns()``); without it a record is stamped when it
    is emitted.

    Two ways in: :meth:`emit` takes a record (typed object, dict, ctypes
    structure) and reads each column's field; :attr:`text_line` and
    :attr:`json_line` take the values positionally, in the order of
    :attr:`text_cols` / :attr:`json_cols`, for tools that decode records
    themselves at high rates. Both return the line; :meth:`emit` writes it.
    """

    def __init__(self, columns: Sequence[Col], out: TextIO | None = None,
                 options: dict[str, Any] | None = None, *, time_field: str | None = None,
                 mono_to_wall: float | None = None, start_ns: int | None = None) -> None:
        o = options or {}
        self.out = sys.stdout if out is None else out
        self.as_json = bool(o.get("as_json"))
        self.time_field = time_field
        self.mono_to_wall = (time.time() - time.monotonic()) if mono_to_wall is None \
            else mono_to_wall
        self.start_ns = time.monotonic_ns() if start_ns is None else start_ns
        cols = [c for c in columns if c.when is None or o.get(c.when)]
        if not any(isinstance(c, TimeCol) for c in cols):
            cols.insert(0, TIME)
        self.columns = cols
        self.text_cols = [c for c in cols if c.header is not None and not isinstance(c, TimeCol)]
        self.json_cols = [c for c in cols if c.key is not None and not isinstance(c, TimeCol)]
        self._show_clock = bool(o.get("time"))
        self._show_since = bool(o.get("timestamp"))
        self._time_at = next(i for i, c in enumerate(c for c in cols if c.key is not None)
                             if isinstance(c, TimeCol))
        self.text_line = self._text_writer()
        self._json_line: Callable[..., str] | None = None
        self._getter: Callable[[Any], tuple[Any, ...]] | None = None
        self._getter_type: type | None = None
        self.header_written = False

    # -- text --

    def header(self) -> str:
        """The header line (with its newline), libbpf-tools style."""
        parts = []
        if self._show_clock:
            parts.append(_CLOCK_HEADER)
        if self._show_since:
            parts.append(_SINCE_HEADER)
        parts.append(" ".join(c.header_text() for c in self.text_cols))
        return "".join(parts) + "\n"

    def write_header(self) -> None:
        """Print the header once (nothing in JSON mode), flushed."""
        if self.header_written:
            return
        self.header_written = True
        if not self.as_json and self.text_cols:
            self.out.write(self.header())
            self.out.flush()

    def time_prefix(self, ts_ns: int | None) -> str:
        """The -T / -t columns for an event at ``ts_ns`` (CLOCK_MONOTONIC ns)."""
        if ts_ns is None:
            ts_ns = time.monotonic_ns()
        parts = []
        if self._show_clock:
            parts.append(time.strftime("%H:%M:%S", time.localtime(ts_ns / 1e9 + self.mono_to_wall))
                         + " ")
        if self._show_since:
            parts.append(f"{(ts_ns - self.start_ns) / 1e9:<8.3f} ")
        return "".join(parts)

    def _text_writer(self) -> Callable[..., str]:
        fmt = (" ".join(c.text_spec() for c in self.text_cols) + "\n").format
        calls = [(i, c.fmt) for i, c in enumerate(self.text_cols) if callable(c.fmt)]
        prefixed = self._show_clock or self._show_since
        prefix = self.time_prefix
        if not calls and not prefixed:
            def line(values: Sequence[Any], ts_ns: int | None = None) -> str:
                return fmt(*values)
        else:
            def line(values: Sequence[Any], ts_ns: int | None = None) -> str:
                if calls:
                    values = list(values)
                    for i, f in calls:
                        values[i] = f(values[i])
                return (prefix(ts_ns) if prefixed else "") + fmt(*values)
        return line

    # -- JSON --

    @property
    def json_line(self) -> Callable[..., str]:
        """The JSON writer, built on first use: a text run never needs one (nor the
        ``_json`` string encoder it is built on)."""
        if self._json_line is None:
            self._json_line = self._json_writer()
        return self._json_line

    @json_line.setter
    def json_line(self, writer: Callable[..., str]) -> None:
        self._json_line = writer

    def _json_writer(self) -> Callable[..., str]:
        cols = self.json_cols
        parts = []
        convs: list[tuple[int, Callable[[Any], str]]] = []
        keys = [c.key for c in cols]
        keys.insert(self._time_at, "time")
        for i, key in enumerate(keys):
            parts.append(("{" if i == 0 else ",") + _enc_str(str(key)).replace("%", "%%") + ":")
            if i == self._time_at:
                parts.append("%r")
                continue
            j = i if i < self._time_at else i - 1
            kind = cols[j].kind
            if kind is int:
                parts.append("%d")
            elif kind is JSONText:
                parts.append("%s")
            else:
                parts.append("%s")
                convs.append((j, _KIND_ENCODER.get(kind, encode_json)))  # type: ignore[arg-type]
        template = "".join(parts) + "}\n"
        at = self._time_at
        wall = self.mono_to_wall
        monotonic_ns = time.monotonic_ns

        def line(values: Sequence[Any], ts_ns: int | None = None) -> str:
            values = list(values)
            for j, f in convs:
                values[j] = f(values[j])
            values.insert(at, (monotonic_ns() if ts_ns is None else ts_ns) / 1e9 + wall)
            return template % tuple(values)

        return line

    # -- records --

    def _values_of(self, record: Any) -> tuple[tuple[Any, ...], int | None]:
        tp = type(record)
        if tp is not self._getter_type:
            self._getter = self._make_getter(record)
            self._getter_type = tp
        assert self._getter is not None
        return self._getter(record)

    def _make_getter(self, record: Any) -> Callable[[Any], tuple[tuple[Any, ...], int | None]]:
        from _operator import attrgetter, itemgetter

        cols = self.json_cols if self.as_json else self.text_cols
        fields = [c.field for c in cols]
        tf = self.time_field
        if tf is not None:
            fields.append(tf)
        if not fields:
            return lambda r: ((), None)
        if isinstance(record, dict):
            get = itemgetter(*fields)
        elif hasattr(record, "to_dict") and not all(hasattr(record, f) for f in fields):
            by_key = itemgetter(*fields)

            def get(r: Any) -> Any:
                return by_key(r.to_dict())
        else:
            get = attrgetter(*fields)
        n = len(fields)
        as_json = self.as_json

        def values(r: Any) -> tuple[tuple[Any, ...], int | None]:
            got = get(r)
            if n == 1:
                got = (got,)
            ts = None
            if tf is not None:
                ts = got[-1]
                got = got[:-1]
            if as_json:
                return got, ts
            return tuple(map(_text_value, got)), ts

        return values

    def format(self, record: Any) -> str:
        """The line for ``record`` (text or JSON as the run asked)."""
        values, ts = self._values_of(record)
        if self.as_json:
            return self.json_line(values, ts)
        return self.text_line(values, ts)

    def emit(self, record: Any) -> None:
        """Write ``record`` as one line (the header first if it is still due)."""
        if not self.header_written:
            self.write_header()
        self.out.write(self.format(record))


def _json_bool(v: Any) -> str:
    return "true" if v else "false"


# what the JSON writer calls for a column of a declared kind (int needs nothing: %d)
_KIND_ENCODER = {str: _enc_str, bool: _json_bool, float: lambda v: _float(float(v))}


def _text_value(v: Any) -> Any:
    """What a text column shows for a field value: C strings decoded, None as '-'."""
    if type(v) is str:
        return v if v.isascii() else printable(v)
    if type(v) in (int, float):
        return v
    if v is None:
        return "-"
    if isinstance(v, (bytes, bytearray)):
        return cstr(v)
    plain = to_plain(v)
    return plain if isinstance(plain, (int, float, str)) else str(plain)


# -- lost and dropped records ---------------------------------------------------------------


class Output:
    """A run's output: its tables, lost/dropped counts and histograms.

    ``counts`` keeps every count reported through :meth:`lost`, by kind, for
    metrics exporters.
    """

    def __init__(self, out: TextIO, err: TextIO, options: dict[str, Any] | None = None,
                 columns: Sequence[Col] | None = None, time_field: str | None = None) -> None:
        self.out = out
        self.err = err
        self.options = dict(options or {})
        self.as_json = bool(self.options.get("as_json"))
        self.counts: dict[str, int] = {}
        self.metrics: Any = None  # the run's coreframe.metrics.MetricSet, when exported
        self._columns = columns
        self._time_field = time_field
        self._table: Table | None = None

    def table(self, columns: Sequence[Col] | None = None, **kwargs: Any) -> Table:
        """A table for these columns (default: the tool's declared ``columns``)."""
        if columns is None:
            if self._table is not None and not kwargs:
                return self._table
            if self._columns is None:
                from .errors import ToolError

                raise ToolError("this tool declares no columns: set Tool.columns or pass "
                                "columns to ctx.table()")
            kwargs.setdefault("time_field", self._time_field)
            self._table = Table(self._columns, self.out, self.options, **kwargs)
            return self._table
        return Table(columns, self.out, self.options, **kwargs)

    def lost(self, count: int, what: str = "events", *, detail: dict[str, int] | None = None,
             message: str | None = None, event: str = "lost", stamp: bool = False,
             counted: int = 0) -> None:
        """Report ``count`` records lost (or dropped) on stderr, and with --json as a record.

        Nothing is printed for a count of 0. The stderr line is ``message`` or
        ``Lost N <what> (k: v, ...).``; the JSON record is ``{"event": <event>,
        "count": N, **detail}`` (with ``"time"`` first when ``stamp``). ``counted``:
        how many of them the run's metrics already hold (a collect hook that followed
        the kernel's counter while the run went on), so none is counted twice.
        """
        self.counts[event] = self.counts.get(event, 0) + count
        if count <= 0:
            return
        if self.metrics is not None and count > counted:
            self.metrics.inc("coreframe_lost_records", (event,), count - counted)
        if message is None:
            extra = ", ".join(f"{k}: {v}" for k, v in (detail or {}).items())
            message = f"Lost {count} {what}" + (f" ({extra})" if extra else "") + "."
        print(message, file=self.err, flush=True)
        if self.as_json:
            doc: dict[str, Any] = {"time": time.time()} if stamp else {}
            doc.update({"event": event, "count": count})
            doc.update(detail or {})
            json_line(doc, self.out)

    def hist(self, vals: Sequence[int], unit: str = "value", *,
             linear: tuple[int, int] | None = None, numbering: str = "libbpf",
             labels: dict[str, Any] | None = None, title: str | None = None) -> None:
        """Print a histogram (text like libbpf-tools) or one JSON record with its rows."""
        h = Histogram(vals, unit, linear=linear, numbering=numbering)
        if self.as_json:
            doc: dict[str, Any] = {"time": time.time()}
            doc.update(labels or {})
            doc["unit"] = unit
            doc["hist"] = h.rows()
            json_line(doc, self.out)
            return
        if title:
            self.out.write(title + "\n")
        text = h.text()
        if text:
            self.out.write(text + "\n")
        self.out.flush()


# -- histograms -----------------------------------------------------------------------------


def log2_bounds(slot: int) -> tuple[int, int]:
    """Inclusive [lo, hi] of log2 slot ``slot``: slot 0 holds 0, slot i holds 2^(i-1)..2^i-1.

    This is bcc's slot numbering (``bpf_log2l(v)`` = floor(log2 v) + 1), kept
    exact so text, JSON and Prometheus show the same bounds.
    """
    if slot == 0:
        return 0, 0
    return 1 << (slot - 1), (1 << slot) - 1


def libbpf_log2_bounds(slot: int) -> tuple[int, int]:
    """Inclusive [lo, hi] of slot ``slot`` in libbpf-tools' numbering (``log2l(v)``:
    floor(log2 v), 0 for 0): slot 0 holds 0 and 1, slot i holds 2^i..2^(i+1)-1."""
    if slot == 0:
        return 0, 1
    return 1 << slot, (1 << (slot + 1)) - 1


def _stars(count: int, max_count: int, width: int) -> str:
    if max_count <= 0:
        return ""
    n = min(width, count * width // max_count)
    text = "*" * n
    if count > max_count:
        text = text[:-1] + "+"
    return text


def _libbpf_stars(val: int, val_max: int, width: int) -> str:
    """libbpf-tools' print_stars: min(val, max) * width / max stars, padded, '+' past max."""
    n = min(val, val_max) * width // val_max
    return "*" * n + " " * (width - n) + ("+" if val > val_max else "")


class Histogram:
    """A log2 or linear histogram's slots, as libbpf-tools prints them and as JSON rows.

    ``linear=(base, step)`` makes slot i hold ``base + i*step`` (print_linear_hist);
    otherwise slots are log2, numbered like libbpf-tools (``numbering="libbpf"``,
    print_log2_hist) or like bcc (``"bcc"``: slot 0 holds 0 only).
    """

    def __init__(self, vals: Iterable[int], unit: str = "value", *,
                 linear: tuple[int, int] | None = None, numbering: str = "libbpf") -> None:
        if numbering not in ("libbpf", "bcc"):
            raise ValueError(f"histogram numbering {numbering!r}: want 'libbpf' or 'bcc'")
        self.vals = [int(v) for v in vals]
        self.unit = unit
        self.linear = linear
        self.numbering = numbering

    def bounds(self, slot: int) -> tuple[int, int]:
        if self.linear is not None:
            base, step = self.linear
            return base + slot * step, base + (slot + 1) * step - 1
        return (libbpf_log2_bounds if self.numbering == "libbpf" else log2_bounds)(slot)

    def rows(self) -> list[dict[str, int]]:
        """The non-empty slots as ``{"lo", "hi", "count"}`` (inclusive bounds)."""
        out = []
        for i, count in enumerate(self.vals):
            if count:
                lo, hi = self.bounds(i)
                out.append({"lo": lo, "hi": hi, "count": count})
        return out

    def text(self) -> str:
        """The histogram as libbpf-tools prints it ("" when every slot is empty)."""
        if self.linear is not None:
            return format_linear_hist(self.vals, self.linear[0], self.linear[1], self.unit)
        if self.numbering == "bcc":
            return format_log2_hist(self.vals, self.unit)
        return format_libbpf_log2_hist(self.vals, self.unit)


def format_libbpf_log2_hist(vals: Sequence[int], val_type: str = "value") -> str:
    """Exactly what libbpf-tools' ``print_log2_hist(vals, n, val_type)`` prints
    (without the final newline), for slots in its numbering (:func:`libbpf_log2_bounds`)."""
    idx_max = max((i for i, v in enumerate(vals) if v > 0), default=-1)
    if idx_max < 0:
        return ""
    val_max = max(vals)
    narrow = idx_max <= 32
    stars = 40 if narrow else 20
    width = 10 if narrow else 20
    lines = [f"{'':{5 if narrow else 15}}{val_type:<{19 if narrow else 29}} : count    "
             "distribution"]
    for i in range(idx_max + 1):
        low = (1 << (i + 1)) >> 1
        high = (1 << (i + 1)) - 1
        if low == high:
            low -= 1
        lines.append(f"{low:>{width}} -> {high:<{width}} : {vals[i]:<8} |"
                     f"{_libbpf_stars(vals[i], val_max, stars)}|")
    return "\n".join(lines)


def format_linear_hist(vals: Sequence[int], base: int, step: int,
                       val_type: str = "value") -> str:
    """Exactly what libbpf-tools' ``print_linear_hist`` prints (empty slots skipped)."""
    nonzero = [i for i, v in enumerate(vals) if v > 0]
    if not nonzero:
        return ""
    val_max = max(vals)
    lines = [f"     {val_type:<13} : count     distribution"]
    for i in range(nonzero[0], nonzero[-1] + 1):
        if not vals[i]:
            continue
        lines.append(f"        {base + i * step:<10} : {vals[i]:<8} |"
                     f"{_libbpf_stars(vals[i], val_max, 40)}|")
    return "\n".join(lines)


def format_log2_hist(slots: Sequence[int], unit: str = "value", width: int = 40) -> str:
    """Render a log2 histogram in bcc's slot numbering (:func:`log2_bounds`), with
    columns only as wide as its largest bound (readhist's text).

    Trailing empty slots are dropped; leading ones are kept so the scale
    starts at zero as users expect.
    """
    last = max((i for i, v in enumerate(slots) if v), default=-1)
    if last < 0:
        return ""
    rows = [log2_bounds(i) for i in range(last + 1)]
    max_count = max(slots[: last + 1])
    lo_w = max(len(str(lo)) for lo, _ in rows)
    hi_w = max(len(str(hi)) for _, hi in rows)
    head_w = lo_w + hi_w + 5
    lines = [f"{unit:>{head_w}} : count    distribution"]
    for i, (lo, hi) in enumerate(rows):
        count = slots[i]
        bar = _stars(count, max_count, width)
        lines.append(f"{lo:>{lo_w}} -> {hi:<{hi_w}} : {count:<8} |{bar:<{width}}|")
    return "\n".join(lines)


# -- reading records ------------------------------------------------------------------------


def _record_maker(record_type: Any, btf: Any) -> Any:
    """``make(buf, off, n)`` for ``record_type`` (coreframe.btf.values), or None for bytes."""
    if record_type is None:
        return None
    if isinstance(record_type, str) and btf is None:
        from .errors import ToolError

        raise ToolError(f"records({record_type!r}): a type given by name needs the object's "
                        "BTF: ctx.records(obj.maps.events, 'struct event', btf=obj.btf)")
    from .btf.values import record_maker

    return record_maker(record_type, btf)


def records(ctx: Any, source: Any, record_type: Any = None, *, btf: Any = None,
            cap: float = 0.1) -> Any:
    """The generator behind ``RunContext.records`` (see there)."""
    if btf is None:
        btf = getattr(source, "btf", None)  # a map knows its object's BTF
    make = _record_maker(record_type, btf)
    if hasattr(source, "poll_records"):
        reader, owned = source, False
    else:
        reader, owned = source.reader(), True
    if ctx.tool is not None and getattr(ctx.tool, "columns", None) is not None:
        ctx.header()
    flush = ctx.out.flush

    def batch(timeout: float) -> Any:
        # Every record is passed on: one of another size than its type (a
        # variable-length record) decodes its complete fields and keeps the rest
        # in .tail (coreframe.btf.values), so decoding never drops one.
        got = False
        for rec in reader.poll_records(timeout):
            got = True
            yield bytes(rec) if make is None else make(rec, 0, len(rec))
        if got:
            flush()

    try:
        while not ctx.should_stop():
            yield from batch(ctx.poll_timeout(cap))
        yield from batch(0)  # what came in before the stop
    finally:
        lost = getattr(reader, "lost", 0) if hasattr(reader, "lost_callback") else 0
        if owned:
            reader.close()
        flush()
        if lost:
            ctx.lost(lost, "events", detail={"perf buffer": lost},
                     message=f"Lost {lost} events (perf buffer full).")
