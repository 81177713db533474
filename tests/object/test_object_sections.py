"""parse_section: libbpf's SEC() table, matching rules and attach hints."""

from __future__ import annotations

import pytest

from coreframe.errors import ObjectError
from coreframe.object.sections import find_section_def, known_patterns, parse_section
from coreframe.sys import consts as C

CASES = [
    # name, prog type, expected attach type, attach kind, target, sleepable, is_return
    ("socket", C.BPF_PROG_TYPE_SOCKET_FILTER, 0, "socket", "", False, False),
    ("sk_reuseport", C.BPF_PROG_TYPE_SK_REUSEPORT, C.BPF_SK_REUSEPORT_SELECT,
     "sk_reuseport", "", False, False),
    ("sk_reuseport/migrate", C.BPF_PROG_TYPE_SK_REUSEPORT,
     C.BPF_SK_REUSEPORT_SELECT_OR_MIGRATE, "sk_reuseport", "", False, False),
    ("kprobe/do_sys_open", C.BPF_PROG_TYPE_KPROBE, 0, "kprobe", "do_sys_open", False, False),
    ("kretprobe/do_sys_open", C.BPF_PROG_TYPE_KPROBE, 0, "kprobe", "do_sys_open", False, True),
    ("uprobe//bin/bash:readline", C.BPF_PROG_TYPE_KPROBE, 0, "uprobe", "/bin/bash:readline",
     False, False),
    ("uprobe.s//lib/libc.so.6:malloc", C.BPF_PROG_TYPE_KPROBE, 0, "uprobe",
     "/lib/libc.so.6:malloc", True, False),
    ("uretprobe//bin/bash:readline", C.BPF_PROG_TYPE_KPROBE, 0, "uprobe",
     "/bin/bash:readline", False, True),
    ("uretprobe.s//bin/x:f", C.BPF_PROG_TYPE_KPROBE, 0, "uprobe", "/bin/x:f", True, True),
    ("kprobe.multi/vfs_*", C.BPF_PROG_TYPE_KPROBE, C.BPF_TRACE_KPROBE_MULTI, "kprobe_multi",
     "vfs_*", False, False),
    ("kretprobe.multi/vfs_*", C.BPF_PROG_TYPE_KPROBE, C.BPF_TRACE_KPROBE_MULTI,
     "kprobe_multi", "vfs_*", False, True),
    ("uprobe.multi//bin/x:f*", C.BPF_PROG_TYPE_KPROBE, C.BPF_TRACE_UPROBE_MULTI,
     "uprobe_multi", "/bin/x:f*", False, False),
    ("uretprobe.multi//bin/x:f*", C.BPF_PROG_TYPE_KPROBE, C.BPF_TRACE_UPROBE_MULTI,
     "uprobe_multi", "/bin/x:f*", False, True),
    ("ksyscall/openat", C.BPF_PROG_TYPE_KPROBE, 0, "ksyscall", "openat", False, False),
    ("kretsyscall/openat", C.BPF_PROG_TYPE_KPROBE, 0, "ksyscall", "openat", False, True),
    ("usdt/libc:setjmp", C.BPF_PROG_TYPE_KPROBE, 0, "usdt", "libc:setjmp", False, False),
    ("tc", C.BPF_PROG_TYPE_SCHED_CLS, 0, "tc", "", False, False),
    ("tc/ingress", C.BPF_PROG_TYPE_SCHED_CLS, C.BPF_TCX_INGRESS, "tcx", "", False, False),
    ("tc/egress", C.BPF_PROG_TYPE_SCHED_CLS, C.BPF_TCX_EGRESS, "tcx", "", False, False),
    ("tcx/ingress", C.BPF_PROG_TYPE_SCHED_CLS, C.BPF_TCX_INGRESS, "tcx", "", False, False),
    ("tcx/egress", C.BPF_PROG_TYPE_SCHED_CLS, C.BPF_TCX_EGRESS, "tcx", "", False, False),
    ("classifier", C.BPF_PROG_TYPE_SCHED_CLS, 0, "tc", "", False, False),
    ("action", C.BPF_PROG_TYPE_SCHED_ACT, 0, "tc_action", "", False, False),
    ("tracepoint/syscalls/sys_enter_execve", C.BPF_PROG_TYPE_TRACEPOINT, 0, "tracepoint",
     "syscalls/sys_enter_execve", False, False),
    ("tp/sched/sched_switch", C.BPF_PROG_TYPE_TRACEPOINT, 0, "tracepoint",
     "sched/sched_switch", False, False),
    ("raw_tracepoint/sys_enter", C.BPF_PROG_TYPE_RAW_TRACEPOINT, 0, "raw_tracepoint",
     "sys_enter", False, False),
    ("raw_tp/sys_enter", C.BPF_PROG_TYPE_RAW_TRACEPOINT, 0, "raw_tracepoint", "sys_enter",
     False, False),
    ("raw_tracepoint.w/x", C.BPF_PROG_TYPE_RAW_TRACEPOINT_WRITABLE, 0, "raw_tracepoint", "x",
     False, False),
    ("raw_tp.w/x", C.BPF_PROG_TYPE_RAW_TRACEPOINT_WRITABLE, 0, "raw_tracepoint", "x",
     False, False),
    ("tp_btf/sched_switch", C.BPF_PROG_TYPE_TRACING, C.BPF_TRACE_RAW_TP, "tp_btf",
     "sched_switch", False, False),
    ("fentry/vfs_read", C.BPF_PROG_TYPE_TRACING, C.BPF_TRACE_FENTRY, "fentry", "vfs_read",
     False, False),
    ("fmod_ret/x", C.BPF_PROG_TYPE_TRACING, C.BPF_MODIFY_RETURN, "fmod_ret", "x", False, False),
    ("fexit/vfs_read", C.BPF_PROG_TYPE_TRACING, C.BPF_TRACE_FEXIT, "fexit", "vfs_read",
     False, True),
    ("fentry.s/x", C.BPF_PROG_TYPE_TRACING, C.BPF_TRACE_FENTRY, "fentry", "x", True, False),
    ("fmod_ret.s/x", C.BPF_PROG_TYPE_TRACING, C.BPF_MODIFY_RETURN, "fmod_ret", "x", True, False),
    ("fexit.s/x", C.BPF_PROG_TYPE_TRACING, C.BPF_TRACE_FEXIT, "fexit", "x", True, True),
    ("freplace/f", C.BPF_PROG_TYPE_EXT, 0, "freplace", "f", False, False),
    ("lsm/file_open", C.BPF_PROG_TYPE_LSM, C.BPF_LSM_MAC, "lsm", "file_open", False, False),
    ("lsm.s/file_open", C.BPF_PROG_TYPE_LSM, C.BPF_LSM_MAC, "lsm", "file_open", True, False),
    ("lsm_cgroup/socket_bind", C.BPF_PROG_TYPE_LSM, C.BPF_LSM_CGROUP, "lsm_cgroup",
     "socket_bind", False, False),
    ("iter/task", C.BPF_PROG_TYPE_TRACING, C.BPF_TRACE_ITER, "iter", "task", False, False),
    ("iter.s/task", C.BPF_PROG_TYPE_TRACING, C.BPF_TRACE_ITER, "iter", "task", True, False),
    ("syscall", C.BPF_PROG_TYPE_SYSCALL, 0, "syscall", "", True, False),
    ("xdp", C.BPF_PROG_TYPE_XDP, C.BPF_XDP, "xdp", "", False, False),
    ("xdp.frags", C.BPF_PROG_TYPE_XDP, C.BPF_XDP, "xdp", "", False, False),
    ("xdp/devmap", C.BPF_PROG_TYPE_XDP, C.BPF_XDP_DEVMAP, "xdp", "", False, False),
    ("xdp.frags/devmap", C.BPF_PROG_TYPE_XDP, C.BPF_XDP_DEVMAP, "xdp", "", False, False),
    ("xdp/cpumap", C.BPF_PROG_TYPE_XDP, C.BPF_XDP_CPUMAP, "xdp", "", False, False),
    ("perf_event", C.BPF_PROG_TYPE_PERF_EVENT, 0, "perf_event", "", False, False),
    ("lwt_in", C.BPF_PROG_TYPE_LWT_IN, 0, "lwt", "", False, False),
    ("lwt_out", C.BPF_PROG_TYPE_LWT_OUT, 0, "lwt", "", False, False),
    ("lwt_xmit", C.BPF_PROG_TYPE_LWT_XMIT, 0, "lwt", "", False, False),
    ("lwt_seg6local", C.BPF_PROG_TYPE_LWT_SEG6LOCAL, 0, "lwt", "", False, False),
    ("cgroup_skb/ingress", C.BPF_PROG_TYPE_CGROUP_SKB, C.BPF_CGROUP_INET_INGRESS, "cgroup",
     "", False, False),
    ("cgroup_skb/egress", C.BPF_PROG_TYPE_CGROUP_SKB, C.BPF_CGROUP_INET_EGRESS, "cgroup",
     "", False, False),
    ("cgroup/skb", C.BPF_PROG_TYPE_CGROUP_SKB, 0, "cgroup", "", False, False),
    ("cgroup/sock", C.BPF_PROG_TYPE_CGROUP_SOCK, C.BPF_CGROUP_INET_SOCK_CREATE, "cgroup", "",
     False, False),
    ("cgroup/sock_create", C.BPF_PROG_TYPE_CGROUP_SOCK, C.BPF_CGROUP_INET_SOCK_CREATE,
     "cgroup", "", False, False),
    ("cgroup/sock_release", C.BPF_PROG_TYPE_CGROUP_SOCK, C.BPF_CGROUP_INET_SOCK_RELEASE,
     "cgroup", "", False, False),
    ("cgroup/post_bind4", C.BPF_PROG_TYPE_CGROUP_SOCK, C.BPF_CGROUP_INET4_POST_BIND,
     "cgroup", "", False, False),
    ("cgroup/dev", C.BPF_PROG_TYPE_CGROUP_DEVICE, C.BPF_CGROUP_DEVICE, "cgroup", "", False,
     False),
    ("cgroup/bind4", C.BPF_PROG_TYPE_CGROUP_SOCK_ADDR, C.BPF_CGROUP_INET4_BIND, "cgroup", "",
     False, False),
    ("cgroup/bind6", C.BPF_PROG_TYPE_CGROUP_SOCK_ADDR, C.BPF_CGROUP_INET6_BIND, "cgroup", "",
     False, False),
    ("cgroup/connect4", C.BPF_PROG_TYPE_CGROUP_SOCK_ADDR, C.BPF_CGROUP_INET4_CONNECT,
     "cgroup", "", False, False),
    ("cgroup/connect6", C.BPF_PROG_TYPE_CGROUP_SOCK_ADDR, C.BPF_CGROUP_INET6_CONNECT,
     "cgroup", "", False, False),
    ("sockops", C.BPF_PROG_TYPE_SOCK_OPS, C.BPF_CGROUP_SOCK_OPS, "cgroup", "", False, False),
    ("sk_skb/stream_parser", C.BPF_PROG_TYPE_SK_SKB, C.BPF_SK_SKB_STREAM_PARSER, "sockmap",
     "", False, False),
    ("sk_skb/stream_verdict", C.BPF_PROG_TYPE_SK_SKB, C.BPF_SK_SKB_STREAM_VERDICT, "sockmap",
     "", False, False),
    ("sk_skb/verdict", C.BPF_PROG_TYPE_SK_SKB, C.BPF_SK_SKB_VERDICT, "sockmap", "", False,
     False),
    ("sk_skb", C.BPF_PROG_TYPE_SK_SKB, 0, "sockmap", "", False, False),
    ("sk_msg", C.BPF_PROG_TYPE_SK_MSG, C.BPF_SK_MSG_VERDICT, "sockmap", "", False, False),
    ("lirc_mode2", C.BPF_PROG_TYPE_LIRC_MODE2, C.BPF_LIRC_MODE2, "lirc", "", False, False),
    ("flow_dissector", C.BPF_PROG_TYPE_FLOW_DISSECTOR, C.BPF_FLOW_DISSECTOR,
     "flow_dissector", "", False, False),
    ("cgroup/sysctl", C.BPF_PROG_TYPE_CGROUP_SYSCTL, C.BPF_CGROUP_SYSCTL, "cgroup", "",
     False, False),
    ("cgroup/getsockopt", C.BPF_PROG_TYPE_CGROUP_SOCKOPT, C.BPF_CGROUP_GETSOCKOPT, "cgroup",
     "", False, False),
    ("cgroup/setsockopt", C.BPF_PROG_TYPE_CGROUP_SOCKOPT, C.BPF_CGROUP_SETSOCKOPT, "cgroup",
     "", False, False),
    ("struct_ops/tcp_init", C.BPF_PROG_TYPE_STRUCT_OPS, 0, "struct_ops", "tcp_init", False,
     False),
    ("struct_ops", C.BPF_PROG_TYPE_STRUCT_OPS, 0, "struct_ops", "", False, False),
    ("sk_lookup", C.BPF_PROG_TYPE_SK_LOOKUP, C.BPF_SK_LOOKUP, "sk_lookup", "", False, False),
    ("netfilter", C.BPF_PROG_TYPE_NETFILTER, C.BPF_NETFILTER, "netfilter", "", False, False),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_table(case: tuple) -> None:
    name, ptype, eat, kind, target, sleepable, is_return = case
    sd = parse_section(name)
    assert (sd.prog_type, sd.expected_attach_type, sd.attach_kind, sd.attach_target,
            sd.sleepable, sd.is_return) == (ptype, eat, kind, target, sleepable, is_return)
    assert sd.name == name


def test_prog_flags() -> None:
    assert parse_section("xdp.frags").prog_flags == C.BPF_F_XDP_HAS_FRAGS
    assert parse_section("xdp.frags/cpumap").prog_flags == C.BPF_F_XDP_HAS_FRAGS
    assert parse_section("lsm.s/file_open").prog_flags == C.BPF_F_SLEEPABLE
    assert parse_section("xdp").prog_flags == 0


def test_btf_targets() -> None:
    assert parse_section("tp_btf/sched_switch").btf_target_prefix == "btf_trace_"
    assert parse_section("iter/task").btf_target_prefix == "bpf_iter_"
    assert parse_section("lsm/file_open").btf_target_prefix == "bpf_lsm_"
    assert parse_section("fentry/vfs_read").btf_target_prefix == ""
    assert parse_section("kprobe/vfs_read").btf_target_prefix is None


def test_auto_attach_needs_a_target() -> None:
    assert parse_section("kprobe/vfs_read").auto_attach
    assert not parse_section("kprobe").auto_attach
    assert parse_section("tp/sched/sched_switch").auto_attach
    assert not parse_section("xdp").auto_attach
    assert not parse_section("tc/ingress").auto_attach


@pytest.mark.parametrize("name", [
    "kprobex/foo",        # '+' entries need an exact name or a '/' separator
    "tracepointfoo",
    "xdp/foo",            # plain entries must match exactly
    "tc/foo",
    "sk_skb/foo",
    "socket1",
    "",
    ".text",
])
def test_unknown(name: str) -> None:
    assert find_section_def(name) is None
    with pytest.raises(ObjectError, match="unknown program section name"):
        parse_section(name)


def test_bare_prefix_matches() -> None:
    assert parse_section("kprobe").attach_target == ""
    assert parse_section("uprobe").attach_kind == "uprobe"
    assert parse_section("tp").attach_kind == "tracepoint"


def test_first_match_wins_like_libbpf() -> None:
    # 'kprobe.multi/x' must not be taken by 'kprobe+' (the char after 'kprobe' is '.').
    assert parse_section("kprobe.multi/x").attach_kind == "kprobe_multi"
    assert parse_section("uprobe.multi.s//x:y").sleepable
    pats = known_patterns()
    assert pats.index("xdp.frags/devmap") < pats.index("xdp")
