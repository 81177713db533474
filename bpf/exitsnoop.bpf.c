// SPDX-License-Identifier: GPL-2.0
/* exitsnoop: one ring-buffer record per exiting process (or thread, with -T).
 *
 * sched_process_exit fires in do_exit() in the exiting task's own context, after
 * task->exit_code holds the wait(2) status, so the current task is the one to
 * report. The same handler sits behind three attach methods; the tool loads
 * the one its probe picked (tp_btf, raw_tp, then the perf-event tracepoint). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "cgroup.h"
#include "exitsnoop.h"

const volatile __u32 targ_tgid = 0;
const volatile bool failed_only = false;
const volatile bool by_thread = false;

__u64 dropped = 0;

const struct event *unused_event __attribute__((unused));

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

static __always_inline int on_exit(struct task_struct *task)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32, tid = id;
	struct event *e;
	int status;

	if (cgroup_excluded())
		return 0;
	if (targ_tgid && tgid != targ_tgid)
		return 0;
	/* a process ends when its group leader exits (the last one out) */
	if (!by_thread && tgid != tid)
		return 0;
	status = BPF_CORE_READ(task, exit_code);
	if (failed_only && status == 0)
		return 0;
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		__sync_fetch_and_add(&dropped, 1);
		return 0;
	}
	e->start_time = BPF_CORE_READ(task, start_time);
	e->exit_time = bpf_ktime_get_ns();
	e->pid = tgid;
	e->tid = tid;
	e->ppid = BPF_CORE_READ(task, real_parent, tgid);
	e->status = status;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	bpf_ringbuf_submit(e, 0);
	return 0;
}

SEC("tp_btf/sched_process_exit")
int exit_btf(u64 *ctx)
{
	return on_exit((struct task_struct *)ctx[0]);
}

SEC("raw_tp/sched_process_exit")
int exit_raw(struct bpf_raw_tracepoint_args *ctx)
{
	return on_exit((struct task_struct *)ctx->args[0]);
}

SEC("tracepoint/sched/sched_process_exit")
int exit_tp(void *ctx)
{
	return on_exit((struct task_struct *)bpf_get_current_task());
}

char LICENSE[] SEC("license") = "GPL";
