/* SPDX-License-Identifier: MIT */
/* log2 histograms shared by runqlat, cpudist and biolatency: slot i holds values
 * 2^i .. 2^(i+1)-1 (slot 0 also 0), the numbering libbpf-tools' print_log2_hist
 * reads and coreframe's ctx.hist(..., numbering="libbpf") prints. Each histogram
 * also sums what it counted, the _sum of its Prometheus histogram. */
#ifndef COREFRAME_HIST_H
#define COREFRAME_HIST_H

#include "log2.h"

#define MAX_SLOTS 26		/* 2^26 us: over a minute; longer lands in the last slot */
#define TASK_COMM_LEN 16

struct hist {
	__u32 slots[MAX_SLOTS];
	char comm[TASK_COMM_LEN];
	__u64 total;		/* the sum of the values counted, in the slots' unit */
};

const struct hist *unused_hist __attribute__((unused));

/* values not counted because the map of histograms was full */
__u64 dropped = 0;

static __always_inline __u32 hist_slot(__u64 v)
{
	__u32 slot = log2_u64(v);

	return slot < MAX_SLOTS ? slot : MAX_SLOTS - 1;
}

/* The histogram under ``key`` in ``map``, made (empty, named after ``task`` unless
 * it is NULL) when it is not there yet; NULL, counted in ``dropped``, when the map
 * is full. */
static __always_inline struct hist *hist_of(void *map, const void *key,
					    struct task_struct *task)
{
	static const struct hist zero;
	struct hist *h = bpf_map_lookup_elem(map, key);

	if (h)
		return h;
	bpf_map_update_elem(map, key, &zero, BPF_NOEXIST);
	h = bpf_map_lookup_elem(map, key);
	if (!h) {
		__sync_fetch_and_add(&dropped, 1);
		return NULL;
	}
	if (task)
		bpf_probe_read_kernel_str(h->comm, sizeof(h->comm), task->comm);
	return h;
}

static __always_inline void hist_add(struct hist *h, __u64 v)
{
	__sync_fetch_and_add(&h->slots[hist_slot(v)], 1);
	__sync_fetch_and_add(&h->total, v);
}

#endif /* COREFRAME_HIST_H */
