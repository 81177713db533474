"""Program loading, verifier errors and program info against the real kernel."""

from __future__ import annotations

import os
import uuid

import pytest

from coreframe import asm
from coreframe.errors import Error, FeatureMissing, VerifierError
from coreframe.maps import Map
from coreframe.programs import (
    Program,
    enable_stats,
    load_program,
    parse_verifier_log,
    source_line_for,
)
from coreframe.sys import consts as C

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")

RET1 = asm.mov64_imm(asm.R0, 1) + asm.exit_()
# r1 = 0; r0 = *(u32 *)(r1 + 0); exit  -> "R1 invalid mem access 'scalar'" at insn 1
BAD = (asm.mov64_imm(asm.R1, 0)
       + asm.encode(asm.BPF_LDX | asm.BPF_MEM | asm.BPF_W, asm.R0, asm.R1, 0, 0)
       + asm.exit_())


def test_valid_program_loads_and_reports_info() -> None:
    with load_program("ret_one", C.BPF_PROG_TYPE_SOCKET_FILTER, RET1) as prog:
        assert isinstance(prog, Program)
        assert prog.fd >= 0 and prog.name == "ret_one"
        assert prog.type == C.BPF_PROG_TYPE_SOCKET_FILTER
        info = prog.info()
        assert info.id > 0 and info.name == "ret_one"
        assert info.type == C.BPF_PROG_TYPE_SOCKET_FILTER
        assert info.xlated_insns == RET1
        assert len(info.tag) == 16
        assert info.jited_size >= 0
        assert info.verified_insns == 2
    assert prog.closed


def test_program_with_map_reference() -> None:
    with Map.create(C.BPF_MAP_TYPE_ARRAY, 4, 8, 1, name="m") as m:
        insns = (asm.ld_imm64(asm.R1, m.fd, asm.BPF_PSEUDO_MAP_FD)
                 + asm.mov64_imm(asm.R0, 0) + asm.exit_())
        with load_program("uses_map", C.BPF_PROG_TYPE_SOCKET_FILTER, insns) as prog:
            assert prog.info().map_ids == [m.info().id]


def test_verifier_error_has_log_insn_and_short_str() -> None:
    records = [(0, "/src/prog.bpf.c", "int *p = 0;", 10, 5),
               (1, "/src/prog.bpf.c", "return *p;", 11, 9)]
    with pytest.raises(VerifierError) as ei:
        load_program("bad", C.BPF_PROG_TYPE_SOCKET_FILTER, BAD, line_info_records=records)
    err = ei.value
    assert err.program == "bad"
    assert err.reason == "R1 invalid mem access 'scalar'"
    assert err.insn == 1
    assert err.source_line == "prog.bpf.c:11: return *p;"
    assert "processed" in err.log
    text = str(err)
    assert "\n" not in text and len(text) < 200
    assert "insn 1" in text and "prog.bpf.c:11" in text


def test_verifier_error_without_line_info() -> None:
    with pytest.raises(VerifierError) as ei:
        load_program("noexit", C.BPF_PROG_TYPE_SOCKET_FILTER, asm.exit_())
    assert ei.value.reason == "R0 !read_ok"
    assert ei.value.insn == 0
    assert ei.value.source_line is None


def test_log_level_keeps_log_on_success() -> None:
    with load_program("logged", C.BPF_PROG_TYPE_SOCKET_FILTER, RET1, log_level=1) as prog:
        assert "processed 2 insns" in prog.verifier_log


def test_fentry_is_feature_missing_on_this_kernel() -> None:
    from coreframe.features import _find_vmlinux_func, has_trampoline

    if has_trampoline():
        pytest.skip("this kernel supports BPF trampolines")
    btf_id = _find_vmlinux_func("vfs_read")
    assert btf_id is not None
    with pytest.raises(FeatureMissing, match="trampolines"):
        load_program("fentry_prog", C.BPF_PROG_TYPE_TRACING, asm.mov64_imm(0, 0) + asm.exit_(),
                     expected_attach_type=C.BPF_TRACE_FENTRY, attach_btf_id=btf_id)


def test_unknown_program_type_is_feature_missing() -> None:
    with pytest.raises(FeatureMissing, match="program type 999"):
        load_program("x", 999, RET1)


def test_empty_program_is_rejected_early() -> None:
    with pytest.raises(Error, match="multiple of 8"):
        load_program("x", C.BPF_PROG_TYPE_SOCKET_FILTER, b"\0" * 5)


def test_stats_and_test_run() -> None:
    with load_program("counted", C.BPF_PROG_TYPE_SOCKET_FILTER, RET1) as prog:
        with enable_stats() as fd:
            assert fd.fd >= 0
            res = prog.test_run(b"\0" * 64, repeat=5)
            assert res.retval == 1
            info = prog.info()
        assert info.run_cnt == 5


def test_pin_from_pinned_and_from_id() -> None:
    root = "/sys/fs/bpf"
    if not os.path.ismount(root):
        pytest.skip("bpffs not mounted")
    path = os.path.join(root, f"cf_prog_{uuid.uuid4().hex[:8]}")
    with load_program("pinned", C.BPF_PROG_TYPE_SOCKET_FILTER, RET1) as prog:
        prog.pin(path)
        try:
            with Program.from_pinned(path) as again:
                assert again.info().id == prog.info().id
                assert again.name == "pinned"
            with Program.from_id(prog.info().id) as by_id:
                assert by_id.type == C.BPF_PROG_TYPE_SOCKET_FILTER
        finally:
            os.unlink(path)


def test_parse_log_helpers() -> None:
    log = ("func#0 @0\n0: R1=ctx() R10=fp0\n; return *p; @ prog.c:12\n"
           "3: (61) r0 = *(u32 *)(r1 +0)\nR1 invalid mem access 'scalar'\n"
           "processed 4 insns (limit 1000000)\n")
    reason, insn, src = parse_verifier_log(log)
    assert (reason, insn, src) == ("R1 invalid mem access 'scalar'", 3, "prog.c:12: return *p;")
    recs = [(0, "a.c", "x", 1, 0), (2, "a.c", "y", 2, 0), (9, "a.c", "z", 9, 0)]
    assert source_line_for(5, recs) == "a.c:2: y"
    assert source_line_for(None, recs) is None


def test_many_loads_do_not_leak_fds() -> None:
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(500):
        with load_program("cycle", C.BPF_PROG_TYPE_SOCKET_FILTER, RET1):
            pass
        with Map.create(C.BPF_MAP_TYPE_HASH, 4, 4, 1, name="cycle"):
            pass
    for _ in range(20):
        with pytest.raises(VerifierError):
            load_program("bad", C.BPF_PROG_TYPE_SOCKET_FILTER, BAD)
    assert len(os.listdir("/proc/self/fd")) == before


@pytest.mark.unprivileged
def test_unprivileged_load_names_capability() -> None:
    import subprocess
    import sys

    code = (
        "from coreframe import asm\n"
        "from coreframe.programs import load_program\n"
        "from coreframe.errors import PermissionDenied\n"
        "from coreframe.sys import consts as C\n"
        "try:\n"
        "    load_program('p', C.BPF_PROG_TYPE_TRACEPOINT, asm.mov64_imm(0, 0) + asm.exit_())\n"
        "except PermissionDenied as e:\n"
        "    print(e)\n"
    )
    cmd = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all",
           sys.executable, "-c", code]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd="/", timeout=60)
    assert out.returncode == 0, out.stderr
    line = out.stdout.strip()
    assert "\n" not in line
    assert "load program 'p'" in line and "CAP_BPF and CAP_PERFMON" in line


def test_log_buffer_grows_past_one_mib() -> None:
    insns = asm.mov64_imm(asm.R0, 0) * 60000 + asm.exit_()
    with load_program("biglog", C.BPF_PROG_TYPE_SOCKET_FILTER, insns, log_level=2) as prog:
        assert len(prog.verifier_log) > 1 << 20
        assert "processed 60001 insns" in prog.verifier_log


def test_helper_the_kernel_does_not_offer_is_feature_missing() -> None:
    """A helper the kernel does not offer to this program type (as an older kernel lacks
    a newer helper): one FeatureMissing line naming it, not a verifier log dump."""
    insns = asm.call(C.BPF_FUNC_skb_load_bytes) + asm.mov64_imm(asm.R0, 0) + asm.exit_()
    with pytest.raises(FeatureMissing) as e:
        load_program("cf_nohelper", C.BPF_PROG_TYPE_TRACEPOINT, insns)
    assert str(e.value).startswith(
        "kernel feature missing: helper bpf_skb_load_bytes in tracepoint programs")
    assert "\n" not in str(e.value)


def test_unknown_helper_id_stays_a_verifier_error() -> None:
    """An id no kernel has (the CO-RE poison call is one) is the program's fault."""
    insns = asm.call(0xBAD2310) + asm.mov64_imm(asm.R0, 0) + asm.exit_()
    with pytest.raises(VerifierError, match="invalid func unknown#195896080"):
        load_program("cf_poison", C.BPF_PROG_TYPE_TRACEPOINT, insns)


@pytest.mark.parametrize("reason,helper", [
    ("invalid func unknown#173", "bpf_get_func_ip"),
    ("unknown func bpf_ringbuf_output#130", "bpf_ringbuf_output"),
    ("program of this type cannot use helper bpf_probe_write_user#36", "bpf_probe_write_user"),
    ("R1 invalid mem access 'scalar'", None),
    ("invalid func unknown#195896080", None),
])
def test_missing_helper_reads_the_verifier_reason(reason: str, helper: str | None) -> None:
    from coreframe.programs import missing_helper

    assert missing_helper(reason) == helper
