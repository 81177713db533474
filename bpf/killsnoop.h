/* SPDX-License-Identifier: MIT */
/* Record of bpf/killsnoop.bpf.c, read by plugins/killsnoop.py: one per kill(),
 * tkill() or tgkill() that returned. */
#ifndef COREFRAME_KILLSNOOP_H
#define COREFRAME_KILLSNOOP_H

#define TASK_COMM_LEN 16

enum kill_call { CALL_KILL = 0, CALL_TKILL = 1, CALL_TGKILL = 2 };

struct event {
	__u64 ts;		/* bpf_ktime_get_ns() at the call's return */
	__u32 pid;		/* sender's tgid */
	__u32 tid;		/* sender's thread */
	__s32 tpid;		/* target: pid (kill), tid (tkill, tgkill) */
	__s32 tgid;		/* tgkill's thread group, else 0 */
	__s32 sig;
	__s32 ret;		/* 0 or -errno */
	__u32 call;		/* enum kill_call */
	__u32 pad;
	char comm[TASK_COMM_LEN];
};

#endif /* COREFRAME_KILLSNOOP_H */
