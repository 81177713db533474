// SPDX-License-Identifier: GPL-2.0
/* biolatency: block I/O latency from issue (or, with targ_queued, from insertion
 * into the I/O scheduler) to completion, as log2 histograms keyed by disk and/or
 * request flags. Attached to block_rq_insert/issue/complete as tp_btf or raw_tp
 * (the request pointer is the key that ties the three together). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "cgroup.h"
#include "hist.h"
#include "blk.h"

const volatile bool targ_per_disk = false;
const volatile bool targ_per_flag = false;
const volatile bool targ_queued = false;
const volatile bool targ_ms = false;
const volatile bool filter_dev = false;
const volatile __u32 targ_dev = 0;

const struct hist_key *unused_hist_key __attribute__((unused));

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, struct request *);
	__type(value, __u64);
} start SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, struct hist_key);
	__type(value, struct hist);
} hists SEC(".maps");

static __always_inline int rq_start(struct request *rq, bool issue)
{
	__u64 ts;

	if (cgroup_excluded())
		return 0;
	/* with -Q the insertion started the clock, when there is a scheduler to insert in */
	if (issue && targ_queued && BPF_CORE_READ(rq, q, elevator))
		return 0;
	if (filter_dev && rq_dev(rq) != targ_dev)
		return 0;
	ts = bpf_ktime_get_ns();
	bpf_map_update_elem(&start, &rq, &ts, BPF_ANY);
	return 0;
}

static __always_inline int rq_complete(struct request *rq)
{
	struct hist_key key = {};
	__u64 *tsp, ts = bpf_ktime_get_ns();
	struct hist *h;
	__s64 delta;

	if (cgroup_excluded())
		return 0;
	tsp = bpf_map_lookup_elem(&start, &rq);
	if (!tsp)
		return 0;
	delta = ts - *tsp;
	if (delta < 0)
		goto cleanup;
	if (targ_per_disk)
		key.dev = rq_dev(rq);
	if (targ_per_flag)
		key.flags = rq_flags(rq);
	h = hist_of(&hists, &key, NULL);
	if (h)
		hist_add(h, delta / (targ_ms ? 1000000 : 1000));
cleanup:
	bpf_map_delete_elem(&start, &rq);
	return 0;
}

/* block_rq_insert/issue take the request alone since 5.11 (before: queue, request) */
SEC("tp_btf/block_rq_insert")
int insert_btf(u64 *ctx)
{
	return rq_start((struct request *)ctx[0], false);
}

SEC("tp_btf/block_rq_issue")
int issue_btf(u64 *ctx)
{
	return rq_start((struct request *)ctx[0], true);
}

SEC("tp_btf/block_rq_complete")
int complete_btf(u64 *ctx)
{
	return rq_complete((struct request *)ctx[0]);
}

SEC("raw_tp/block_rq_insert")
int insert_raw(struct bpf_raw_tracepoint_args *ctx)
{
	return rq_start((struct request *)ctx->args[0], false);
}

SEC("raw_tp/block_rq_issue")
int issue_raw(struct bpf_raw_tracepoint_args *ctx)
{
	return rq_start((struct request *)ctx->args[0], true);
}

SEC("raw_tp/block_rq_complete")
int complete_raw(struct bpf_raw_tracepoint_args *ctx)
{
	return rq_complete((struct request *)ctx->args[0]);
}

char LICENSE[] SEC("license") = "GPL";
