// SPDX-License-Identifier: GPL-2.0
/* tcpconnect: active TCP opens (connect()) seen on sock:inet_sock_set_state.
 *
 * CLOSE -> SYN_SENT happens inside connect(), in the caller's context: who
 * connected is taken there. The source port is chosen just after that
 * transition (inet_hash_connect()), so the record goes out when the socket
 * leaves SYN_SENT: ESTABLISHED, or CLOSE when the attempt failed. With do_count
 * the attempts are counted per address pair and port instead. Attached as
 * tp_btf, raw_tp or tracepoint. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "tcpstate.h"

const volatile __u32 targ_tgid = 0;
const volatile __u32 targ_uid = (__u32)-1;
const volatile bool filter_dport = false;
const volatile __u16 targ_dports[MAX_PORTS] = {};
const volatile bool do_count = false;
const volatile bool count_sport = false;

struct event {
	__u64 ts;		/* when connect() sent the SYN */
	__u64 rtt_ns;		/* SYN to leaving SYN_SENT */
	__u32 pid;
	__u32 uid;
	__u32 established;	/* 1: ESTABLISHED, 0: the attempt failed */
	__u32 pad;
	struct tcp_ident id;
	char comm[TASK_COMM_LEN];
};

struct conn_key {
	struct tcp_ident id;	/* sport 0 unless count_sport */
};

struct who {
	__u64 ts;
	__u32 pid;
	__u32 uid;
	char comm[TASK_COMM_LEN];
};

const struct event *unused_event __attribute__((unused));
const struct conn_key *unused_conn_key __attribute__((unused));
__u64 dropped = 0;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, struct sock *);
	__type(value, struct who);
} connecting SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, struct conn_key);
	__type(value, __u64);
} counts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

static __always_inline int on_state(struct sock *sk, int oldstate, int newstate)
{
	struct who who = {}, *whop;
	struct conn_key key = {};
	struct tcp_ident id = {};
	static const __u64 zero;
	struct event *e;
	__u64 id64, *cnt;

	if (newstate == CF_TCP_SYN_SENT) {
		id64 = bpf_get_current_pid_tgid();
		who.pid = id64 >> 32;
		who.uid = bpf_get_current_uid_gid();
		if (targ_tgid && who.pid != targ_tgid)
			return 0;
		if (targ_uid != (__u32)-1 && who.uid != targ_uid)
			return 0;
		if (!tcp_ident(sk, &id))
			return 0;
		if (filter_dport && !port_in(targ_dports, id.dport))
			return 0;
		who.ts = bpf_ktime_get_ns();
		bpf_get_current_comm(who.comm, sizeof(who.comm));
		bpf_map_update_elem(&connecting, &sk, &who, BPF_ANY);
		return 0;
	}
	if (oldstate != CF_TCP_SYN_SENT)
		return 0;
	whop = bpf_map_lookup_elem(&connecting, &sk);
	if (!whop)
		return 0;
	if (!tcp_ident(sk, &id))
		goto cleanup;
	if (do_count) {
		key.id = id;
		if (!count_sport)
			key.id.sport = 0;
		cnt = bpf_map_lookup_elem(&counts, &key);
		if (!cnt) {
			bpf_map_update_elem(&counts, &key, &zero, BPF_NOEXIST);
			cnt = bpf_map_lookup_elem(&counts, &key);
		}
		if (cnt)
			__sync_fetch_and_add(cnt, 1);
		else
			__sync_fetch_and_add(&dropped, 1);
		goto cleanup;
	}
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		__sync_fetch_and_add(&dropped, 1);
		goto cleanup;
	}
	e->ts = whop->ts;
	e->rtt_ns = bpf_ktime_get_ns() - whop->ts;
	e->pid = whop->pid;
	e->uid = whop->uid;
	e->established = newstate == CF_TCP_ESTABLISHED;
	e->pad = 0;
	e->id = id;
	__builtin_memcpy(e->comm, whop->comm, sizeof(e->comm));
	bpf_ringbuf_submit(e, 0);
cleanup:
	bpf_map_delete_elem(&connecting, &sk);
	return 0;
}

SEC("tp_btf/inet_sock_set_state")
int state_btf(u64 *ctx)
{
	return on_state((struct sock *)ctx[0], (int)ctx[1], (int)ctx[2]);
}

SEC("raw_tp/inet_sock_set_state")
int state_raw(struct bpf_raw_tracepoint_args *ctx)
{
	return on_state((struct sock *)ctx->args[0], (int)ctx->args[1], (int)ctx->args[2]);
}

SEC("tracepoint/sock/inet_sock_set_state")
int state_tp(struct trace_event_raw_inet_sock_set_state *ctx)
{
	return on_state((struct sock *)ctx->skaddr, ctx->oldstate, ctx->newstate);
}

char LICENSE[] SEC("license") = "GPL";
