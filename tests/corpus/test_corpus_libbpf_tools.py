"""Debian's libbpf-tools objects: whatever libbpf loads on this kernel, coreframe loads.

The objects were compiled by Debian (their clang, their vmlinux.h) and are
extracted from the installed binaries at collection time into a cache directory
(see docs/corpus.md). Each program is its own test: the object is loaded with
only that program autoloaded, by libbpf and by coreframe, and the kernel's view
of the two must be identical.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from corpus_extract import default_cache_dir, extract_all
from corpus_oracle import check_program

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


@pytest.mark.parametrize(("path", "prog"), _cases())
def test_libbpf_tools_program(path: str, prog: str | None) -> None:
    if prog is None:
        coreframe.open(Path(path))  # raises the parse error as the failure
        pytest.fail(f"{path} failed to open at collection but opens now")
    check_program(path, prog)
