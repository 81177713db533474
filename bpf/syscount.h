/* SPDX-License-Identifier: MIT */
/* Map value of bpf/syscount.bpf.c, read by plugins/syscount.py. */
#ifndef COREFRAME_SYSCOUNT_H
#define COREFRAME_SYSCOUNT_H

#define TASK_COMM_LEN 16
#define MAX_ENTRIES 8192

/* counts: key u32 = syscall number, or tgid with count_by_process */
struct data {
	__u64 count;
	__u64 total_ns;		/* summed latency (measure_latency only) */
	char comm[TASK_COMM_LEN];	/* count_by_process only */
};

#endif /* COREFRAME_SYSCOUNT_H */
