/* SPDX-License-Identifier: MIT */
/* Shared by bpf/tcplife.bpf.c and bpf/tcpconnect.bpf.c: a TCP socket's identity as
 * the sock:inet_sock_set_state tracepoint reports it, read from the socket itself
 * so the tp_btf, raw_tp and tracepoint front ends share one code path. */
#ifndef COREFRAME_TCPSTATE_H
#define COREFRAME_TCPSTATE_H

#define AF_INET 2
#define AF_INET6 10
#define IPPROTO_TCP 6
#define TASK_COMM_LEN 16
#define MAX_PORTS 8

/* include/net/tcp_states.h */
enum {
	CF_TCP_ESTABLISHED = 1,
	CF_TCP_SYN_SENT = 2,
	CF_TCP_SYN_RECV = 3,
	CF_TCP_FIN_WAIT1 = 4,
	CF_TCP_CLOSE = 7,
	CF_TCP_LAST_ACK = 9,
};

struct tcp_ident {
	__u16 family;
	__u16 sport;		/* host order */
	__u16 dport;		/* host order */
	__u16 pad;
	__u8 saddr[16];		/* IPv4: the first 4 bytes */
	__u8 daddr[16];
};

static __always_inline bool tcp_ident(struct sock *sk, struct tcp_ident *id)
{
	if (BPF_CORE_READ(sk, sk_protocol) != IPPROTO_TCP)
		return false;
	id->family = BPF_CORE_READ(sk, __sk_common.skc_family);
	/* inet_sport, as the tracepoint reports it: at CLOSE, inet_put_port() has
	 * already cleared the bound port number (skc_num) */
	id->sport = __builtin_bswap16(BPF_CORE_READ((struct inet_sock *)sk, inet_sport));
	id->dport = __builtin_bswap16(BPF_CORE_READ(sk, __sk_common.skc_dport));
	if (id->family == AF_INET) {
		BPF_CORE_READ_INTO((__u32 *)id->saddr, sk, __sk_common.skc_rcv_saddr);
		BPF_CORE_READ_INTO((__u32 *)id->daddr, sk, __sk_common.skc_daddr);
	} else if (id->family == AF_INET6) {
		bpf_core_read(id->saddr, sizeof(id->saddr), &sk->__sk_common.skc_v6_rcv_saddr);
		bpf_core_read(id->daddr, sizeof(id->daddr), &sk->__sk_common.skc_v6_daddr);
	} else {
		return false;
	}
	return true;
}

static __always_inline bool port_in(const volatile __u16 *ports, __u16 port)
{
	int i;

	for (i = 0; i < MAX_PORTS; i++) {
		if (!ports[i])
			return false;
		if (ports[i] == port)
			return true;
	}
	return false;
}

#endif /* COREFRAME_TCPSTATE_H */
