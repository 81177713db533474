// SPDX-License-Identifier: MIT
/* Count system calls per process on the raw sys_enter tracepoint.
 * Built by the top-level Makefile (`make objects`) into objects/syscount.bpf.o. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

struct counter {
	__u64 calls;
	char comm[16];
};

const volatile __u32 targ_tgid = 0;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct counter);
} counts SEC(".maps");

SEC("raw_tp/sys_enter")
int count_sys_enter(void *ctx)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct counter *c, zero = {};

	if (targ_tgid && tgid != targ_tgid)
		return 0;
	c = bpf_map_lookup_elem(&counts, &tgid);
	if (!c) {
		bpf_get_current_comm(zero.comm, sizeof(zero.comm));
		bpf_map_update_elem(&counts, &tgid, &zero, BPF_NOEXIST);
		c = bpf_map_lookup_elem(&counts, &tgid);
		if (!c)
			return 0;
	}
	__sync_fetch_and_add(&c->calls, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
