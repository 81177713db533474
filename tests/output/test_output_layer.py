"""coreframe.output: columns rendered like printf (libbpf-tools' text), JSON lines equal to
json.dumps, -T/-t time columns, lost counts, and histograms spelled like libbpf-tools'
print_log2_hist / print_linear_hist."""

# ruff: noqa: UP031 - printf-style % formatting is the point: it spells the C formats

from __future__ import annotations

import ctypes
import io
import json
import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coreframe.output import (
    TIME,
    Col,
    Field,
    Histogram,
    JSONText,
    Output,
    Table,
    encode_json,
    format_libbpf_log2_hist,
    format_linear_hist,
    libbpf_log2_bounds,
)
from coreframe.tool import RunContext, Tool, run_params

COLS = (Col("PID", "pid", 7), Col("COMM", "comm", -16), Col("LAT(ms)", "lat", 8, ".3f"),
        Col("PATH", "path"))


class Rec:
    """A record as the typed-data layer hands them over: attributes and to_dict()."""

    def __init__(self, **kw: Any) -> None:
        self.__dict__.update(kw)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class Event(ctypes.Structure):
    _fields_ = [("pid", ctypes.c_uint32), ("comm", ctypes.c_char * 16),
                ("lat", ctypes.c_double), ("path", ctypes.c_char * 32)]


def _table(options: dict[str, Any] | None = None, cols: Any = COLS, **kw: Any) -> tuple[
        Table, io.StringIO]:
    out = io.StringIO()
    return Table(cols, out, options or {}, mono_to_wall=1000.0, start_ns=0, **kw), out


def test_text_is_printf_aligned_with_a_header() -> None:
    table, out = _table()
    table.emit({"pid": 42, "comm": "bash", "lat": 1.5, "path": "/etc/passwd"})
    table.emit(Rec(pid=7, comm="x" * 20, lat=12345.6789, path=""))
    # the same layout spelled with printf's conversions (Python's % follows C's printf)
    assert out.getvalue().splitlines() == [
        "%7s %-16s %8s %s" % ("PID", "COMM", "LAT(ms)", "PATH"),
        "%7d %-16s %8.3f %s" % (42, "bash", 1.5, "/etc/passwd"),
        "%7d %-16s %8.3f %s" % (7, "x" * 20, 12345.6789, ""),
    ]


def test_every_record_kind_gives_the_same_line() -> None:
    want = None
    for rec in ({"pid": 1, "comm": "a", "lat": 0.25, "path": "/p"},
                Rec(pid=1, comm="a", lat=0.25, path="/p"),
                Event(1, b"a", 0.25, b"/p")):
        for as_json in (False, True):
            table, out = _table({"as_json": as_json})
            table.emit(rec)
            line = out.getvalue().splitlines()[-1]
            if as_json:
                doc = json.loads(line)
                del doc["time"]
                assert doc == {"pid": 1, "comm": "a", "lat": 0.25, "path": "/p"}
            elif want is None:
                want = line
            else:
                assert line == want


@settings(max_examples=300, deadline=None)
@given(pid=st.integers(0, 2**32), comm=st.text(max_size=20), lat=st.floats(allow_nan=False),
       path=st.one_of(st.text(max_size=40), st.none()))
def test_json_line_equals_json_dumps(pid: int, comm: str, lat: float, path: str | None) -> None:
    out = io.StringIO()
    ts = 5_000_000_000
    rec = {"pid": pid, "comm": comm, "lat": lat, "path": path, "ts": ts}
    table = Table(COLS, out, {"as_json": True}, time_field="ts", mono_to_wall=1000.0)
    table.emit(rec)
    want = {"time": ts / 1e9 + 1000.0, "pid": pid, "comm": comm, "lat": lat, "path": path}
    assert out.getvalue() == json.dumps(want, separators=(",", ":"), ensure_ascii=False) + "\n"


@settings(max_examples=300, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
                    lambda kids: st.lists(kids) | st.dictionaries(st.text(), kids),
                    max_leaves=20))
def test_encode_json_equals_json_dumps(value: Any) -> None:
    assert encode_json(value) == json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def test_positional_writers_and_kinds() -> None:
    cols = (Field("event", kind=JSONText), TIME, Col("PID", "pid", -6, kind=int),
            Field("ok", kind=bool), Col("NAME", "name", kind=str), Col("NOTE", "note", key=None))
    table, _ = _table({"as_json": True}, cols)
    assert [c.field for c in table.json_cols] == ["event", "pid", "ok", "name"]
    assert [c.field for c in table.text_cols] == ["pid", "name", "note"]
    line = table.json_line((JSONText('"exec"'), 5, 1, 'a"b'), 2_000_000_000)
    assert line == '{"event":"exec","time":1002.0,"pid":5,"ok":true,"name":"a\\"b"}\n'
    text, _ = _table({}, cols)
    assert text.header() == "PID    NAME NOTE\n"
    assert text.text_line((5, "n", "x")) == "5      n x\n"


def test_when_column_and_time_columns() -> None:
    cols = (Col("UID", "uid", -6, when="print_uid"), Col("PCOMM", "comm", -16))
    plain, _ = _table({}, cols)
    assert plain.header() == f"{'PCOMM':<16}\n"
    table, out = _table({"print_uid": True, "time": True, "timestamp": True}, cols,
                        time_field="ts")
    assert table.header() == f"{'TIME':<8} {'TIME(s)':<8} {'UID':<6} {'PCOMM':<16}\n"
    table.emit({"uid": 0, "comm": "sh", "ts": 2_500_000_000})
    clock = time.strftime("%H:%M:%S", time.localtime(1002.5))
    assert out.getvalue().splitlines()[1] == f"{clock} {'2.500':<8} {0:<6} {'sh':<16}"


def test_json_mode_prints_no_header_and_time_first() -> None:
    table, out = _table({"as_json": True})
    table.write_header()
    assert out.getvalue() == ""
    table.emit({"pid": 1, "comm": "a", "lat": 1.0, "path": "/"})
    assert list(json.loads(out.getvalue())) == ["time", "pid", "comm", "lat", "path"]


def test_lost_goes_to_stderr_and_json() -> None:
    out, err = io.StringIO(), io.StringIO()
    o = Output(out, err, {"as_json": True})
    o.lost(0)
    assert (out.getvalue(), err.getvalue()) == ("", "")
    o.lost(3, detail={"exec": 1, "exit": 2})
    assert err.getvalue() == "Lost 3 events (exec: 1, exit: 2).\n"
    assert json.loads(out.getvalue()) == {"event": "lost", "count": 3, "exec": 1, "exit": 2}
    o.lost(2, "reads", event="dropped", stamp=True)
    assert list(json.loads(out.getvalue().splitlines()[-1])) == ["time", "event", "count"]
    assert o.counts == {"lost": 3, "dropped": 2}


def _c_stars(val: int, val_max: int, width: int) -> str:
    n = min(val, val_max) * width // val_max
    return "*" * n + " " * (width - n) + ("+" if val > val_max else "")


@pytest.mark.parametrize("vals", [[0, 1], [3, 0, 1, 7], [0] * 5 + [1000, 2, 0, 0, 1],
                                  [1] * 34, [0] * 40 + [9]])
def test_log2_histogram_is_print_log2_hist(vals: list[int]) -> None:
    """Each line spelled with print_log2_hist's printf formats (Python % is printf)."""
    idx_max = max(i for i, v in enumerate(vals) if v)
    narrow = idx_max <= 32
    want = ["%*s%-*s : count    distribution" % (5 if narrow else 15, "",
                                                 19 if narrow else 29, "usecs")]
    for i in range(idx_max + 1):
        low, high = libbpf_log2_bounds(i)
        w = 10 if narrow else 20
        want.append("%*d -> %-*d : %-8d |%s|" % (w, low, w, high, vals[i],
                                                _c_stars(vals[i], max(vals), 40 if narrow else 20)))
    assert format_libbpf_log2_hist(vals, "usecs").split("\n") == want
    assert Histogram(vals, "usecs").text() == "\n".join(want)


def test_log2_rows_cover_what_log2l_puts_in_each_slot() -> None:
    for v in [0, 1, 2, 3, 4, 1023, 1024, 2**40]:
        slot = max(v.bit_length() - 1, 0)  # libbpf-tools' log2l(v)
        lo, hi = libbpf_log2_bounds(slot)
        assert lo <= v <= hi
    assert Histogram([0, 2, 0, 1]).rows() == [{"lo": 2, "hi": 3, "count": 2},
                                              {"lo": 8, "hi": 15, "count": 1}]


def test_linear_histogram_is_print_linear_hist() -> None:
    vals = [0, 0, 4, 0, 1, 8]
    want = ["     %-13s : count     distribution" % "msecs"]
    for i in (2, 4, 5):
        want.append("        %-10d : %-8d |%s|" % (10 + i * 5, vals[i], _c_stars(vals[i], 8, 40)))
    assert format_linear_hist(vals, 10, 5, "msecs").split("\n") == want
    h = Histogram(vals, "msecs", linear=(10, 5))
    assert h.rows()[0] == {"lo": 20, "hi": 24, "count": 4}
    assert format_linear_hist([0, 0], 0, 1) == ""


def test_hist_as_json_record() -> None:
    out = io.StringIO()
    Output(out, io.StringIO(), {"as_json": True}).hist([0, 3], "bytes", labels={"pid": 9})
    doc = json.loads(out.getvalue())
    assert list(doc) == ["time", "pid", "unit", "hist"]
    assert doc["hist"] == [{"lo": 2, "hi": 3, "count": 3}]


class _Cols(Tool):
    name = "cols"
    columns = COLS
    time_columns = True


class _Plain(Tool):
    name = "plain"


def test_declared_columns_add_json_and_time_options() -> None:
    names = [p.name for p in run_params(_Cols)]
    assert names == ["time", "timestamp", "as_json", "otlp", "core_btf",  # --otlp: events
                     "duration"]
    assert [p.name for p in run_params(_Plain)] == ["core_btf", "duration"]  # --btf: all


def test_context_emit_uses_the_tool_columns() -> None:
    out = io.StringIO()
    ctx = RunContext(out=out, err=io.StringIO())
    ctx.tool = _Cols(as_json=False, time=False, timestamp=False)
    ctx.header()
    ctx.emit({"pid": 1, "comm": "c", "lat": 2.0, "path": "/x"})
    assert out.getvalue().splitlines()[1] == "%7d %-16s %8.3f %s" % (1, "c", 2.0, "/x")


def test_undecodable_bytes_show_as_replacement_characters() -> None:
    """Typed records keep non-UTF-8 bytes as surrogates; output must still be UTF-8."""
    path = b"/tmp/caf\xc3\xa9-\xff".decode("utf-8", "surrogateescape")
    for as_json in (False, True):
        table, out = _table({"as_json": as_json})
        table.emit({"pid": 1, "comm": "a", "lat": 0.0, "path": path})
        line = out.getvalue().splitlines()[-1]
        line.encode("utf-8")  # strict: no lone surrogates left
        assert "/tmp/caf\u00e9-\ufffd" in (json.loads(line)["path"] if as_json else line)
