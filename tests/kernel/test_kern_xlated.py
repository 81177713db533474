"""fentry/fexit and kprobe programs: the kernel holds the same program whoever loads it.

Every fentry/fexit/... and kprobe/kretprobe program of the committed objects
(the plugins' and tests/objects') is loaded alone by libbpf (ctypes, test-only;
tests/object/xlated_oracle.py) and by coreframe, and the kernel's xlated
instructions, func/line info counts and map references must be identical. The
host lacks BPF trampolines, so there the trampoline programs take the
FeatureMissing path and are reported as skips; the guests of ``make
test-kernels`` have them and compare for real. Each comparison is recorded
(``xlated`` in the junit report) for the matrix summary (kernels/report.py).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from kernkit import IN_GUEST, OBJECTS, ROOT, Expect

import coreframe
from coreframe import features
from coreframe.errors import FeatureMissing
from coreframe.sections import TRAMPOLINE_ATTACH_KINDS

sys.path.insert(0, str(ROOT / "tests" / "object"))
from xlated_oracle import compare_one_program, libbpf  # noqa: E402 - not a package

pytestmark = pytest.mark.kernel

# kprobe-family programs load on any kernel with BPF_PROG_TYPE_KPROBE (only their
# attach needs kprobes); trampoline programs need the kernel's BPF trampolines.
KPROBE_KINDS = frozenset({"kprobe", "ksyscall"})


def _programs() -> list[object]:
    cases: list[object] = []
    for path in sorted((ROOT / "plugins" / "objects").glob("*.bpf.o")) + sorted(
            OBJECTS.glob("*.bpf.o")):
        for name, prog in coreframe.open(path).programs.items():
            sd = prog.section_def
            kind = sd.attach_kind if sd is not None else None
            if kind in TRAMPOLINE_ATTACH_KINDS or kind in KPROBE_KINDS:
                cases.append(pytest.param(path, name, kind, id=f"{path.name}:{name}"))
    return cases


@pytest.mark.parametrize(("path", "prog", "kind"), _programs())
def test_xlated_identical_to_libbpf(path: Path, prog: str, kind: str, expect_feature: Expect,
                                    record_property: Callable[[str, object], None]) -> None:
    if libbpf() is None:
        if IN_GUEST:
            pytest.fail("libbpf.so.1 missing in the guest: the xlated oracle must run there "
                        "(test-kernels.sh installs libbpf1 on the root the guest mounts)")
        pytest.skip("libbpf.so.1 missing: no xlated oracle")
    if kind in TRAMPOLINE_ATTACH_KINDS and not expect_feature(features.has_trampoline(),
                                                              "BPF trampolines"):
        spec = coreframe.open(path)
        for name, p in spec.programs.items():
            p.autoload = name == prog
        with pytest.raises(FeatureMissing, match="trampoline"):
            spec.load().close()
        pytest.skip(f"{kind} program: this kernel has no BPF trampolines (coreframe said "
                    "FeatureMissing); compared with libbpf in the guests of make test-kernels")
    n = compare_one_program(str(path), prog)
    assert n > 0
    record_property("xlated", f"{path.name}:{prog} {kind} {n}")  # kernels/report.py parses it
