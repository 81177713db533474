"""readhist's pure parts: method choice for every probe outcome, decoding, slot bounds."""

from __future__ import annotations

import itertools
import struct

import pytest
from coreframe_plugins.readhist import MAX_SLOTS, choose_methods, decode_entries

from coreframe.output import format_log2_hist, log2_bounds


@pytest.mark.parametrize(
    ("fexit_ok", "kprobe_ok"), list(itertools.product([True, False], repeat=2))
)
def test_method_choice_every_combination(fexit_ok: bool, kprobe_ok: bool) -> None:
    methods = choose_methods(fexit_ok, kprobe_ok)
    expected_first = "fexit" if fexit_ok else "kretprobe" if kprobe_ok else "tracepoint"
    assert methods[0] == expected_first
    assert methods[-1] == "tracepoint"  # always the last resort
    assert ("fexit" in methods) == fexit_ok
    assert ("kretprobe" in methods) == kprobe_ok


def test_slot_bounds_cover_every_size_once() -> None:
    # Slot i must hold exactly the values floor(log2(v)) + 1 maps to (bcc's bpf_log2l).
    for v in [0, 1, 2, 3, 4, 7, 8, 15, 16, 127, 128, 2047, 2048, 2**40, 2**63 - 1]:
        slot = v.bit_length()
        lo, hi = log2_bounds(slot)
        assert lo <= v <= hi, (v, slot, lo, hi)
    for i in range(1, MAX_SLOTS):
        assert log2_bounds(i)[0] == log2_bounds(i - 1)[1] + 1


def test_decode_entries_round_trip() -> None:
    slots = [0] * MAX_SLOTS
    slots[5] = 1000  # 16..31 bytes
    slots[8] = 7
    key = struct.pack("<I16s", 4242, b"")
    value = struct.pack(f"<{MAX_SLOTS}QQQQ16s", *slots, 1007, 16000 + 7 * 130, 3, b"reader\0")
    (h,) = decode_entries([(key, value)])
    assert (h.pid, h.comm, h.reads, h.errors) == (4242, "reader", 1007, 3)
    doc = h.to_json(1.0)
    assert doc["hist"] == [{"lo": 16, "hi": 31, "count": 1000}, {"lo": 128, "hi": 255, "count": 7}]


def test_text_histogram_has_bcc_shape() -> None:
    slots = [0] * MAX_SLOTS
    slots[1] = 2
    slots[3] = 4
    text = format_log2_hist(slots, "bytes").splitlines()
    assert text[0].strip().startswith("bytes") and "distribution" in text[0]
    assert len(text) == 1 + 4  # slots 0..3
    assert text[4].split(":")[0].split() == ["4", "->", "7"]
    assert "|****************************************|" in text[4]


def test_json_line_is_what_json_dumps_wrote() -> None:
    """The output layer's line for a row equals json.dumps of the row's dict (the old writer)."""
    import io
    import json

    from coreframe_plugins.readhist import COLUMNS, Hist

    from coreframe.output import Table

    slots = [0] * MAX_SLOTS
    slots[0], slots[12] = 2, 5
    table = Table(COLUMNS, io.StringIO(), {"as_json": True}, mono_to_wall=1000.0)
    for h in (Hist(0, 'we"ird\x01', slots, 7, 9000, 1), Hist(77, "cat", slots, 7, 9000, 0)):
        line = table.json_line(h.json_values(), 2_000_000_000)
        want = json.dumps(h.to_json(1002.0), separators=(",", ":"), ensure_ascii=False)
        assert line == want + "\n"
        assert json.loads(line)["pid"] == (h.pid or None)
