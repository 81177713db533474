// SPDX-License-Identifier: GPL-2.0
/* tcplife: one ring-buffer record per TCP session when it closes: who, the two
 * ends, bytes each way and how long it lived (from its last state change before
 * FIN_WAIT1, ESTABLISHED for a session that got there, to CLOSE, as libbpf-tools'
 * and bcc's tcplife count it). Runs on
 * sock:inet_sock_set_state as tp_btf, raw_tp or tracepoint. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "tcpstate.h"

const volatile __u32 targ_tgid = 0;
const volatile __u16 targ_family = 0;
const volatile bool filter_sport = false;
const volatile bool filter_dport = false;
const volatile __u16 targ_sports[MAX_PORTS] = {};
const volatile __u16 targ_dports[MAX_PORTS] = {};

struct event {
	__u64 ts;		/* bpf_ktime_get_ns() at CLOSE */
	__u64 span_ns;
	__u64 rx_b;		/* tcp_sock bytes_received */
	__u64 tx_b;		/* tcp_sock bytes_acked */
	__u32 pid;
	__u32 pad;
	struct tcp_ident id;
	char comm[TASK_COMM_LEN];
};

struct who {
	__u32 pid;
	char comm[TASK_COMM_LEN];
};

const struct event *unused_event __attribute__((unused));
__u64 dropped = 0;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, struct sock *);
	__type(value, __u64);
} birth SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, struct sock *);
	__type(value, struct who);
} owners SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

static __always_inline int on_state(struct sock *sk, int newstate)
{
	struct tcp_ident id = {};
	struct who who = {}, *whop;
	struct tcp_sock *tp;
	__u64 ts, *birthp;
	struct event *e;
	__u32 pid;

	if (!tcp_ident(sk, &id))
		return 0;
	if (targ_family && id.family != targ_family)
		return 0;
	if (filter_sport && !port_in(targ_sports, id.sport))
		return 0;
	if (filter_dport && !port_in(targ_dports, id.dport))
		return 0;
	if (newstate < CF_TCP_FIN_WAIT1) {
		ts = bpf_ktime_get_ns();
		bpf_map_update_elem(&birth, &sk, &ts, BPF_ANY);
	}
	/* the process behind the session: the connect()er, or whoever closes first */
	if (newstate == CF_TCP_SYN_SENT || newstate == CF_TCP_LAST_ACK) {
		pid = bpf_get_current_pid_tgid() >> 32;
		if (targ_tgid && pid != targ_tgid)
			return 0;
		who.pid = pid;
		bpf_get_current_comm(who.comm, sizeof(who.comm));
		bpf_map_update_elem(&owners, &sk, &who, BPF_ANY);
	}
	if (newstate != CF_TCP_CLOSE)
		return 0;
	birthp = bpf_map_lookup_elem(&birth, &sk);
	if (!birthp)
		goto cleanup;
	whop = bpf_map_lookup_elem(&owners, &sk);
	pid = whop ? whop->pid : bpf_get_current_pid_tgid() >> 32;
	if (targ_tgid && pid != targ_tgid)
		goto cleanup;
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		__sync_fetch_and_add(&dropped, 1);
		goto cleanup;
	}
	ts = bpf_ktime_get_ns();
	tp = (struct tcp_sock *)sk;
	e->ts = ts;
	e->span_ns = ts - *birthp;
	e->rx_b = BPF_CORE_READ(tp, bytes_received);
	e->tx_b = BPF_CORE_READ(tp, bytes_acked);
	e->pid = pid;
	e->pad = 0;
	e->id = id;
	if (whop)
		__builtin_memcpy(e->comm, whop->comm, sizeof(e->comm));
	else
		bpf_get_current_comm(e->comm, sizeof(e->comm));
	bpf_ringbuf_submit(e, 0);
cleanup:
	bpf_map_delete_elem(&birth, &sk);
	bpf_map_delete_elem(&owners, &sk);
	return 0;
}

SEC("tp_btf/inet_sock_set_state")
int state_btf(u64 *ctx)
{
	return on_state((struct sock *)ctx[0], (int)ctx[2]);
}

SEC("raw_tp/inet_sock_set_state")
int state_raw(struct bpf_raw_tracepoint_args *ctx)
{
	return on_state((struct sock *)ctx->args[0], (int)ctx->args[2]);
}

SEC("tracepoint/sock/inet_sock_set_state")
int state_tp(struct trace_event_raw_inet_sock_set_state *ctx)
{
	return on_state((struct sock *)ctx->skaddr, ctx->newstate);
}

char LICENSE[] SEC("license") = "GPL";
