"""The repository's own sources built other ways: whatever libbpf loads, coreframe loads.

Variants (see corpus_build.VARIANTS): -mcpu=v1 / v2, -O1 / -Os, DWARF kept, no
-fdebug-prefix-map, and a vmlinux.h from Debian's 6.1 kernel. Program names come
from the committed objects, so collection compiles nothing; each object is built
(or taken from the cache) the first time one of its programs runs.
"""

from __future__ import annotations

import functools

import pytest
from corpus_build import SOURCES, VARIANTS, BuildSkipped, build
from corpus_extract import default_cache_dir
from corpus_oracle import check_program

import coreframe

pytestmark = pytest.mark.kernel


def _cases() -> list[object]:
    cases: list[object] = []
    for source_name, (_src, committed) in SOURCES.items():
        programs = list(coreframe.open(committed).programs)
        for variant in VARIANTS:
            cases += [pytest.param(variant, source_name, p, id=f"{variant}:{source_name}:{p}")
                      for p in programs]
    return cases


@functools.cache
def _built(variant: str, source_name: str) -> str:
    return str(build(variant, source_name, default_cache_dir()))


@pytest.mark.parametrize(("variant", "source_name", "prog"), _cases())
def test_variant_program(variant: str, source_name: str, prog: str) -> None:
    try:
        path = _built(variant, source_name)
    except BuildSkipped as e:
        pytest.skip(str(e))
    check_program(path, prog)


def test_variants_really_differ() -> None:
    """The variants are different objects, not the committed bytes under another name."""
    try:
        paths = [_built(v, "execsnoop") for v in ("mcpu-v1", "O1-dwarf")]
    except BuildSkipped as e:
        pytest.skip(str(e))
    v1, dwarf = (coreframe.open(p) for p in paths)
    committed = coreframe.open(SOURCES["execsnoop"][1])
    assert bytes(v1.programs.handle_exit.insns) != bytes(committed.programs.handle_exit.insns)
    sections = {s.name for s in dwarf.elf.sections}
    assert ".debug_info" in sections
    lines = {ln.file_name for recs in dwarf.btf_ext.line_info.values() for ln in recs}
    assert any(name.startswith("/") for name in lines), lines
