"""readhist.bpf.o fills the documented histogram, loaded by libbpf as the oracle.

The committed object is used as is: the fexit/kretprobe programs get autoload
off (what the tool does on this kernel) and the syscall tracepoints count.
A child process does an exact, known set of read()/pread64() calls after the
programs are attached, so the expected histogram is known slot by slot.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from event_layout import HIST_KEY, HIST_VALUE, MAX_SLOTS, slot_bounds
from libbpf_oracle import LIBBPF, LibbpfObject
from read_workload import ReadWorkload

OBJ = str(Path(__file__).resolve().parents[2] / "plugins" / "objects" / "readhist.bpf.o")


def test_slot_bounds_cover_ssize_t() -> None:
    assert slot_bounds(0) == (0, 0)
    assert slot_bounds(1) == (1, 1)
    assert slot_bounds(7) == (64, 127)
    assert slot_bounds(63)[1] == 2**63 - 1
    for slot in range(1, MAX_SLOTS - 1):
        assert slot_bounds(slot)[1] + 1 == slot_bounds(slot + 1)[0]


@pytest.mark.skipif(LIBBPF is None, reason="libbpf.so not installed")
@pytest.mark.parametrize("mode", ["tgid", "tid", "comm"])
def test_histogram_of_known_reads(mode: str, need_root: None, tmp_path: Path) -> None:
    with ReadWorkload(tmp_path) as work:
        rodata = {"targ_pid": work.pid, "targ_tgid_mode": mode == "tgid",
                  "per_comm": mode == "comm"}
        with LibbpfObject(OBJ, rodata=rodata,
                          disable=("vfs_read_fexit", "vfs_read_kret")) as obj:
            obj.attach()
            work.go()
            items = obj.items("hists", HIST_KEY.size, HIST_VALUE.size)
        work.check(items, mode)
