"""The fallbacks an older kernel (Debian 11's 5.10) needs, each chosen by a probe, and
the one-line FeatureMissing for what has no fallback.

- perf-event based attach (tracepoint, kprobe, uprobe): a BPF perf link where
  ``features.has_bpf_link()`` says the kernel has them (5.15+), else
  PERF_EVENT_IOC_SET_BPF + PERF_EVENT_IOC_ENABLE on the perf event (libbpf's way),
  recorded as a fallback; a BPF cookie on a perf event needs the link.
- reading and deleting hash map entries: BPF_MAP_LOOKUP_AND_DELETE_ELEM (5.14+) or,
  before it, BPF_MAP_LOOKUP_AND_DELETE_BATCH (5.6+).
- BTF kinds newer than the kernel (FLOAT 5.13, DECL_TAG 5.16, TYPE_TAG 5.17): the
  object's BTF is sanitized for it (``features.btf_kinds``) and still loads.
- a helper the kernel does not know (bpf_get_func_ip, 5.15+) has no fallback: the
  load fails with FeatureMissing naming the helper, not a verifier dump.

Each runs on the host and in every guest; a guest may lack only what test-kernels.sh
lists for its series (CF_GUEST_MAY_LACK).
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable

import pytest
from kernkit import OBJECTS, Expect

import coreframe
from coreframe import asm, features
from coreframe.btf.kinds import Kind
from coreframe.errors import FeatureMissing
from coreframe.link import attach_tracepoint
from coreframe.link.perf_event import IOCTL_FALLBACK
from coreframe.maps import Map
from coreframe.perf import PerfBuffer
from coreframe.programs import load_program
from coreframe.sys import consts as C

pytestmark = pytest.mark.kernel

EVENT = struct.Struct("<IIQ")
SEQS = [2_000_000 + i for i in range(5)]


def test_perf_event_attach_path_is_probed(expect_feature: Expect,
                                          record_property: Callable[[str, object], None]
                                          ) -> None:
    """kern_bufs' tracepoint program attaches by the way the probe chose and sees every
    getpgid(N) of this process through its perf buffer."""
    links_here = expect_feature(features.has_bpf_link(), "BPF perf links")
    spec = coreframe.open(str(OBJECTS / "kern_bufs.bpf.o"))
    spec.rodata.targ_tgid = os.getpid()
    got: list[int] = []
    with spec.load() as obj:
        links = obj.attach()
        assert [link.kind for link in links] == (
            ["tracepoint"] if links_here else ["tracepoint (ioctl)"])
        with PerfBuffer(obj.maps.perf, callback=lambda rec: got.append(
                EVENT.unpack_from(rec)[2]), page_cnt=8) as pb:
            for seq in SEQS:
                try:
                    os.getpgid(seq)
                except ProcessLookupError:
                    pass
            for _ in range(100):
                if len(got) >= len(SEQS):
                    break
                pb.poll(0.1)
        assert sorted(got) == SEQS
        if links_here:
            assert links[0].info()["type"] == "BPF_LINK_TYPE_PERF_EVENT"
            return
        assert IOCTL_FALLBACK in features.fallbacks_taken()
        record_property("fallback_checked", IOCTL_FALLBACK)
        prog = obj.programs[next(iter(obj.programs))]
        with pytest.raises(FeatureMissing, match="BPF perf links") as e:
            attach_tracepoint(prog, "syscalls", "sys_enter_getpgid", cookie=1)
        assert "\n" not in str(e.value)


def test_take_all_drains_hash_map(expect_feature: Expect) -> None:
    """Every entry comes back once and the map is empty, by whichever command the
    probe chose (per key on 5.14+, in batches before)."""
    per_key = expect_feature(features.has_lookup_and_delete(C.BPF_MAP_TYPE_HASH),
                             "lookup-and-delete on hash maps")
    with Map.create(C.BPF_MAP_TYPE_HASH, 4, 8, 128, name="cf_take") as m:
        for k in range(100):
            m[k] = k + 7
        got = {int.from_bytes(k, "little"): int.from_bytes(v, "little")
               for k, v in m.take_all()}
        assert got == {k: k + 7 for k in range(100)}
        assert list(m.keys()) == []
    if not per_key:
        assert any("LOOKUP_AND_DELETE_BATCH" in n for n in features.fallbacks_taken())


def test_unknown_helper_is_feature_missing(expect_feature: Expect) -> None:
    """A kprobe program calling bpf_get_func_ip loads where the kernel offers it; on an
    older kernel the load fails with one line naming the helper."""
    insns = (asm.call(C.BPF_FUNC_get_func_ip) + asm.mov64_imm(asm.R0, 0) + asm.exit_())
    have = features.has_helper(C.BPF_PROG_TYPE_KPROBE, C.BPF_FUNC_get_func_ip)
    if expect_feature(have, "bpf_get_func_ip"):
        load_program("cf_func_ip", C.BPF_PROG_TYPE_KPROBE, insns).close()
        return
    with pytest.raises(FeatureMissing, match="bpf_get_func_ip") as e:
        load_program("cf_func_ip", C.BPF_PROG_TYPE_KPROBE, insns)
    assert "\n" not in str(e.value)
    assert "helper bpf_get_func_ip in kprobe programs" in str(e.value)


def test_newer_btf_kinds_are_sanitized_and_load() -> None:
    """kern_btfkinds' map value holds a float, a type tag and a decl tag: the object's
    BTF loads (sanitized where the kernel lacks those kinds), the map is typed by it, and
    the program counts every getpgid() of this process."""
    spec = coreframe.open(str(OBJECTS / "kern_btfkinds.bpf.o"))
    assert spec.btf is not None
    for kind in (Kind.FLOAT, Kind.DECL_TAG, Kind.TYPE_TAG):
        assert spec.btf.ids_of_kinds(kind), f"the object lost its {kind.name} type"
    spec.rodata.targ_tgid = os.getpid()
    with spec.load() as obj:
        assert obj.btf_fd is not None, "the kernel refused the object's (sanitized) BTF"
        obj.attach()
        for seq in SEQS:
            try:
                os.getpgid(seq)
            except ProcessLookupError:
                pass
        value = obj.maps.counts.raw.lookup(0)
    assert int.from_bytes(bytes(value)[16:24], "little") == len(SEQS)
    lacking = [k for k in ("float", "decl_tag", "type_tag") if not features.btf_kinds()[k]]
    if lacking:
        assert any(n.startswith("object BTF sanitized: ") and all(k in n for k in lacking)
                   for n in features.fallbacks_taken())
