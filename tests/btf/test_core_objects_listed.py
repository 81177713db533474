"""core_objects(), the list every CO-RE oracle test runs over, leaves nothing out unsaid.

An object it cannot read must stop collection with the object's name and the
cause; dropping it would make the oracle compare fewer relocations than the
suite claims.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from test_core_support import OBJECTS, UnreadableObject, core_objects, read_object


def test_unreadable_object_is_an_error_not_a_gap(tmp_path: Path) -> None:
    shutil.copy(OBJECTS / "core_task.bpf.o", tmp_path / "a_good.bpf.o")
    good = core_objects((tmp_path,))
    assert [p.name for p in good] == ["a_good.bpf.o"]
    data = (OBJECTS / "core_task.bpf.o").read_bytes()
    (tmp_path / "b_cut.bpf.o").write_bytes(data[: len(data) // 3])
    with pytest.raises(UnreadableObject, match=r"b_cut\.bpf\.o: cannot read"):
        core_objects((tmp_path,))


def test_every_committed_object_with_relocations_is_listed() -> None:
    listed = {p.name for p in core_objects()}
    assert {"core_task.bpf.o", "core_flavors.bpf.o", "kern_probes.bpf.o",
            "readhist.bpf.o", "execsnoop.bpf.o"} <= listed
    for p in sorted(OBJECTS.glob("*.bpf.o")):
        has_relos = any(read_object(p).ext.core_relos.values())
        assert (p.name in listed) == has_relos, p.name
