// SPDX-License-Identifier: GPL-2.0
/* syslat: a log2 histogram of system call latency, in microseconds.
 *
 * sys_enter stamps the thread's entry time; sys_exit adds the elapsed time to one
 * histogram slot in an array map that user space reads (and clears) every interval.
 * Slot i holds [2^i, 2^(i+1)) usecs, slot 0 also 0: libbpf-tools' numbering. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#define MAX_SLOTS 27

struct hist {
	__u32 slots[MAX_SLOTS];
};

const volatile __u32 targ_tgid = 0;	/* 0: every process */
const volatile __s32 targ_nr = -1;	/* a syscall number, -1: all */

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, __u32);		/* thread id */
	__type(value, __u64);		/* entry time, ns */
} start SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct hist);
} hists SEC(".maps");

static __always_inline __u32 floor_log2(__u64 v)
{
	__u32 r = 0;

	if (v >> 32) { v >>= 32; r += 32; }
	if (v >> 16) { v >>= 16; r += 16; }
	if (v >> 8) { v >>= 8; r += 8; }
	if (v >> 4) { v >>= 4; r += 4; }
	if (v >> 2) { v >>= 2; r += 2; }
	return r + (v >> 1);
}

SEC("tracepoint/raw_syscalls/sys_enter")
int sys_enter(struct trace_event_raw_sys_enter *ctx)
{
	__u64 id = bpf_get_current_pid_tgid(), ts;
	__u32 tid = id;

	if (targ_tgid && (id >> 32) != targ_tgid)
		return 0;
	if (targ_nr >= 0 && ctx->id != targ_nr)
		return 0;
	ts = bpf_ktime_get_ns();
	bpf_map_update_elem(&start, &tid, &ts, BPF_ANY);
	return 0;
}

SEC("tracepoint/raw_syscalls/sys_exit")
int sys_exit(struct trace_event_raw_sys_exit *ctx)
{
	__u32 tid = bpf_get_current_pid_tgid(), zero = 0, slot;
	__u64 *tsp = bpf_map_lookup_elem(&start, &tid);
	struct hist *h;

	if (!tsp)
		return 0;
	slot = floor_log2((bpf_ktime_get_ns() - *tsp) / 1000);
	bpf_map_delete_elem(&start, &tid);
	if (slot >= MAX_SLOTS)
		slot = MAX_SLOTS - 1;
	h = bpf_map_lookup_elem(&hists, &zero);
	if (h)
		__sync_fetch_and_add(&h->slots[slot], 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
