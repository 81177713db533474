// SPDX-License-Identifier: GPL-2.0
/* runqlat: run-queue latency, from a task's wakeup (or its preemption while still
 * runnable) to the moment sched_switch puts it on a CPU, as log2 histograms kept
 * in a hash map: one histogram (key 0), or one per process, thread or PID
 * namespace. Attached as tp_btf or raw_tp: both hand over the task pointers the
 * perf-event tracepoints only describe by pid. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "cgroup.h"
#include "schedhist.h"

#define TASK_RUNNING 0

const volatile __u32 targ_tgid = 0;
const volatile bool targ_per_process = false;
const volatile bool targ_per_thread = false;
const volatile bool targ_per_pidns = false;
const volatile bool targ_ms = false;

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
	if (cgroup_excluded())
		return 0;
	enqueue(p);
	return 0;
}

static __always_inline int on_switch(struct task_struct *prev, struct task_struct *next)
{
	struct hist *h;
	__u64 *tsp, delta;
	__u32 tid, key;

	if (cgroup_excluded())
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
	h = hist_of(&hists, &key, targ_per_process || targ_per_thread ? next : NULL);
	if (!h)
		return 0;
	hist_add(h, delta / (targ_ms ? 1000000 : 1000));
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
