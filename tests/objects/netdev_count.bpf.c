// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * Packet counters for `coreframe object load --attach --ifname`: an XDP program, a
 * tc program (SEC("tc"): ingress) and a tcx egress one, each counting every packet
 * it sees into its own slot of `packets` and letting it pass.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

enum { SLOT_XDP, SLOT_TC_INGRESS, SLOT_TCX_EGRESS, SLOT_COUNT };

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SLOT_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} packets SEC(".maps");

static __always_inline void count(__u32 slot)
{
	__u64 *v = bpf_map_lookup_elem(&packets, &slot);

	if (v)
		__sync_fetch_and_add(v, 1);
}

SEC("xdp")
int count_xdp(struct xdp_md *ctx)
{
	count(SLOT_XDP);
	return XDP_PASS;
}

SEC("tc")
int count_tc_ingress(struct __sk_buff *skb)
{
	count(SLOT_TC_INGRESS);
	return 0; /* TC_ACT_OK */
}

SEC("tcx/egress")
int count_tcx_egress(struct __sk_buff *skb)
{
	count(SLOT_TCX_EGRESS);
	return 0; /* TCX_PASS */
}

char LICENSE[] SEC("license") = "GPL";
