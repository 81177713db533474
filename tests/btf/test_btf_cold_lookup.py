"""A cold start looks names up without the sorted index; answers must not change."""

from __future__ import annotations

import os

import pytest

from coreframe.btf import BTF, Kind

VMLINUX = "/sys/kernel/btf/vmlinux"
pytestmark = pytest.mark.skipif(not os.path.exists(VMLINUX), reason="no kernel BTF")

NAMES = ["sym", "pt_regs", "task_struct", "sk_buff", "pid_t", "vfs_read",
         "trace_event_raw_sys_exit", "int", "no_such_type_anywhere", "u32", "cfs_rq", "bpf_map",
         "__u64"]
PREFIXES = ["task_struct", "bpf_", "trace_event_raw_sys_e", "zzzz_none", "sched_", "task_struct___",
            "pt_regs___", "int___", "sym___"]


def test_scan_lookup_equals_index_lookup() -> None:
    with open(VMLINUX, "rb") as f:
        data = f.read()
    cold = BTF(data)
    indexed = BTF(data)
    indexed._name_index = indexed.build_name_index()
    for name in NAMES:
        for kind in (None, Kind.STRUCT, Kind.TYPEDEF, Kind.FUNC):
            assert cold.find(name, kind) == indexed.find(name, kind), (name, kind)
    for prefix in PREFIXES:
        assert cold.find_prefix(prefix) == indexed.find_prefix(prefix), prefix
    assert cold._name_index is None  # the lookups above never needed the sort


def test_scan_lookup_on_object_btf() -> None:
    from coreframe.object import open as open_object

    spec = open_object(os.path.join(os.path.dirname(__file__), "..", "..", "plugins",
                                    "objects", "execsnoop.bpf.o"))
    assert spec.btf is not None
    raw = spec.btf.to_bytes()
    cold, indexed = BTF(raw), BTF(raw)
    indexed._name_index = indexed.build_name_index()
    for tid in range(1, len(cold)):
        name = cold.name_of(tid)
        if name:
            assert cold.find(name) == indexed.find(name), name
