"""End to end: relocated programs read the right kernel data at run time.

core_task.bpf.o is loaded with coreframe (CO-RE against the running kernel),
attached, and triggered by this process; what the programs stored in .bss,
read through relocated offsets, must match what Python knows about itself.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from test_core_support import OBJECTS, VMLINUX, have_root

from coreframe.btf.types import BTF, Kind

pytestmark = [
    pytest.mark.kernel,
    pytest.mark.skipif(not have_root(), reason="needs root to load and attach programs"),
    pytest.mark.skipif(not VMLINUX.exists(), reason="no /sys/kernel/btf/vmlinux"),
]


def _decode_bss(btf: BTF, raw: bytes) -> dict[str, dict[str, Any]]:
    """{variable: {member: int or bytes}} for the struct variables of .bss."""
    sec = btf[btf.find(".bss", Kind.DATASEC)[0]]
    out: dict[str, dict[str, Any]] = {}
    for vs in sec.vars:
        var = btf[vs.type]
        st = btf[btf.resolve(var.type)]
        if st.kind != Kind.STRUCT:
            continue
        fields: dict[str, Any] = {}
        for m in st.members:
            off = vs.offset + m.bit_offset // 8
            size = btf.size_of(m.type)
            mt = btf[btf.resolve(m.type)]
            if mt.kind == Kind.ARRAY:
                fields[m.name] = raw[off : off + size].split(b"\0", 1)[0]
            else:
                signed = mt.kind == Kind.INT and mt.signed
                fields[m.name] = int.from_bytes(raw[off : off + size], "little", signed=signed)
        out[var.name] = fields
    return out


def test_core_task_reads_this_process() -> None:
    coreframe_object = pytest.importorskip("coreframe.object.spec")
    vmlinux = BTF.from_file(str(VMLINUX))
    kernel_task = vmlinux.find("task_struct", Kind.STRUCT)[0]

    spec = coreframe_object.open(str(OBJECTS / "core_task.bpf.o"))
    spec.bss.target_tgid = os.getpid()
    with spec.load() as obj:
        obj.attach()
        os.getpid()
        child = subprocess.run(["/bin/true"], check=True)
        assert child.returncode == 0
        os.getpid()
        raw = obj.maps[".bss"].lookup(0)
    local_task = spec.btf.find("task_struct", Kind.STRUCT)[0]
    bss = _decode_bss(spec.btf, raw)
    checks, direct = bss["checks"], bss["direct"]

    # probe reads through relocated offsets (ALU immediates)
    assert checks["me_pid"] == os.getpid() == checks["me_tgid"] == checks["me_mine_pid"]
    assert checks["me_ppid"] == os.getppid()
    assert checks["me_comm"] == Path("/proc/self/comm").read_bytes().strip()[:15]

    # existence, sizes, type ids and enum values
    assert checks["has_old_state"] == 0 and checks["has_state"] == 1
    assert checks["has_task"] == 1 and checks["has_nosuch"] == 0
    assert checks["task_size"] == vmlinux.size_of(kernel_task)
    assert checks["nosuch_size"] == 0
    assert checks["task_id"] == kernel_task
    assert checks["task_local_id"] == local_task
    assert (checks["sid"], checks["has_sid"], checks["has_nope"], checks["nope"]) == (3, 1, 0, 0)
    assert (checks["prio_size"], checks["prio_signed"], checks["flags_signed"]) == (4, 1, 0)
    assert (checks["comm_size"], checks["depth_signed"], checks["depth_size"]) == (16, 1, 4)
    assert checks["ancestors_size"] == 8
    assert (checks["has_mine"], checks["has_few"]) == (1, 1)

    # direct BTF-pointer loads (LDX offsets, and the 8 -> 4 byte load of flags)
    assert direct["pid"] > 0 and direct["pid"] == direct["tgid"]
    assert direct["parent_tgid"] == os.getpid()
    assert direct["state"] == 0  # TASK_RUNNING while it execs
    assert direct["flags"] < (1 << 32)
