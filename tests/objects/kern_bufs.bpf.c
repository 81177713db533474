// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * Kernel-matrix buffers: every getpgid(N) by targ_tgid sends the record
 * {tgid, N} through both a ring buffer and a perf event array, so the test can
 * check that each transport delivers exactly the sequence of N it called with.
 * Used by tests/kernel/.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

struct kern_event {
	__u32 tgid;
	__u32 pad;
	__u64 seq;
};

const volatile __u32 targ_tgid = 0;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024);
} ring SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} perf SEC(".maps");

SEC("tracepoint/syscalls/sys_enter_getpgid")
int kern_getpgid(struct trace_event_raw_sys_enter *ctx)
{
	struct kern_event e = {};

	e.tgid = bpf_get_current_pid_tgid() >> 32;
	if (e.tgid != targ_tgid)
		return 0;
	e.seq = ctx->args[0];
	bpf_ringbuf_output(&ring, &e, sizeof(e), 0);
	bpf_perf_event_output(ctx, &perf, BPF_F_CURRENT_CPU, &e, sizeof(e));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
