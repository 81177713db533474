"""CO-RE relocations of every committed object resolve like libbpf's on this kernel.

For every committed object with CO-RE relocations (``core_objects()``: the
plugins', ``core_task`` with 71 relocations of every kind clang emits,
``core_flavors``, and the kernel-matrix objects), coreframe's relocator against
this kernel's BTF must do what libbpf 1.1 does (its debug log from
``bpftool -d prog loadall``). The comparison helpers are the BTF tests'
(tests/btf/test_core_support.py).

Each test records how many relocations it compared and of which kinds
(``core_relos``, ``core_kinds`` in the junit report), so the kernel matrix's
summary (kernels/report.py) shows what the oracle covered on each kernel. In a
guest a missing oracle fails: the guests exist to run these comparisons.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from kernkit import IN_GUEST, ROOT

sys.path.insert(0, str(ROOT / "tests" / "btf"))
from test_core_support import (  # noqa: E402 - the BTF tests' folder is not a package
    VMLINUX,
    bpftool_log,
    compare,
    core_objects,
    parse_libbpf_log,
    read_object,
    relocate,
)

from coreframe.btf.relo import BPF_CORE_TYPE_MATCHES, KIND_NAMES  # noqa: E402
from coreframe.btf.types import BTF  # noqa: E402

pytestmark = pytest.mark.kernel


def missing_oracle(what: str) -> None:
    """A missing oracle fails in a guest (the run must compare) and skips on the host."""
    if IN_GUEST:
        pytest.fail(f"{what} missing in the guest: the CO-RE oracle must run there "
                    "(test-kernels.sh installs bpftool on the root the guest mounts)")
    pytest.skip(f"{what} missing: no libbpf oracle")


@pytest.fixture(scope="module")
def vmlinux() -> BTF:
    if not VMLINUX.exists():
        pytest.fail("no /sys/kernel/btf/vmlinux") if IN_GUEST else pytest.skip("no kernel BTF")
    return BTF.from_file(str(VMLINUX))


@pytest.mark.parametrize("obj", core_objects(), ids=lambda p: p.name)
def test_core_matches_libbpf(obj: Path, vmlinux: BTF,
                             record_property: Callable[[str, object], None]) -> None:
    if shutil.which("bpftool") is None:
        missing_oracle("bpftool")
    info = read_object(obj)
    relos = [r for rs in info.ext.core_relos.values() for r in rs]
    assert relos, f"core_objects() listed {obj.name}, which has no CO-RE relocations"
    theirs = parse_libbpf_log(bpftool_log(obj))
    assert theirs, f"bpftool/libbpf logged no relocations for {obj.name}"
    ours = relocate(info, vmlinux)
    assert len(ours) == len(relos)
    assert compare(ours, theirs) == len(relos)
    record_property("core_relos", len(relos))
    # the ones this kernel cannot satisfy (poisoned, or failed like libbpf's)
    record_property("core_unsatisfied", sum(bool(oc.poisoned or oc.error)
                                            for oc in ours.values()))
    record_property("core_kinds", ",".join(sorted({KIND_NAMES[r.kind] for r in relos})))


def test_core_oracle_covers_every_kind() -> None:
    """The objects compared above carry every relocation kind clang emits (all but
    type_matches), so no kind can drop out of a guest run unnoticed."""
    kinds = {r.kind for p in core_objects() for rs in read_object(p).ext.core_relos.values()
             for r in rs}
    assert kinds == set(KIND_NAMES) - {BPF_CORE_TYPE_MATCHES}
