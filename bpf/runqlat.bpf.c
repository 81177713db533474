// SPDX-License-Identifier: GPL-2.0
/* runqlat: run-queue latency, from a task's wakeup (or its preemption while still
 * runnable) to the moment sched_switch puts it on a CPU, as log2 histograms kept
 * in a hash map: one histogram (key 0), or one per process, thread or PID
 * namespace. Attached as tp_btf or raw_tp: both hand over the task pointers the
 * perf-event tracepoints only describe by pid. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "hist.h"

#define TASK_RUNNING 0

const volatile __u32 targ_tgid = 0;
const volatile bool targ_per_process = false;
const volatile bool targ_per_thread = false;
const volatile bool targ_per_pidns = false;
const volatile bool targ_ms = false;
const volatile bool filter_cg = false;

const struct hist *unused_hist __attribute__((unused));

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, __u32);		/* tid */
	__type(value, __u64);		/* when it became runnable */
} start SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, __u32);
	__type(value, struct hist);
} hists SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_CGROUP_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} cgroup_map SEC(".maps");

__u64 dropped = 0;

/* kernels before 5.14 call it state */
struct task_struct___o {
	volatile long state;
} __attribute__((preserve_access_index));

static __always_inline long task_state(struct task_struct *t)
{
	if (bpf_core_field_exists(t->__state))
		return BPF_CORE_READ(t, __state);
	return BPF_CORE_READ((struct task_struct___o *)t, state);
}

static __always_inline __u32 pidns_of(struct task_struct *t)
{
	struct pid *pid = BPF_CORE_READ(t, thread_pid);
	unsigned int level = BPF_CORE_READ(pid, level);
	struct upid up;

	if (bpf_core_read(&up, sizeof(up), &pid->numbers[level]))
		return 0;
	return BPF_CORE_READ(up.ns, ns.inum);
}

static __always_inline void enqueue(struct task_struct *t)
{
	__u32 tgid = BPF_CORE_READ(t, tgid), tid = BPF_CORE_READ(t, pid);
	__u64 ts;

	if (!tid || (targ_tgid && tgid != targ_tgid))
		return;
	ts = bpf_ktime_get_ns();
	bpf_map_update_elem(&start, &tid, &ts, BPF_ANY);
}

static __always_inline int on_wakeup(struct task_struct *p)
{
	if (filter_cg && !bpf_current_task_under_cgroup(&cgroup_map, 0))
		return 0;
	enqueue(p);
	return 0;
}

static __always_inline int on_switch(struct task_struct *prev, struct task_struct *next)
{
	static const struct hist zero;
	struct hist *h;
	__u64 *tsp, delta;
	__u32 tid, key;

	if (filter_cg && !bpf_current_task_under_cgroup(&cgroup_map, 0))
		return 0;
	/* preempted while runnable: it waits in the run queue from now */
	if (task_state(prev) == TASK_RUNNING)
		enqueue(prev);
	tid = BPF_CORE_READ(next, pid);
	tsp = bpf_map_lookup_elem(&start, &tid);
	if (!tsp)
		return 0;
	delta = bpf_ktime_get_ns() - *tsp;
	bpf_map_delete_elem(&start, &tid);
	if ((__s64)delta < 0)
		return 0;
	if (targ_per_process)
		key = BPF_CORE_READ(next, tgid);
	else if (targ_per_thread)
		key = tid;
	else if (targ_per_pidns)
		key = pidns_of(next);
	else
		key = 0;
	h = bpf_map_lookup_elem(&hists, &key);
	if (!h) {
		bpf_map_update_elem(&hists, &key, &zero, BPF_NOEXIST);
		h = bpf_map_lookup_elem(&hists, &key);
		if (!h) {
			__sync_fetch_and_add(&dropped, 1);
			return 0;
		}
		if (targ_per_process || targ_per_thread)
			bpf_probe_read_kernel_str(h->comm, sizeof(h->comm), next->comm);
	}
	delta /= targ_ms ? 1000000 : 1000;
	__sync_fetch_and_add(&h->slots[hist_slot(delta)], 1);
	return 0;
}

SEC("tp_btf/sched_wakeup")
int wakeup_btf(u64 *ctx)
{
	return on_wakeup((struct task_struct *)ctx[0]);
}

SEC("tp_btf/sched_wakeup_new")
int wakeup_new_btf(u64 *ctx)
{
	return on_wakeup((struct task_struct *)ctx[0]);
}

SEC("tp_btf/sched_switch")
int switch_btf(u64 *ctx)
{
	return on_switch((struct task_struct *)ctx[1], (struct task_struct *)ctx[2]);
}

SEC("raw_tp/sched_wakeup")
int wakeup_raw(struct bpf_raw_tracepoint_args *ctx)
{
	return on_wakeup((struct task_struct *)ctx->args[0]);
}

SEC("raw_tp/sched_wakeup_new")
int wakeup_new_raw(struct bpf_raw_tracepoint_args *ctx)
{
	return on_wakeup((struct task_struct *)ctx->args[0]);
}

SEC("raw_tp/sched_switch")
int switch_raw(struct bpf_raw_tracepoint_args *ctx)
{
	return on_switch((struct task_struct *)ctx->args[1], (struct task_struct *)ctx->args[2]);
}

char LICENSE[] SEC("license") = "GPL";
