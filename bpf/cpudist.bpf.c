// SPDX-License-Identifier: GPL-2.0
/* cpudist: how long tasks run on a CPU each time they get one (or, with
 * targ_offcpu, how long they stay off it), as log2 histograms in a hash map:
 * one (key (u32)-1), or one per process or thread. Everything happens in
 * sched_switch, attached as tp_btf or raw_tp (the task pointers are needed). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "cgroup.h"
#include "schedhist.h"

const volatile __u32 targ_tgid = 0;
const volatile bool targ_per_process = false;
const volatile bool targ_per_thread = false;
const volatile bool targ_offcpu = false;
const volatile bool targ_ms = false;

static __always_inline void store_start(struct task_struct *t, __u64 ts)
{
	__u32 tid = BPF_CORE_READ(t, pid);

	if (!tid || (targ_tgid && BPF_CORE_READ(t, tgid) != targ_tgid))
		return;
	bpf_map_update_elem(&start, &tid, &ts, BPF_ANY);
}

static __always_inline void update_hist(struct task_struct *t, __u64 ts)
{
	__u32 tid = BPF_CORE_READ(t, pid), key;
	__u64 *tsp, delta;
	struct hist *h;

	tsp = bpf_map_lookup_elem(&start, &tid);
	if (!tsp || ts < *tsp)
		return;
	delta = ts - *tsp;
	if (targ_per_process)
		key = BPF_CORE_READ(t, tgid);
	else if (targ_per_thread)
		key = tid;
	else
		key = (__u32)-1;
	h = hist_of(&hists, &key, t);
	if (h)
		hist_add(h, delta / (targ_ms ? 1000000 : 1000));
}

static __always_inline int on_switch(struct task_struct *prev, struct task_struct *next)
{
	__u64 ts = bpf_ktime_get_ns();

	if (cgroup_excluded())
		return 0;
	if (targ_offcpu) {
		store_start(prev, ts);
		update_hist(next, ts);
	} else {
		/* every slice on the CPU, however it ended (preempted or went to sleep) */
		update_hist(prev, ts);
		store_start(next, ts);
	}
	return 0;
}

SEC("tp_btf/sched_switch")
int switch_btf(u64 *ctx)
{
	return on_switch((struct task_struct *)ctx[1], (struct task_struct *)ctx[2]);
}

SEC("raw_tp/sched_switch")
int switch_raw(struct bpf_raw_tracepoint_args *ctx)
{
	return on_switch((struct task_struct *)ctx->args[1], (struct task_struct *)ctx->args[2]);
}

char LICENSE[] SEC("license") = "GPL";
