/* SPDX-License-Identifier: MIT */
/* Record of bpf/exitsnoop.bpf.c, read by plugins/exitsnoop.py: one per task exit. */
#ifndef COREFRAME_EXITSNOOP_H
#define COREFRAME_EXITSNOOP_H

#define TASK_COMM_LEN 16

struct event {
	__u64 start_time;	/* task->start_time (CLOCK_MONOTONIC ns) */
	__u64 exit_time;	/* bpf_ktime_get_ns() at sched_process_exit */
	__u32 pid;		/* tgid */
	__u32 tid;
	__u32 ppid;
	__u32 status;		/* task->exit_code: wait(2) status (code << 8 | core | sig) */
	char comm[TASK_COMM_LEN];
};

#endif /* COREFRAME_EXITSNOOP_H */
