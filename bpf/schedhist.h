/* SPDX-License-Identifier: MIT */
/* The maps of the scheduler histogram tools (runqlat, cpudist): when each thread
 * started the interval being measured, and the histograms by a u32 key (the
 * whole system, a process, a thread or a PID namespace). */
#ifndef COREFRAME_SCHEDHIST_H
#define COREFRAME_SCHEDHIST_H

#include "hist.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, __u32);		/* tid */
	__type(value, __u64);		/* bpf_ktime_get_ns() when the interval began */
} start SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, __u32);
	__type(value, struct hist);
} hists SEC(".maps");

#endif /* COREFRAME_SCHEDHIST_H */
