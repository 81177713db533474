"""Debian's libbpf-tools objects: whatever libbpf loads on this kernel, coreframe loads.

The objects were compiled by Debian (their clang, their vmlinux.h) and are
extracted from the installed binaries at collection time into a cache directory
(see docs/corpus.md). Each program is its own test: the object is loaded with
only that program autoloaded, by libbpf and by coreframe, and the kernel's view
of the two must be identical.

An object none of whose programs could be compared on this kernel (every one
refused by libbpf too: no trampolines, a kernel function or field that is not
there) is not covered, whatever its program tests say: its object test is a skip
listing why, and the corpus summary at the end of the run counts it apart.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from corpus_extract import default_cache_dir, extract_all
from corpus_oracle import check_program, object_outcomes

import coreframe

pytestmark = pytest.mark.kernel


def _cases() -> list[object]:
    found = extract_all(default_cache_dir() / "libbpf-tools")
    if not found:
        return [pytest.param(None, None, id="libbpf-tools-not-installed", marks=pytest.mark.skip(
            reason="libbpf-tools is not installed (setup.sh --dev installs it)"))]
    cases: list[object] = []
    for paths in found.values():
        for path in paths:
            stem = path.name.removesuffix(".bpf.o")
            try:
                programs = list(coreframe.open(path).programs)
            except coreframe.Error:
                cases.append(pytest.param(str(path), None, id=f"{stem}:open"))
                continue
            cases += [pytest.param(str(path), p, id=f"{stem}:{p}") for p in programs]
    return cases


def _objects() -> list[object]:
    found = extract_all(default_cache_dir() / "libbpf-tools")
    return [pytest.param(str(path), id=path.name.removesuffix(".bpf.o"))
            for paths in found.values() for path in paths]


@pytest.mark.parametrize(("path", "prog"), _cases())
def test_libbpf_tools_program(path: str, prog: str | None) -> None:
    if prog is None:
        coreframe.open(Path(path))  # raises the parse error as the failure
        pytest.fail(f"{path} failed to open at collection but opens now")
    check_program(path, prog)


@pytest.mark.parametrize("path", _objects())
def test_libbpf_tools_object_compared(path: str) -> None:
    """At least one program of the object was compared with libbpf on this kernel."""
    try:
        outcomes = object_outcomes(path)
    except coreframe.Error as e:
        pytest.fail(f"{path}: cannot open: {e}")  # its program test reports it too
    if any(outcome == "compared" for outcome, _ in outcomes.values()):
        return
    failed = [p for p, (outcome, _) in outcomes.items() if outcome == "failed"]
    if failed:
        pytest.fail(f"no program compared; failed: {', '.join(failed)}")
    if not outcomes:  # not root or no libbpf: the program tests say why
        pytest.skip("no program of it could be checked here (see its program tests)")
    reasons = "; ".join(f"{p}: {detail.removeprefix('oracle: ')}"
                        for p, (_, detail) in outcomes.items())
    pytest.skip(f"none of its {len(outcomes)} programs can be compared with libbpf on "
                f"this kernel: {reasons}")
