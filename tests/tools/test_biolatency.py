"""biolatency against libbpf-tools' biolatency on O_DIRECT I/O of known sizes to a loop
device the test sets up: the loop disk's histograms (per disk, per flags) hold the
same requests in both."""

from __future__ import annotations

from pathlib import Path

import pytest
from oracle import DIRECT_IO, assert_same_samples, helper, loop_device, oracle, parse_hists
from tool_proc import ToolProcess

WRITES, READS = 40, 24


def _loop_only(hists: dict[str, dict[int, int]], disk: str) -> dict[str, dict[int, int]]:
    return {t: h for t, h in hists.items() if f"disk = {disk}" in t}


@pytest.mark.parametrize("attach,args", [("auto", ["-D", "-F"]), ("raw_tp", ["-D", "-Q"])])
def test_loop_io_equal_libbpf_tools(need_root: None, tmp_path: Path, attach: str,
                                    args: list[str]) -> None:
    with loop_device(tmp_path) as dev:
        disk = Path(dev).name
        with helper(DIRECT_IO, dev, str(WRITES), "4096", str(READS), "65536") as h:
            with ToolProcess(["biolatency", "--attach", attach, *args]) as ours, \
                    oracle("biolatency", *args, header="Tracing") as theirs:
                assert h.step() == "done"
                for tracer in (ours, theirs):
                    assert tracer.stop() == 0
            mine = _loop_only(parse_hists(ours.stdout), disk)
            want = _loop_only(parse_hists(theirs.stdout), disk)
    total = sum(sum(x.values()) for x in mine.values())
    assert total == WRITES + READS
    if "-F" in args:
        # block-device O_DIRECT: writes REQ_SYNC | REQ_IDLE, reads REQ_SYNC (flags read
        # through this kernel's enum req_flag_bits; libbpf-tools' numbers agree here)
        assert set(mine) == set(want) == {f"disk = {disk}\tflags = Idle-Sync-Write",
                                          f"disk = {disk}\tflags = Sync-Read"}
        for title in mine:
            assert sum(mine[title].values()) == sum(want[title].values())
        assert sum(mine[f"disk = {disk}\tflags = Idle-Sync-Write"].values()) == WRITES
    else:
        (title,) = mine
        assert list(want) == [title]
        assert_same_samples(mine[title], want[title])


def test_disk_filter_json(need_root: None, tmp_path: Path) -> None:
    with loop_device(tmp_path) as dev, \
            helper(DIRECT_IO, dev, str(WRITES), "4096", "0", "4096") as h:
        disk = Path(dev).name
        with ToolProcess(["biolatency", "-d", disk, "-F", "--json"]) as ours:
            assert h.step() == "done"
            assert ours.stop() == 0
        docs = ours.json_records()
    assert sum(r["count"] for d in docs for r in d["hist"]) == WRITES
    assert all(d["unit"] == "usecs" and d["flags"].endswith("Write") for d in docs)
