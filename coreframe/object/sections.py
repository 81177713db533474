"""libbpf's SEC() naming convention: section name -> program type and attach hints.

A program's ELF section name is all the loader knows about what kind of program
it is, so coreframe matches names exactly the way libbpf 1.x does: an entry
ending in ``+`` matches the bare name or ``name/<target>``, an entry ending in
``/`` needs a target, anything else must match exactly; the first matching
entry in table order wins.

``attach_kind`` names the attach family the links layer dispatches on:
``socket``, ``sk_reuseport``, ``kprobe``, ``uprobe``, ``kprobe_multi``,
``uprobe_multi``, ``ksyscall``, ``usdt``, ``tc``, ``tcx``, ``netkit``,
``tc_action``, ``tracepoint``, ``raw_tracepoint``, ``tp_btf``, ``fentry``,
``fexit``, ``fmod_ret``, ``freplace``, ``lsm``, ``lsm_cgroup``, ``iter``,
``syscall``, ``xdp``, ``perf_event``, ``lwt``, ``cgroup``, ``sockmap``,
``lirc``, ``flow_dissector``, ``struct_ops``, ``sk_lookup``, ``netfilter``.
"""

from __future__ import annotations

from ..errors import ObjectError
from ..runtime.startup import Record, memoize

# libbpf's per-entry flags (libbpf.c, enum sec_def_flags); same meaning here.
SEC_NONE = 0
SEC_EXP_ATTACH_OPT = 1
SEC_ATTACHABLE = 2
SEC_ATTACHABLE_OPT = SEC_ATTACHABLE | SEC_EXP_ATTACH_OPT
SEC_ATTACH_BTF = 4
SEC_SLEEPABLE = 8
SEC_XDP_FRAGS = 16
SEC_USDT = 32

# Families libbpf can attach without extra arguments (they have an attach callback).
AUTO_ATTACH_KINDS = frozenset({
    "kprobe", "uprobe", "kprobe_multi", "uprobe_multi", "ksyscall", "usdt",
    "tracepoint", "raw_tracepoint", "tp_btf", "fentry", "fexit", "fmod_ret", "lsm", "iter",
})
# Of those, the ones whose target lives in kernel BTF (attach_btf_id) and its name prefix.
BTF_TARGET_PREFIX = {
    "tp_btf": "btf_trace_", "fentry": "", "fexit": "", "fmod_ret": "",
    "lsm": "bpf_lsm_", "lsm_cgroup": "bpf_lsm_", "iter": "bpf_iter_", "freplace": "",
}
# Families whose programs run through a BPF trampoline: the kernel refuses to load
# them (EPERM even to root) where it has none, however they are attached.
TRAMPOLINE_ATTACH_KINDS = frozenset({"fentry", "fexit", "fmod_ret", "lsm", "lsm_cgroup",
                                     "freplace"})


class SectionDef(
        Record,
        fields=("name pattern prog_type expected_attach_type attach_kind attach_target "
                "sleepable is_return xdp_frags attach_btf usdt flags"),
        defaults=("", False, False, False, False, False, SEC_NONE)):
    """What a SEC() name says about a program.

    ``attach_target`` is the text after the matched prefix and its ``/``
    (``"syscalls/sys_enter_execve"`` for ``tracepoint/syscalls/sys_enter_execve``),
    or ``""``. ``prog_flags`` holds the BPF_F_* load flags the name implies.
    """

    __slots__ = ()

    name: str
    pattern: str
    prog_type: int
    expected_attach_type: int
    attach_kind: str
    attach_target: str
    sleepable: bool
    is_return: bool
    xdp_frags: bool
    attach_btf: bool
    usdt: bool
    flags: int

    @property
    def prog_flags(self) -> int:
        from ..sys import consts as C

        flags = 0
        if self.sleepable:
            flags |= C.BPF_F_SLEEPABLE
        if self.xdp_frags:
            flags |= C.BPF_F_XDP_HAS_FRAGS
        return flags

    @property
    def auto_attach(self) -> bool:
        """True when ``Object.attach()`` can attach it from the name alone, like libbpf."""
        return self.attach_kind in AUTO_ATTACH_KINDS and bool(self.attach_target)

    @property
    def btf_target_prefix(self) -> str | None:
        """Kernel BTF name prefix of the attach target, or None when none is needed."""
        return BTF_TARGET_PREFIX.get(self.attach_kind) if self.attach_btf else None


@memoize
def _table() -> list[tuple[str, int, int, int, str, bool]]:
    """(pattern, prog type, expected attach type, flags, attach kind, is_return), in
    libbpf's order. Built on first lookup: a spec read back from the cache names its
    programs' SectionDefs already, so a warm start needs neither this nor the UAPI
    constants it is made of."""
    from ..sys import consts as C

    return [
        ("socket", C.BPF_PROG_TYPE_SOCKET_FILTER, 0, SEC_NONE, "socket", False),
        ("sk_reuseport/migrate", C.BPF_PROG_TYPE_SK_REUSEPORT,
         C.BPF_SK_REUSEPORT_SELECT_OR_MIGRATE, SEC_ATTACHABLE, "sk_reuseport", False),
        ("sk_reuseport", C.BPF_PROG_TYPE_SK_REUSEPORT, C.BPF_SK_REUSEPORT_SELECT,
         SEC_ATTACHABLE, "sk_reuseport", False),
        ("kprobe+", C.BPF_PROG_TYPE_KPROBE, 0, SEC_NONE, "kprobe", False),
        ("uprobe+", C.BPF_PROG_TYPE_KPROBE, 0, SEC_NONE, "uprobe", False),
        ("uprobe.s+", C.BPF_PROG_TYPE_KPROBE, 0, SEC_SLEEPABLE, "uprobe", False),
        ("kretprobe+", C.BPF_PROG_TYPE_KPROBE, 0, SEC_NONE, "kprobe", True),
        ("uretprobe+", C.BPF_PROG_TYPE_KPROBE, 0, SEC_NONE, "uprobe", True),
        ("uretprobe.s+", C.BPF_PROG_TYPE_KPROBE, 0, SEC_SLEEPABLE, "uprobe", True),
        ("kprobe.multi+", C.BPF_PROG_TYPE_KPROBE, C.BPF_TRACE_KPROBE_MULTI, SEC_NONE,
         "kprobe_multi", False),
        ("kretprobe.multi+", C.BPF_PROG_TYPE_KPROBE, C.BPF_TRACE_KPROBE_MULTI, SEC_NONE,
         "kprobe_multi", True),
        ("kprobe.session+", C.BPF_PROG_TYPE_KPROBE, C.BPF_TRACE_KPROBE_SESSION, SEC_NONE,
         "kprobe_multi", False),
        ("uprobe.multi+", C.BPF_PROG_TYPE_KPROBE, C.BPF_TRACE_UPROBE_MULTI, SEC_NONE,
         "uprobe_multi", False),
        ("uretprobe.multi+", C.BPF_PROG_TYPE_KPROBE, C.BPF_TRACE_UPROBE_MULTI, SEC_NONE,
         "uprobe_multi", True),
        ("uprobe.multi.s+", C.BPF_PROG_TYPE_KPROBE, C.BPF_TRACE_UPROBE_MULTI, SEC_SLEEPABLE,
         "uprobe_multi", False),
        ("uretprobe.multi.s+", C.BPF_PROG_TYPE_KPROBE, C.BPF_TRACE_UPROBE_MULTI, SEC_SLEEPABLE,
         "uprobe_multi", True),
        ("ksyscall+", C.BPF_PROG_TYPE_KPROBE, 0, SEC_NONE, "ksyscall", False),
        ("kretsyscall+", C.BPF_PROG_TYPE_KPROBE, 0, SEC_NONE, "ksyscall", True),
        ("usdt+", C.BPF_PROG_TYPE_KPROBE, 0, SEC_USDT, "usdt", False),
        ("usdt.s+", C.BPF_PROG_TYPE_KPROBE, 0, SEC_USDT | SEC_SLEEPABLE, "usdt", False),
        ("tc/ingress", C.BPF_PROG_TYPE_SCHED_CLS, C.BPF_TCX_INGRESS, SEC_NONE, "tcx", False),
        ("tc/egress", C.BPF_PROG_TYPE_SCHED_CLS, C.BPF_TCX_EGRESS, SEC_NONE, "tcx", False),
        ("tcx/ingress", C.BPF_PROG_TYPE_SCHED_CLS, C.BPF_TCX_INGRESS, SEC_NONE, "tcx", False),
        ("tcx/egress", C.BPF_PROG_TYPE_SCHED_CLS, C.BPF_TCX_EGRESS, SEC_NONE, "tcx", False),
        ("netkit/primary", C.BPF_PROG_TYPE_SCHED_CLS, C.BPF_NETKIT_PRIMARY, SEC_NONE,
         "netkit", False),
        ("netkit/peer", C.BPF_PROG_TYPE_SCHED_CLS, C.BPF_NETKIT_PEER, SEC_NONE, "netkit", False),
        ("tc", C.BPF_PROG_TYPE_SCHED_CLS, 0, SEC_NONE, "tc", False),
        ("classifier", C.BPF_PROG_TYPE_SCHED_CLS, 0, SEC_NONE, "tc", False),
        ("action", C.BPF_PROG_TYPE_SCHED_ACT, 0, SEC_NONE, "tc_action", False),
        ("tracepoint+", C.BPF_PROG_TYPE_TRACEPOINT, 0, SEC_NONE, "tracepoint", False),
        ("tp+", C.BPF_PROG_TYPE_TRACEPOINT, 0, SEC_NONE, "tracepoint", False),
        ("raw_tracepoint+", C.BPF_PROG_TYPE_RAW_TRACEPOINT, 0, SEC_NONE, "raw_tracepoint", False),
        ("raw_tp+", C.BPF_PROG_TYPE_RAW_TRACEPOINT, 0, SEC_NONE, "raw_tracepoint", False),
        ("raw_tracepoint.w+", C.BPF_PROG_TYPE_RAW_TRACEPOINT_WRITABLE, 0, SEC_NONE,
         "raw_tracepoint", False),
        ("raw_tp.w+", C.BPF_PROG_TYPE_RAW_TRACEPOINT_WRITABLE, 0, SEC_NONE,
         "raw_tracepoint", False),
        ("tp_btf+", C.BPF_PROG_TYPE_TRACING, C.BPF_TRACE_RAW_TP, SEC_ATTACH_BTF, "tp_btf", False),
        ("fentry+", C.BPF_PROG_TYPE_TRACING, C.BPF_TRACE_FENTRY, SEC_ATTACH_BTF, "fentry", False),
        ("fmod_ret+", C.BPF_PROG_TYPE_TRACING, C.BPF_MODIFY_RETURN, SEC_ATTACH_BTF,
         "fmod_ret", False),
        ("fexit+", C.BPF_PROG_TYPE_TRACING, C.BPF_TRACE_FEXIT, SEC_ATTACH_BTF, "fexit", True),
        ("fentry.s+", C.BPF_PROG_TYPE_TRACING, C.BPF_TRACE_FENTRY,
         SEC_ATTACH_BTF | SEC_SLEEPABLE, "fentry", False),
        ("fmod_ret.s+", C.BPF_PROG_TYPE_TRACING, C.BPF_MODIFY_RETURN,
         SEC_ATTACH_BTF | SEC_SLEEPABLE, "fmod_ret", False),
        ("fexit.s+", C.BPF_PROG_TYPE_TRACING, C.BPF_TRACE_FEXIT,
         SEC_ATTACH_BTF | SEC_SLEEPABLE, "fexit", True),
        ("freplace+", C.BPF_PROG_TYPE_EXT, 0, SEC_ATTACH_BTF, "freplace", False),
        ("lsm+", C.BPF_PROG_TYPE_LSM, C.BPF_LSM_MAC, SEC_ATTACH_BTF, "lsm", False),
        ("lsm.s+", C.BPF_PROG_TYPE_LSM, C.BPF_LSM_MAC, SEC_ATTACH_BTF | SEC_SLEEPABLE,
         "lsm", False),
        ("lsm_cgroup+", C.BPF_PROG_TYPE_LSM, C.BPF_LSM_CGROUP, SEC_ATTACH_BTF,
         "lsm_cgroup", False),
        ("iter+", C.BPF_PROG_TYPE_TRACING, C.BPF_TRACE_ITER, SEC_ATTACH_BTF, "iter", False),
        ("iter.s+", C.BPF_PROG_TYPE_TRACING, C.BPF_TRACE_ITER, SEC_ATTACH_BTF | SEC_SLEEPABLE,
         "iter", False),
        ("syscall", C.BPF_PROG_TYPE_SYSCALL, 0, SEC_SLEEPABLE, "syscall", False),
        ("xdp.frags/devmap", C.BPF_PROG_TYPE_XDP, C.BPF_XDP_DEVMAP, SEC_XDP_FRAGS, "xdp", False),
        ("xdp/devmap", C.BPF_PROG_TYPE_XDP, C.BPF_XDP_DEVMAP, SEC_ATTACHABLE, "xdp", False),
        ("xdp.frags/cpumap", C.BPF_PROG_TYPE_XDP, C.BPF_XDP_CPUMAP, SEC_XDP_FRAGS, "xdp", False),
        ("xdp/cpumap", C.BPF_PROG_TYPE_XDP, C.BPF_XDP_CPUMAP, SEC_ATTACHABLE, "xdp", False),
        ("xdp.frags", C.BPF_PROG_TYPE_XDP, C.BPF_XDP, SEC_XDP_FRAGS, "xdp", False),
        ("xdp", C.BPF_PROG_TYPE_XDP, C.BPF_XDP, SEC_ATTACHABLE_OPT, "xdp", False),
        ("perf_event", C.BPF_PROG_TYPE_PERF_EVENT, 0, SEC_NONE, "perf_event", False),
        ("lwt_in", C.BPF_PROG_TYPE_LWT_IN, 0, SEC_NONE, "lwt", False),
        ("lwt_out", C.BPF_PROG_TYPE_LWT_OUT, 0, SEC_NONE, "lwt", False),
        ("lwt_xmit", C.BPF_PROG_TYPE_LWT_XMIT, 0, SEC_NONE, "lwt", False),
        ("lwt_seg6local", C.BPF_PROG_TYPE_LWT_SEG6LOCAL, 0, SEC_NONE, "lwt", False),
        ("sockops", C.BPF_PROG_TYPE_SOCK_OPS, C.BPF_CGROUP_SOCK_OPS, SEC_ATTACHABLE_OPT,
         "cgroup", False),
        ("sk_skb/stream_parser", C.BPF_PROG_TYPE_SK_SKB, C.BPF_SK_SKB_STREAM_PARSER,
         SEC_ATTACHABLE_OPT, "sockmap", False),
        ("sk_skb/stream_verdict", C.BPF_PROG_TYPE_SK_SKB, C.BPF_SK_SKB_STREAM_VERDICT,
         SEC_ATTACHABLE_OPT, "sockmap", False),
        ("sk_skb/verdict", C.BPF_PROG_TYPE_SK_SKB, C.BPF_SK_SKB_VERDICT, SEC_ATTACHABLE_OPT,
         "sockmap", False),
        ("sk_skb", C.BPF_PROG_TYPE_SK_SKB, 0, SEC_NONE, "sockmap", False),
        ("sk_msg", C.BPF_PROG_TYPE_SK_MSG, C.BPF_SK_MSG_VERDICT, SEC_ATTACHABLE_OPT,
         "sockmap", False),
        ("lirc_mode2", C.BPF_PROG_TYPE_LIRC_MODE2, C.BPF_LIRC_MODE2, SEC_ATTACHABLE_OPT,
         "lirc", False),
        ("flow_dissector", C.BPF_PROG_TYPE_FLOW_DISSECTOR, C.BPF_FLOW_DISSECTOR,
         SEC_ATTACHABLE_OPT, "flow_dissector", False),
        ("cgroup_skb/ingress", C.BPF_PROG_TYPE_CGROUP_SKB, C.BPF_CGROUP_INET_INGRESS,
         SEC_ATTACHABLE_OPT, "cgroup", False),
        ("cgroup_skb/egress", C.BPF_PROG_TYPE_CGROUP_SKB, C.BPF_CGROUP_INET_EGRESS,
         SEC_ATTACHABLE_OPT, "cgroup", False),
        ("cgroup/skb", C.BPF_PROG_TYPE_CGROUP_SKB, 0, SEC_NONE, "cgroup", False),
        ("cgroup/sock_create", C.BPF_PROG_TYPE_CGROUP_SOCK, C.BPF_CGROUP_INET_SOCK_CREATE,
         SEC_ATTACHABLE, "cgroup", False),
        ("cgroup/sock_release", C.BPF_PROG_TYPE_CGROUP_SOCK, C.BPF_CGROUP_INET_SOCK_RELEASE,
         SEC_ATTACHABLE, "cgroup", False),
        ("cgroup/sock", C.BPF_PROG_TYPE_CGROUP_SOCK, C.BPF_CGROUP_INET_SOCK_CREATE,
         SEC_ATTACHABLE_OPT, "cgroup", False),
        ("cgroup/post_bind4", C.BPF_PROG_TYPE_CGROUP_SOCK, C.BPF_CGROUP_INET4_POST_BIND,
         SEC_ATTACHABLE, "cgroup", False),
        ("cgroup/post_bind6", C.BPF_PROG_TYPE_CGROUP_SOCK, C.BPF_CGROUP_INET6_POST_BIND,
         SEC_ATTACHABLE, "cgroup", False),
        ("cgroup/bind4", C.BPF_PROG_TYPE_CGROUP_SOCK_ADDR, C.BPF_CGROUP_INET4_BIND,
         SEC_ATTACHABLE, "cgroup", False),
        ("cgroup/bind6", C.BPF_PROG_TYPE_CGROUP_SOCK_ADDR, C.BPF_CGROUP_INET6_BIND,
         SEC_ATTACHABLE, "cgroup", False),
        ("cgroup/connect4", C.BPF_PROG_TYPE_CGROUP_SOCK_ADDR, C.BPF_CGROUP_INET4_CONNECT,
         SEC_ATTACHABLE, "cgroup", False),
        ("cgroup/connect6", C.BPF_PROG_TYPE_CGROUP_SOCK_ADDR, C.BPF_CGROUP_INET6_CONNECT,
         SEC_ATTACHABLE, "cgroup", False),
        ("cgroup/connect_unix", C.BPF_PROG_TYPE_CGROUP_SOCK_ADDR, C.BPF_CGROUP_UNIX_CONNECT,
         SEC_ATTACHABLE, "cgroup", False),
        ("cgroup/sendmsg4", C.BPF_PROG_TYPE_CGROUP_SOCK_ADDR, C.BPF_CGROUP_UDP4_SENDMSG,
         SEC_ATTACHABLE, "cgroup", False),
        ("cgroup/sendmsg6", C.BPF_PROG_TYPE_CGROUP_SOCK_ADDR, C.BPF_CGROUP_UDP6_SENDMSG,
         SEC_ATTACHABLE, "cgroup", False),
        ("cgroup/sendmsg_unix", C.BPF_PROG_TYPE_CGROUP_SOCK_ADDR, C.BPF_CGROUP_UNIX_SENDMSG,
         SEC_ATTACHABLE, "cgroup", False),
        ("cgroup/recvmsg4", C.BPF_PROG_TYPE_CGROUP_SOCK_ADDR, C.BPF_CGROUP_UDP4_RECVMSG,
         SEC_ATTACHABLE, "cgroup", False),
        ("cgroup/recvmsg6", C.BPF_PROG_TYPE_CGROUP_SOCK_ADDR, C.BPF_CGROUP_UDP6_RECVMSG,
         SEC_ATTACHABLE, "cgroup", False),
        ("cgroup/recvmsg_unix", C.BPF_PROG_TYPE_CGROUP_SOCK_ADDR, C.BPF_CGROUP_UNIX_RECVMSG,
         SEC_ATTACHABLE, "cgroup", False),
        ("cgroup/getpeername4", C.BPF_PROG_TYPE_CGROUP_SOCK_ADDR,
         C.BPF_CGROUP_INET4_GETPEERNAME, SEC_ATTACHABLE, "cgroup", False),
        ("cgroup/getpeername6", C.BPF_PROG_TYPE_CGROUP_SOCK_ADDR,
         C.BPF_CGROUP_INET6_GETPEERNAME, SEC_ATTACHABLE, "cgroup", False),
        ("cgroup/getpeername_unix", C.BPF_PROG_TYPE_CGROUP_SOCK_ADDR,
         C.BPF_CGROUP_UNIX_GETPEERNAME, SEC_ATTACHABLE, "cgroup", False),
        ("cgroup/getsockname4", C.BPF_PROG_TYPE_CGROUP_SOCK_ADDR,
         C.BPF_CGROUP_INET4_GETSOCKNAME, SEC_ATTACHABLE, "cgroup", False),
        ("cgroup/getsockname6", C.BPF_PROG_TYPE_CGROUP_SOCK_ADDR,
         C.BPF_CGROUP_INET6_GETSOCKNAME, SEC_ATTACHABLE, "cgroup", False),
        ("cgroup/getsockname_unix", C.BPF_PROG_TYPE_CGROUP_SOCK_ADDR,
         C.BPF_CGROUP_UNIX_GETSOCKNAME, SEC_ATTACHABLE, "cgroup", False),
        ("cgroup/sysctl", C.BPF_PROG_TYPE_CGROUP_SYSCTL, C.BPF_CGROUP_SYSCTL, SEC_ATTACHABLE,
         "cgroup", False),
        ("cgroup/getsockopt", C.BPF_PROG_TYPE_CGROUP_SOCKOPT, C.BPF_CGROUP_GETSOCKOPT,
         SEC_ATTACHABLE, "cgroup", False),
        ("cgroup/setsockopt", C.BPF_PROG_TYPE_CGROUP_SOCKOPT, C.BPF_CGROUP_SETSOCKOPT,
         SEC_ATTACHABLE, "cgroup", False),
        ("cgroup/dev", C.BPF_PROG_TYPE_CGROUP_DEVICE, C.BPF_CGROUP_DEVICE, SEC_ATTACHABLE_OPT,
         "cgroup", False),
        ("struct_ops+", C.BPF_PROG_TYPE_STRUCT_OPS, 0, SEC_NONE, "struct_ops", False),
        ("struct_ops.s+", C.BPF_PROG_TYPE_STRUCT_OPS, 0, SEC_SLEEPABLE, "struct_ops", False),
        ("sk_lookup", C.BPF_PROG_TYPE_SK_LOOKUP, C.BPF_SK_LOOKUP, SEC_ATTACHABLE,
         "sk_lookup", False),
        ("netfilter", C.BPF_PROG_TYPE_NETFILTER, C.BPF_NETFILTER, SEC_NONE, "netfilter", False),
    ]


def _match(pattern: str, name: str) -> str | None:
    """Return the attach target when ``name`` matches ``pattern`` (libbpf rules), else None."""
    if pattern.endswith("/"):
        return name[len(pattern):] if name.startswith(pattern) else None
    if pattern.endswith("+"):
        stem = pattern[:-1]
        if name == stem:
            return ""
        if name.startswith(stem + "/"):
            return name[len(stem) + 1:]
        return None
    return "" if name == pattern else None


def find_section_def(sec_name: str) -> SectionDef | None:
    """Like :func:`parse_section`, but None for a name libbpf would not recognise."""
    for pattern, ptype, eat, flags, kind, is_ret in _table():
        target = _match(pattern, sec_name)
        if target is None:
            continue
        return SectionDef(
            name=sec_name, pattern=pattern, prog_type=ptype, expected_attach_type=eat,
            attach_kind=kind, attach_target=target, sleepable=bool(flags & SEC_SLEEPABLE),
            is_return=is_ret, xdp_frags=bool(flags & SEC_XDP_FRAGS),
            attach_btf=bool(flags & SEC_ATTACH_BTF), usdt=bool(flags & SEC_USDT), flags=flags,
        )
    return None


def parse_section(sec_name: str) -> SectionDef:
    """Map a program's section name to its SectionDef, or raise ObjectError."""
    sd = find_section_def(sec_name)
    if sd is None:
        raise ObjectError(f"unknown program section name {sec_name!r} "
                          "(not one of libbpf's SEC() names)")
    return sd


def known_patterns() -> list[str]:
    """Every SEC() pattern, in matching order (for docs and `object inspect`)."""
    return [row[0] for row in _table()]
