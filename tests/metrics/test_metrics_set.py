"""coreframe.metrics without a kernel: slots, bounds, the top-N + other bound, exposition."""

from __future__ import annotations

import pytest

from coreframe.metrics import OTHER, Counter, Histogram, MetricSet
from coreframe.output import libbpf_log2_bounds, log2_bounds


def test_slot_of_matches_the_bpf_numberings() -> None:
    bcc = Histogram("h_bcc", "x", numbering="bcc")
    lib = Histogram("h_lib", "x", numbering="libbpf")
    for v in (0, 1, 2, 3, 4, 31, 32, 4095, 4096, 2**40 + 5):
        lo, hi = log2_bounds(bcc.slot_of(v))
        assert lo <= v <= hi
        lo, hi = libbpf_log2_bounds(lib.slot_of(v))
        assert lo <= v <= hi
    assert bcc.upper_bounds()[:5] == [0.0, 1.0, 3.0, 7.0, 15.0]
    assert lib.upper_bounds()[:3] == [1.0, 3.0, 7.0]
    ns = Histogram("lt_seconds", "x", scale=1e-9)
    assert ns.upper_bounds()[11] == pytest.approx(2047e-9)


def test_top_n_plus_other_keeps_sums_exact() -> None:
    c = Counter("c", "x", ("comm",))
    ms = MetricSet((c,), top=3)
    for i in range(10):
        ms.inc("c", (f"p{i}",), i + 1)  # p9 largest
    [fam] = [f for f in ms.snapshot() if f.metric.name == "c"]
    got = dict(fam.samples)
    assert set(got) == {("p9",), ("p8",), ("p7",), (OTHER,)}
    assert got[(OTHER,)] == sum(range(1, 8))
    assert sum(got.values()) == sum(range(1, 11))


def test_memory_is_bounded_by_compaction() -> None:
    ms = MetricSet((Counter("c", "x", ("pid",)),), top=5)
    for i in range(10_000):
        ms.inc("c", (str(i),))
    assert len(ms.values["c"]) <= 4 * 5 + 1
    assert sum(ms.values["c"].values()) == 10_000


def test_histogram_fold_and_observe() -> None:
    h = Histogram("h", "x", ("comm",), numbering="bcc")
    ms = MetricSet((h,), top=1)
    for _ in range(3):
        ms.observe("h", ("a",), 16)
    ms.observe("h", ("b",), 100)
    ms.add_hist("h", ("c",), [0] * 5 + [2], 40)
    [fam] = [f for f in ms.snapshot() if f.metric.name == "h"]
    got = dict(fam.samples)
    assert got[("a",)].slots[5] == 3 and got[("a",)].sum == 48
    other = got[(OTHER,)]
    assert other.count() == 3 and other.sum == 140 and other.slots[7] == 1


def test_collecting_hook_runs_only_inside_its_block() -> None:
    ms = MetricSet((Counter("c", "x"),))
    calls = []
    with ms.collecting(lambda m: calls.append(1)):
        ms.snapshot()
        ms.snapshot()
    n = len(calls)
    ms.snapshot()
    assert n == 3 and len(calls) == 3  # two snapshots and the last read at exit


def test_exposition_buckets_are_the_slots() -> None:
    pytest.importorskip("prometheus_client")
    from prometheus_client.parser import text_string_to_metric_families

    from coreframe.export.prometheus import exposition, registry

    h = Histogram("coreframe_test_bytes", "x", ("comm",), numbering="bcc")
    ms = MetricSet((h, Counter("coreframe_test_errors", "y", ("comm",))), top=10)
    ms.add_hist("coreframe_test_bytes", ("cat",), [0, 0, 0, 0, 0, 7, 0, 0, 2], 7 * 20 + 2 * 200)
    ms.inc("coreframe_test_errors", ("cat",), 3)
    text, _ = exposition(registry(lambda: [({"tool": "t"}, ms)]))
    fams = {f.name: f for f in text_string_to_metric_families(text.decode())}
    samples = fams["coreframe_test_bytes"].samples
    buckets = {s.labels["le"]: s.value for s in samples if s.name.endswith("_bucket")}
    assert buckets["15.0"] == 0 and buckets["31.0"] == 7 and buckets["255.0"] == 9
    assert buckets["+Inf"] == 9 and len(buckets) == 65
    assert {s.name: s.value for s in samples if not s.name.endswith("_bucket")} == {
        "coreframe_test_bytes_count": 9, "coreframe_test_bytes_sum": 540}
    [err] = fams["coreframe_test_errors"].samples
    assert err.name == "coreframe_test_errors_total" and err.value == 3
    assert err.labels == {"tool": "t", "comm": "cat"}
