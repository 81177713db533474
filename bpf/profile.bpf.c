// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * profile: count (pid, comm, kernel stack, user stack) at every sample of a perf event.
 *
 * The tool opens one sampling perf event per CPU (a hardware PMU is not needed: the
 * software cpu-clock event fires from an hrtimer) and attaches this program to each.
 * The program runs in the interrupt that took the sample, with the interrupted
 * registers in its context, so bpf_get_stackid() walks the stack of whatever was on
 * that CPU. Counting happens here; user space reads the counts once, at the end.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "profile.h"

#define EFAULT 14

/* Set by the loader before load; read-only afterwards. */
const volatile bool kernel_stacks_only = false;
const volatile bool user_stacks_only = false;
const volatile bool include_idle = false;
const volatile bool filter_by_pid = false;
const volatile bool filter_by_tid = false;

struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(max_entries, STACK_STORAGE_SIZE);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, PERF_MAX_STACK_DEPTH * sizeof(__u64));
} stackmap SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, COUNTS_MAX_ENTRIES);
	__type(key, struct key_t);
	__type(value, __u64);
} counts SEC(".maps");

/* Processes (tgids) and threads to sample, when filtering. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_PID_NR);
	__type(key, __u32);
	__type(value, __u8);
} pids SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_TID_NR);
	__type(key, __u32);
	__type(value, __u8);
} tids SEC(".maps");

/* Samples not counted because `counts` was full (per CPU; the tool sums and reports). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} dropped SEC(".maps");

SEC("perf_event")
int do_perf_event(struct bpf_perf_event_data *ctx)
{
	static const __u64 one = 1;
	struct key_t key = {};
	__u64 id = bpf_get_current_pid_tgid();
	__u32 pid = id >> 32;
	__u32 tid = id;
	__u64 *valp;
	__u32 zero = 0;

	/* tid 0 is each CPU's idle task */
	if (!include_idle && tid == 0)
		return 0;
	if (filter_by_pid && !bpf_map_lookup_elem(&pids, &pid))
		return 0;
	if (filter_by_tid && !bpf_map_lookup_elem(&tids, &tid))
		return 0;

	key.pid = pid;
	bpf_get_current_comm(&key.name, sizeof(key.name));
	key.kern_stack_id = user_stacks_only ? -1 : bpf_get_stackid(ctx, &stackmap, 0);
	key.user_stack_id = kernel_stacks_only ? -1 :
		bpf_get_stackid(ctx, &stackmap, BPF_F_USER_STACK);

	valp = bpf_map_lookup_elem(&counts, &key);
	if (valp) {
		__sync_fetch_and_add(valp, 1);
		return 0;
	}
	/* BPF_NOEXIST: another CPU may have added the key meanwhile; count on its entry */
	if (bpf_map_update_elem(&counts, &key, &one, BPF_NOEXIST) == 0)
		return 0;
	valp = bpf_map_lookup_elem(&counts, &key);
	if (valp) {
		__sync_fetch_and_add(valp, 1);
		return 0;
	}
	valp = bpf_map_lookup_elem(&dropped, &zero);
	if (valp)
		*valp += 1;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
