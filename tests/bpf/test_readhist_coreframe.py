"""readhist.bpf.o through coreframe's loader: same histogram check as the libbpf oracle,
and the fexit/kretprobe programs either work or fail with a clear FeatureMissing."""

from __future__ import annotations

from pathlib import Path

import pytest
from read_workload import ReadWorkload

import coreframe
from coreframe.object import ObjectSpec

OBJ = str(Path(__file__).resolve().parents[2] / "plugins" / "objects" / "readhist.bpf.o")
FAMILIES = {
    "fexit": ("vfs_read_fexit",),
    "kretprobe": ("vfs_read_kret",),
    "tracepoint": ("sys_exit_read", "sys_exit_pread64"),
}


def _spec(family: str) -> ObjectSpec:
    spec = coreframe.open(OBJ)
    for name in spec.programs:
        spec.programs[name].autoload = name in FAMILIES[family]
    return spec


@pytest.mark.parametrize("mode", ["tgid", "comm"])
def test_tracepoint_histogram(mode: str, need_root: None, tmp_path: Path) -> None:
    with ReadWorkload(tmp_path) as work:
        spec = _spec("tracepoint")
        spec.rodata.targ_pid = work.pid
        spec.rodata.per_comm = mode == "comm"
        with spec.load() as obj:
            obj.attach()
            work.go()
            items = [(bytes(k), bytes(v)) for k, v in obj.maps.hists.items()]
        work.check(items, mode)


@pytest.mark.parametrize("family", ["fexit", "kretprobe"])
def test_vfs_read_programs_work_or_say_why(family: str, need_root: None,
                                          tmp_path: Path) -> None:
    from coreframe import features

    available = features.has_trampoline() if family == "fexit" else features.has_kprobe()
    spec = _spec(family)
    if not available:
        with pytest.raises(coreframe.FeatureMissing):
            with spec.load() as obj:
                obj.attach()
        return
    with ReadWorkload(tmp_path) as work:
        spec.rodata.targ_pid = work.pid
        with spec.load() as obj:
            obj.attach()
            work.go()
            items = [(bytes(k), bytes(v)) for k, v in obj.maps.hists.items()]
    # vfs_read also sees reads the syscall tracepoints would not; the known ones are there
    assert items
