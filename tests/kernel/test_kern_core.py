"""CO-RE relocations of the project's objects resolve like libbpf's on this kernel.

For every committed object with CO-RE relocations (the plugins' and the
kernel-matrix test objects), coreframe's relocator against this kernel's BTF
must do what libbpf 1.1 does (its debug log from ``bpftool -d prog loadall``).
The comparison helpers are the BTF tests' (tests/btf/test_core_support.py).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
from kernkit import IN_GUEST, OBJECTS, ROOT

sys.path.insert(0, str(ROOT / "tests" / "btf"))
from test_core_support import (  # noqa: E402 - the BTF tests' folder is not a package
    VMLINUX,
    bpftool_log,
    compare,
    parse_libbpf_log,
    read_object,
    relocate,
)

from coreframe.btf.types import BTF  # noqa: E402

pytestmark = pytest.mark.kernel

PROJECT_OBJECTS = sorted((ROOT / "plugins" / "objects").glob("*.bpf.o")) + sorted(
    OBJECTS.glob("kern_*.bpf.o"))


@pytest.fixture(scope="module")
def vmlinux() -> BTF:
    if not VMLINUX.exists():
        pytest.fail("no /sys/kernel/btf/vmlinux") if IN_GUEST else pytest.skip("no kernel BTF")
    return BTF.from_file(str(VMLINUX))


@pytest.mark.parametrize("obj", PROJECT_OBJECTS, ids=lambda p: p.name)
def test_core_matches_libbpf(obj: Path, vmlinux: BTF) -> None:
    if shutil.which("bpftool") is None:
        pytest.skip("bpftool missing: no libbpf oracle")
    info = read_object(obj)
    total = sum(map(len, info.ext.core_relos.values()))
    if not total:
        pytest.skip(f"{obj.name} has no CO-RE relocations")
    theirs = parse_libbpf_log(bpftool_log(obj))
    assert theirs, f"bpftool/libbpf logged no relocations for {obj.name}"
    ours = relocate(info, vmlinux)
    assert len(ours) == total
    assert compare(ours, theirs) == total
