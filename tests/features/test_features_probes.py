"""Feature probes give sane answers on this kernel (6.18 VM: no kprobes, no trampolines)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from coreframe import features as F
from coreframe.btf import kinds as K
from coreframe.sys import consts as C

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")


def test_basic_probes() -> None:
    assert F.has_btf()
    assert F.has_ringbuf() is True
    assert F.has_mmapable_maps() is True
    assert F.has_batch_ops() is True
    assert F.has_map_type(C.BPF_MAP_TYPE_HASH)
    assert F.has_map_type(C.BPF_MAP_TYPE_TASK_STORAGE)
    assert F.has_map_type(C.BPF_MAP_TYPE_HASH_OF_MAPS)
    assert F.has_map_type(9999) is False
    assert F.has_prog_type(C.BPF_PROG_TYPE_TRACEPOINT)
    assert F.has_prog_type(C.BPF_PROG_TYPE_XDP)
    assert F.has_prog_type(C.BPF_PROG_TYPE_TRACING)  # the type exists; loading it is refused
    assert F.has_prog_type(999) is False


def test_helpers() -> None:
    tp = C.BPF_PROG_TYPE_TRACEPOINT
    assert F.has_helper(tp, C.BPF_FUNC_map_lookup_elem)
    assert F.has_helper(tp, C.BPF_FUNC_ringbuf_output)
    assert F.has_helper(tp, 100000) is False  # no such helper
    # a networking helper is not available to tracing programs
    assert F.has_helper(tp, C.BPF_FUNC_xdp_adjust_head) is False
    assert F.has_helper(C.BPF_PROG_TYPE_XDP, C.BPF_FUNC_xdp_adjust_head) is True


def test_attach_and_links() -> None:
    assert F.has_attach_type(C.BPF_PROG_TYPE_CGROUP_SOCK_ADDR, C.BPF_CGROUP_INET4_CONNECT)
    assert F.has_attach_type(C.BPF_PROG_TYPE_CGROUP_SOCK_ADDR, 9999) is False
    assert F.has_bpf_link() is True
    assert F.has_raw_tp_link() is True
    assert F.has_bpf_cookie() is True


def test_this_kernel_lacks_kprobes_and_trampolines() -> None:
    assert F.has_kprobe() is False
    assert F.has_trampoline() is False
    assert F.has_kprobe_multi() is False
    assert F.has_uprobe() is True


def test_btf_kinds() -> None:
    for kind in range(K.BTF_KIND_INT, K.BTF_KIND_ENUM64 + 1):
        assert F.has_btf_kind(kind), K.KIND_STR[kind]
    assert F.has_btf_kind(31) is False
    assert F.has_btf_func_global()


def test_probes_are_cached() -> None:
    F.has_map_type(C.BPF_MAP_TYPE_QUEUE)
    hits = F.has_map_type.cache_info().hits
    F.has_map_type(C.BPF_MAP_TYPE_QUEUE)
    assert F.has_map_type.cache_info().hits == hits + 1


def test_all_features_is_json() -> None:
    feats = F.all_features()
    text = json.dumps(feats)
    assert json.loads(text) == feats
    assert set(feats) == {"map_types", "prog_types", "helpers", "link_types", "btf_kinds",
                          "misc"}
    assert feats["map_types"]["ringbuf"] is True
    assert feats["map_types"]["hash"] is True
    assert feats["prog_types"]["tracepoint"] is True
    assert feats["misc"]["kprobe"] is False
    assert feats["misc"]["trampoline"] is False
    assert feats["btf_kinds"]["enum64"] is True
    assert feats["link_types"]["perf_event"] is True


def test_probes_do_not_leak_fds() -> None:
    before = len(os.listdir("/proc/self/fd"))
    F.has_map_type.cache_clear()
    F.has_prog_type.cache_clear()
    F.has_helper.cache_clear()
    F.all_features()
    assert len(os.listdir("/proc/self/fd")) == before


@pytest.mark.unprivileged
def test_unprivileged_probe_says_permission_denied() -> None:
    code = (
        "from coreframe import features\n"
        "from coreframe.errors import PermissionDenied\n"
        "try:\n"
        "    features.has_map_type(1)\n"
        "except PermissionDenied as e:\n"
        "    print('denied', e.capability)\n"
    )
    cmd = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all",
           sys.executable, "-c", code]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd="/", timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "denied CAP_BPF"
