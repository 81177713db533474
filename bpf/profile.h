/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/* profile: layout shared by profile.bpf.c and plugins/profile.py. */
#ifndef __PROFILE_H
#define __PROFILE_H

#define TASK_COMM_LEN		16
/* The kernel's own cap on a stack trace (sysctl kernel.perf_event_max_stack's default). */
#define PERF_MAX_STACK_DEPTH	127
#define STACK_STORAGE_SIZE	1024	/* unique stacks kept; the tool resizes it */
#define COUNTS_MAX_ENTRIES	10240	/* (pid, comm, stacks) keys counted */
#define MAX_PID_NR		30
#define MAX_TID_NR		30

/* One counted sample shape. A stack id is -EFAULT when that half of the stack does not
 * exist (a kernel thread has no user stack; a sample taken in user mode has no kernel
 * stack), another negative errno when it was not recorded (-EEXIST: a different stack
 * already holds its bucket in the stack map; -ENOMEM), or -1 when not collected (-U/-K). */
struct key_t {
	__u32 pid;
	__s32 kern_stack_id;
	__s32 user_stack_id;
	char name[TASK_COMM_LEN];
};

#endif /* __PROFILE_H */
