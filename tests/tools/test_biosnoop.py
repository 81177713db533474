"""biosnoop on O_DIRECT I/O of known sizes and offsets to a loop device the test sets up:
one line per request with the submitter, disk, type, sector and size. libbpf-tools'
biosnoop is no oracle on this kernel (it needs fentry on blk_account_io_start);
the requests are checked against what the helper did instead, and against bpftrace
and libbpf-tools in tests/kernel/test_kern_oracle_tools.py (also in the guests)."""

from __future__ import annotations

from pathlib import Path

import pytest
from oracle import DIRECT_IO, helper, loop_device
from tool_proc import ToolProcess

WRITES, READS = 8, 4


@pytest.mark.parametrize("attach,args", [("auto", []), ("raw_tp", ["-Q"])])
def test_loop_requests(need_root: None, tmp_path: Path, attach: str, args: list[str]) -> None:
    with loop_device(tmp_path) as dev:
        disk = Path(dev).name
        with helper(DIRECT_IO, dev, str(WRITES), "4096", str(READS), "65536") as h, \
                ToolProcess(["biosnoop", "-d", disk, "--attach", attach, *args]) as t:
            assert h.step() == "done"
            assert t.wait_stdout(lambda ls: len(ls) > WRITES + READS, timeout=30)
            assert t.stop() == 0
    head = t.stdout[0].split()
    assert head == ["TIME(s)", "COMM", "PID", "DISK", "T", "SECTOR", "BYTES",
                    *(["QUE(ms)"] if args else []), "LAT(ms)"]
    rows = [line.split() for line in t.stdout[1:]]
    # (pid, disk, type, sector, bytes): writes of 4 KiB from offset 0, reads of 64 KiB
    # from 1 MiB; block-device O_DIRECT writes are sync (WS), reads sync too (RS)
    want = [(str(h.pid), disk, "WS", str(i * 8), "4096") for i in range(WRITES)] + \
        [(str(h.pid), disk, "RS", str(2048 + i * 128), "65536") for i in range(READS)]
    assert [(r[2], r[3], r[4], r[5], r[6]) for r in rows] == want
    assert all(r[1] == "python" and float(r[-1]) > 0 for r in rows)


def test_json(need_root: None, tmp_path: Path) -> None:
    with loop_device(tmp_path) as dev:
        disk = Path(dev).name
        with helper(DIRECT_IO, dev, "2", "4096", "0", "4096") as h, \
                ToolProcess(["biosnoop", "-d", disk, "--json"]) as t:
            assert h.step() == "done"
            assert t.wait_stdout(lambda ls: len(ls) >= 2, timeout=30)
            assert t.stop() == 0
            got = t.json_records()
    assert [(e["pid"], e["disk"], e["flags"], e["sector"], e["bytes"]) for e in got] == \
        [(h.pid, disk, "Idle-Sync-Write", 0, 4096), (h.pid, disk, "Idle-Sync-Write", 8, 4096)]
    assert list(got[0]) == ["time", "comm", "pid", "disk", "rwbs", "flags", "sector", "bytes",
                            "latency_ns"]
