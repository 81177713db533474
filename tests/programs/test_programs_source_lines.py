"""End to end: a clang-built program the verifier refuses names its C source line."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from coreframe.build import compile_bpf

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
    pytest.mark.skipif(shutil.which("clang") is None, reason="needs clang"),
]

SOURCE = r"""
typedef unsigned int u32;
#define SEC(x) __attribute__((section(x), used))
char LICENSE[] SEC("license") = "GPL";
struct {
    int (*type)[1];
    int (*key_size)[sizeof(u32)];
    int (*value_size)[sizeof(u32)];
    int (*max_entries)[1];
} vals SEC(".maps");
static void *(*bpf_map_lookup_elem)(void *map, const void *key) = (void *) 1;
SEC("tracepoint/syscalls/sys_enter_openat")
int bad_deref(void *ctx)
{
    u32 k = 0;
    u32 *v = bpf_map_lookup_elem(&vals, &k);
    return *v;
}
"""


def test_verifier_error_points_at_c_line(tmp_path: Path) -> None:
    coreframe = pytest.importorskip("coreframe")
    pytest.importorskip("coreframe.object.spec")
    src = tmp_path / "nullderef.bpf.c"
    src.write_text(SOURCE)
    obj = tmp_path / "nullderef.bpf.o"
    compile_bpf(src, obj)
    spec = coreframe.open(str(obj))
    with pytest.raises(coreframe.VerifierError) as ei:
        spec.load().close()
    err = ei.value
    assert err.program == "bad_deref"
    assert err.reason == "R0 invalid mem access 'map_value_or_null'"
    assert err.insn is not None
    assert err.source_line == "nullderef.bpf.c:17: return *v;"
    assert "\n" not in str(err)
