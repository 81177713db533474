"""pycalls' report rows (the one place text and JSON rows are built) from decoded map values."""

from __future__ import annotations

import struct

from coreframe_plugins.pycalls import MAX_SLOTS, Stat, build_rows, gc_row, module_of


def _stat(count: int, total: int, slots: dict[int, int]) -> Stat:
    raw = struct.pack(f"<QQ{MAX_SLOTS}Q", count, total,
                      *[slots.get(i, 0) for i in range(MAX_SLOTS)])
    return Stat.decode(raw)


def test_rows_sorted_topped_and_keyed() -> None:
    stats = {
        ("/srv/app/db.py", "query", 10): _stat(5, 9_000, {13: 5}),
        ("/srv/app/db.py", "connect", 3): _stat(1, 50_000, {16: 1}),
        ("<frozen importlib._bootstrap>", "_find", 7): _stat(9, 900, {6: 9}),
        ("/srv/app/idle.py", "never", 1): _stat(0, 0, {}),
    }
    by_count = build_rows(stats, "count", None, 1.0)
    assert [r["name"] for r in by_count] == ["importlib._bootstrap:_find:7", "db:query:10",
                                            "db:connect:3"]
    by_time = build_rows(stats, "time", 2, 1.0)
    assert [r["function"] for r in by_time] == ["connect", "query"]
    q = by_time[1]
    assert {k: q[k] for k in ("file", "line", "count", "total_ns", "avg_ns", "module")} == {
        "file": "/srv/app/db.py", "line": 10, "count": 5, "total_ns": 9_000, "avg_ns": 1_800,
        "module": "db"}
    assert q["hist"] == [{"lo": 4096, "hi": 8191, "count": 5}]


def test_interval_delta_and_gc_row() -> None:
    before = _stat(2, 100, {3: 2})
    now = _stat(5, 400, {3: 4, 4: 1})
    d = now.minus(before)
    assert (d.count, d.total_ns, d.slots[3], d.slots[4]) == (3, 300, 2, 1)
    assert now.minus(None) is now
    row = gc_row(d, 2.0)
    assert row["event"] == "gc" and row["count"] == 3
    assert module_of("/usr/lib/python3.11/json/decoder.py") == "decoder"
    assert module_of("<stdin>") == "<stdin>"
