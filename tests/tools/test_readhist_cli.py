"""Issue 7: `coreframe run readhist` checked end to end through the console script.

A separate process read()s fixed sizes (1000 x 16, 1000 x 128, 1000 x 2048
bytes) while the real CLI traces it; the histogram it prints must hold exactly
those counts in bcc's slots (slot i = 2^(i-1)..2^i-1, slot 0 = 0).
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from read_loop import ReadLoop, slot_of
from tool_proc import COREFRAME, ToolProcess

from coreframe.output import log2_bounds

pytestmark = pytest.mark.usefixtures("need_root")

WORKLOAD = [(16, 1000), (128, 1000), (2048, 1000)]


def _name(tag: str) -> str:
    """A comm (at most 15 bytes) unique to this test run."""
    return f"cf{tag}{os.getpid() % 100000}"[:15]


def _hist_of(rec: dict[str, Any]) -> dict[int, int]:
    """JSON hist -> {slot: count}, checking each bucket's bounds are its slot's."""
    out = {}
    for bucket in rec["hist"]:
        slot = bucket["hi"].bit_length()
        assert (bucket["lo"], bucket["hi"]) == log2_bounds(slot), bucket
        out[slot] = bucket["count"]
    return out


def _assert_consistent(rec: dict[str, Any]) -> None:
    """reads is the sum of the buckets; bytes lies within the buckets' bounds."""
    assert rec["reads"] == sum(b["count"] for b in rec["hist"])
    lo = sum(b["lo"] * b["count"] for b in rec["hist"])
    hi = sum(b["hi"] * b["count"] for b in rec["hist"])
    assert lo <= rec["bytes"] <= hi, rec


def _sum_records(recs: list[dict[str, Any]]) -> tuple[dict[int, int], int, int]:
    slots: dict[int, int] = {}
    for rec in recs:
        for slot, n in _hist_of(rec).items():
            slots[slot] = slots.get(slot, 0) + n
    return slots, sum(r["reads"] for r in recs), sum(r["bytes"] for r in recs)


def test_json_exact_slots_for_pid(tmp_path: Path) -> None:
    """-p PID --json, Ctrl-C once: exactly the workload's reads, nothing else."""
    with ReadLoop(tmp_path, _name("rj"), [WORKLOAD]) as wl, \
            ToolProcess(["readhist", "-p", str(wl.pid), "--json"]) as tracer:
        wl.go()
        wl.finish()
        assert tracer.stop() == 0, tracer.stderr
    recs = tracer.json_records()
    assert [r["pid"] for r in recs] == [wl.pid], recs  # nothing from other processes
    [rec] = recs
    slots, reads, nbytes = wl.expected()
    assert slots == {5: 1000, 8: 1000, 12: 1000}
    assert _hist_of(rec) == slots
    assert rec["reads"] == reads == 3000
    assert rec["bytes"] == nbytes == 1000 * (16 + 128 + 2048)
    assert rec["errors"] == 0 and rec["comm"] == wl.name
    _assert_consistent(rec)


def test_json_intervals_add_up(tmp_path: Path) -> None:
    """--interval: per-interval records (cleared in between) sum to the workload."""
    with ReadLoop(tmp_path, _name("ri"), [WORKLOAD]) as wl, \
            ToolProcess(["readhist", "-p", str(wl.pid), "--json", "--interval", "0.2"]) as tr:
        wl.go()
        want_slots, want_reads, want_bytes = wl.expected()
        assert tr.wait_stdout(lambda ls: sum(json.loads(x)["reads"] for x in ls) >= want_reads)
        wl.finish()
        assert tr.stop() == 0, tr.stderr
    recs = tr.json_records()
    assert recs and all(r["pid"] == wl.pid for r in recs)
    for rec in recs:
        _assert_consistent(rec)
    assert _sum_records(recs) == (want_slots, want_reads, want_bytes)


def test_clearing_loses_no_reads_of_a_busy_reader(tmp_path: Path) -> None:
    """Reads keep coming while intervals are taken: every one lands in exactly one interval.

    (Deleting map entries to clear them used to drop the reads counted between
    the read-out and the deletion.)
    """
    n = 200_000
    with ReadLoop(tmp_path, _name("rb"), [[(16, n)]]) as wl, \
            ToolProcess(["readhist", "-p", str(wl.pid), "--json", "-i", "0.01"]) as tr:
        wl.go()
        wl.finish()
        assert tr.wait_stdout(lambda ls: sum(json.loads(x)["reads"] for x in ls) >= n)
        assert tr.stop() == 0, tr.stderr
    recs = tr.json_records()
    # (the reads normally spread over tens of intervals; not asserted: that is timing)
    assert _sum_records(recs) == ({5: n}, n, 16 * n)


_ROW = re.compile(r"^ *(\d+) -> (\d+) *: (\d+) +\|([* +]*)\|$")


def _parse_text(lines: list[str]) -> list[tuple[str, list[tuple[int, int, int, str]]]]:
    """bcc-style blocks: a title line, the 'bytes : count distribution' header, rows."""
    blocks: list[tuple[str, list[tuple[int, int, int, str]]]] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if not line.strip():
            continue
        assert "reads = " in line, line
        title = line
        assert re.fullmatch(r" *bytes : count    distribution", lines[i]), lines[i]
        i += 1
        rows = []
        while i < len(lines) and (m := _ROW.match(lines[i])):
            rows.append((int(m[1]), int(m[2]), int(m[3]), m[4]))
            i += 1
        blocks.append((title, rows))
    return blocks


def test_text_histogram_block(tmp_path: Path) -> None:
    with ReadLoop(tmp_path, _name("rt"), [WORKLOAD]) as wl, \
            ToolProcess(["readhist", "-p", str(wl.pid)]) as tracer:
        wl.go()
        wl.finish()
        assert tracer.stop() == 0, tracer.stderr
    [(title, rows)] = _parse_text(tracer.stdout)
    assert title.strip() == (f"pid = {wl.pid} comm = {wl.name}  reads = 3000 "
                             f"bytes = {1000 * (16 + 128 + 2048)} errors = 0")
    # every slot from 0 up to the last non-empty one, in order, with bcc's bounds
    assert [(lo, hi) for lo, hi, _, _ in rows] == [log2_bounds(i) for i in range(13)]
    assert {i: n for i, (_, _, n, _) in enumerate(rows) if n} == {5: 1000, 8: 1000,
                                                                   12: 1000}
    for _, _, n, bar in rows:
        assert bar == ("*" * 40 if n else " " * 40)
    # the columns line up: every "->", ":" and "|" at the same place
    raw = [ln for ln in tracer.stdout if "->" in ln]
    for ch in ("->", ":", "|"):
        assert len({ln.index(ch) for ln in raw}) == 1, raw


def test_per_comm_and_comm_filter(tmp_path: Path) -> None:
    """--per-comm -c NAME: one record adding up both processes of that name, no others."""
    name, other = _name("rc"), _name("ro")
    with ReadLoop(tmp_path, name, [WORKLOAD]) as a, \
            ReadLoop(tmp_path, name, [[(64, 300)]]) as b, \
            ReadLoop(tmp_path, other, [[(64, 300)]]) as c, \
            ToolProcess(["readhist", "--per-comm", "-c", name, "--json"]) as tracer:
        for wl in (a, b, c):
            wl.go()
            wl.finish()
        assert tracer.stop() == 0, tracer.stderr
    [rec] = tracer.json_records()
    assert rec["comm"] == name and rec["pid"] is None
    assert _hist_of(rec) == {5: 1000, 7: 300, 8: 1000, 12: 1000}
    assert rec["reads"] == 3300 and rec["bytes"] == 1000 * (16 + 128 + 2048) + 300 * 64
    # and in text mode the title names the comm, not a pid
    with ReadLoop(tmp_path, name, [[(64, 10)]]) as d, \
            ToolProcess(["readhist", "--per-comm", "-c", name]) as tracer:
        d.go()
        d.finish()
        assert tracer.stop() == 0
    [(title, _rows)] = _parse_text(tracer.stdout)
    assert title.startswith(f"comm = {name}  reads = 10 ")


def test_comm_filter_and_top(tmp_path: Path) -> None:
    """-c keeps one name; --top N keeps the N processes with the most reads."""
    name = _name("rp")
    with ReadLoop(tmp_path, name, [WORKLOAD]) as big, \
            ReadLoop(tmp_path, name, [[(64, 200)]]) as small, \
            ToolProcess(["readhist", "-c", name, "--json"]) as every, \
            ToolProcess(["readhist", "-c", name, "--top", "1", "--json"]) as top:
        for wl in (big, small):
            wl.go()
            wl.finish()
        assert every.stop() == 0 and top.stop() == 0
    assert sorted(r["pid"] for r in every.json_records()) == sorted([big.pid, small.pid])
    assert all(r["comm"] == name for r in every.json_records())
    [rec] = top.json_records()
    assert rec["pid"] == big.pid and rec["reads"] == 3000


def test_count_with_interval_stops_by_itself() -> None:
    with ToolProcess(["readhist", "-p", str(os.getpid()), "-T", "--interval", "0.2",
                      "--count", "3"]) as tracer:
        assert tracer.wait() == 0, tracer.stderr
    stamps = [ln for ln in tracer.stdout if re.fullmatch(r"\d\d:\d\d:\d\d", ln)]
    assert len(stamps) == 3, tracer.stdout


def test_cumulative_versus_clearing(tmp_path: Path) -> None:
    """Between intervals the histograms are cleared, unless --cumulative."""
    phases = [[(16, 1000)], [(2048, 1000)]]
    with ReadLoop(tmp_path, _name("rk"), phases) as wl, \
            ToolProcess(["readhist", "-p", str(wl.pid), "--json", "-i", "0.2"]) as clearing, \
            ToolProcess(["readhist", "-p", str(wl.pid), "--json", "-i", "0.2",
                         "--cumulative"]) as cumulative:

        def total(tr: ToolProcess, slot: int) -> int:
            return sum(_hist_of(r).get(slot, 0) for r in tr.json_records())

        def last(tr: ToolProcess, slot: int) -> int:
            recs = tr.json_records()
            return _hist_of(recs[-1]).get(slot, 0) if recs else 0

        wl.go()
        assert clearing.wait_stdout(lambda _: total(clearing, 5) >= 1000)
        assert cumulative.wait_stdout(lambda _: last(cumulative, 5) >= 1000)
        wl.go()
        assert clearing.wait_stdout(lambda _: total(clearing, 12) >= 1000)
        assert cumulative.wait_stdout(lambda _: last(cumulative, 12) >= 1000)
        wl.finish()
        assert clearing.stop() == 0 and cumulative.stop() == 0
    cleared = clearing.json_records()
    assert _sum_records(cleared) == wl.expected()
    # phase 2's records start from zero: none of them still holds phase 1's reads
    assert all(_hist_of(r).keys() == {12} for r in cleared if 12 in _hist_of(r))
    kept = cumulative.json_records()
    assert _hist_of(kept[-1]) == {5: 1000, 12: 1000} and kept[-1]["reads"] == 2000
    # cumulative counts never go down
    for before, after in zip(kept, kept[1:]):
        assert after["reads"] >= before["reads"]


def test_banner_names_method_and_list_shows_it() -> None:
    """The tracepoint path is picked by probing here; the banner says what it misses."""
    with ToolProcess(["readhist", "-p", str(os.getpid()), "--duration", "0.2"]) as tracer:
        assert tracer.wait() == 0
    [banner] = [ln for ln in tracer.stderr if ln.startswith("Tracing")]
    from coreframe import features

    if features.has_trampoline():
        assert "fexit" in banner
    elif features.has_kprobe():
        assert "kretprobe" in banner
    else:
        assert "tracepoint: read/pread64" in banner and "readv" in banner, banner
    listing = subprocess.run([COREFRAME, "list"], capture_output=True, text=True, check=True)
    [row] = [ln for ln in listing.stdout.splitlines() if ln.startswith("readhist ")]
    method = banner.split(" with ", 1)[1].split(" (")[0].split("...")[0]
    assert method.split(":")[0] in row, (row, banner)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        return resp.read().decode()


def test_prometheus_matches_json(tmp_path: Path) -> None:
    parser = pytest.importorskip("prometheus_client.parser")
    port = _free_port()
    with ReadLoop(tmp_path, _name("rm"), [WORKLOAD]) as wl, \
            ToolProcess(["readhist", "-p", str(wl.pid), "--json", "--interval", "0.2",
                         "--prometheus", f"127.0.0.1:{port}", "--prometheus-pid"]) as tr:
        wl.go()
        wl.finish()
        assert tr.wait_stdout(lambda ls: sum(json.loads(x)["reads"] for x in ls) >= 3000)
        text = _scrape(port)
        assert tr.stop() == 0, tr.stderr
    slots, reads, nbytes = _sum_records(tr.json_records())
    assert (slots, reads, nbytes) == wl.expected()
    families = {f.name: f for f in parser.text_string_to_metric_families(text)}
    samples = [s for s in families["coreframe_vfs_read_bytes"].samples
               if s.labels.get("pid") == str(wl.pid)]
    assert samples and all(s.labels["comm"] == wl.name for s in samples)
    buckets = {s.labels["le"]: s.value for s in samples if s.name.endswith("_bucket")}
    by_name = {s.name: s.value for s in samples if not s.name.endswith("_bucket")}
    assert by_name["coreframe_vfs_read_bytes_sum"] == nbytes
    assert by_name["coreframe_vfs_read_bytes_count"] == reads
    assert buckets["+Inf"] == reads
    # cumulative buckets, one per slot, at the slot's upper bound
    running = 0
    for slot in range(64):
        running += slots.get(slot, 0)
        assert buckets[str(float(log2_bounds(slot)[1]))] == running, slot
    assert buckets["15.0"] == 0 and buckets["31.0"] == 1000 and buckets["4095.0"] == 3000


def test_prometheus_client_missing_is_one_line() -> None:
    """Without prometheus-client the CLI says what to install, in one line, exit 1."""
    hide = ("import sys; sys.modules['prometheus_client'] = None; "
            "from coreframe.cli import main; sys.argv[0] = 'coreframe'; main()")
    argv = [sys.executable, "-c", hide, "run", "readhist", "--prometheus",
            f"127.0.0.1:{_free_port()}", "--duration", "5"]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert lines[-1].startswith("coreframe: error: --prometheus needs the prometheus-client"), \
        proc.stderr
    assert not [ln for ln in lines if "Traceback" in ln]


def test_slot_numbering_matches_log2_bounds() -> None:
    """The workload's expectations use the same numbering as the tool's output."""
    for size in (1, 2, 3, 16, 31, 128, 2048, 4095, 4096):
        lo, hi = log2_bounds(slot_of(size))
        assert lo <= size <= hi
    assert log2_bounds(slot_of(0)) == (0, 0)
