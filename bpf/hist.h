/* SPDX-License-Identifier: MIT */
/* log2 histograms shared by runqlat, cpudist and biolatency: slot i holds values
 * 2^i .. 2^(i+1)-1 (slot 0 also 0), the numbering libbpf-tools' print_log2_hist
 * reads and coreframe's ctx.hist(..., numbering="libbpf") prints. */
#ifndef COREFRAME_HIST_H
#define COREFRAME_HIST_H

#define MAX_SLOTS 26		/* 2^26 us: over a minute; longer lands in the last slot */
#define TASK_COMM_LEN 16

struct hist {
	__u32 slots[MAX_SLOTS];
	char comm[TASK_COMM_LEN];
};

static __always_inline __u32 log2_u64(__u64 v)
{
	__u32 r = 0;

	if (v >> 32) { v >>= 32; r += 32; }
	if (v >> 16) { v >>= 16; r += 16; }
	if (v >> 8) { v >>= 8; r += 8; }
	if (v >> 4) { v >>= 4; r += 4; }
	if (v >> 2) { v >>= 2; r += 2; }
	if (v >> 1) { r += 1; }
	return r;
}

static __always_inline __u32 hist_slot(__u64 v)
{
	__u32 slot = log2_u64(v);

	return slot < MAX_SLOTS ? slot : MAX_SLOTS - 1;
}

#endif /* COREFRAME_HIST_H */
