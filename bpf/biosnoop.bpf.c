// SPDX-License-Identifier: GPL-2.0
/* biosnoop: one ring-buffer record per completed block I/O request: who issued it,
 * disk, flags, sector, bytes, queue time (insert to issue) and latency (issue to
 * completion).
 *
 * Who: block_io_start (6.5+) fires when the request starts being
 * accounted, in the submitter's context; on kernels without it the first of
 * insert or issue that sees the request names the task (often the submitter,
 * sometimes a kworker). Attached as tp_btf or raw_tp. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "cgroup.h"
#include "blk.h"

#define TASK_COMM_LEN 16

const volatile bool targ_queued = false;
const volatile bool filter_dev = false;
const volatile __u32 targ_dev = 0;

struct event {
	__u64 ts;		/* completion */
	__u64 delta_ns;		/* issue to completion */
	__s64 qdelta_ns;	/* insert to issue, -1 when not queued/measured */
	__u64 sector;
	__u32 len;		/* bytes at issue */
	__u32 dev;		/* major << 20 | minor */
	__u32 flags;		/* op | CF_REQ_* */
	__u32 pid;
	char comm[TASK_COMM_LEN];
};

struct stage {
	__u64 insert;
	__u64 issue;
	__u64 sector;
	__u32 len;
	__u32 pid;
	char comm[TASK_COMM_LEN];
};

const struct event *unused_event __attribute__((unused));
__u64 dropped = 0;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, struct request *);
	__type(value, struct stage);
} stages SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1024 * 1024);
} events SEC(".maps");

static __always_inline struct stage *stage_of(struct request *rq)
{
	static const struct stage zero;
	struct stage *s = bpf_map_lookup_elem(&stages, &rq);

	if (s)
		return s;
	if (cgroup_excluded())
		return NULL;
	if (filter_dev && rq_dev(rq) != targ_dev)
		return NULL;
	bpf_map_update_elem(&stages, &rq, &zero, BPF_NOEXIST);
	s = bpf_map_lookup_elem(&stages, &rq);
	if (s) {
		s->pid = bpf_get_current_pid_tgid() >> 32;
		bpf_get_current_comm(s->comm, sizeof(s->comm));
	}
	return s;
}

static __always_inline int on_start(struct request *rq)
{
	stage_of(rq);
	return 0;
}

static __always_inline int on_insert(struct request *rq)
{
	struct stage *s = stage_of(rq);

	if (s)
		s->insert = bpf_ktime_get_ns();
	return 0;
}

static __always_inline int on_issue(struct request *rq)
{
	struct stage *s = stage_of(rq);

	if (!s)
		return 0;
	s->issue = bpf_ktime_get_ns();
	s->sector = BPF_CORE_READ(rq, __sector);
	s->len = BPF_CORE_READ(rq, __data_len);
	return 0;
}

static __always_inline int on_complete(struct request *rq)
{
	struct stage *s = bpf_map_lookup_elem(&stages, &rq);
	__u64 ts = bpf_ktime_get_ns();
	struct event *e;

	if (!s)
		return 0;
	if (!s->issue)		/* issued before we attached */
		goto cleanup;
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		__sync_fetch_and_add(&dropped, 1);
		goto cleanup;
	}
	e->ts = ts;
	e->delta_ns = ts - s->issue;
	e->qdelta_ns = targ_queued && s->insert ? (__s64)(s->issue - s->insert) : -1;
	e->sector = s->sector;
	e->len = s->len;
	e->dev = rq_dev(rq);
	e->flags = rq_flags(rq);
	e->pid = s->pid;
	__builtin_memcpy(e->comm, s->comm, sizeof(e->comm));
	bpf_ringbuf_submit(e, 0);
cleanup:
	bpf_map_delete_elem(&stages, &rq);
	return 0;
}

SEC("tp_btf/block_io_start")
int start_btf(u64 *ctx)
{
	return on_start((struct request *)ctx[0]);
}

SEC("tp_btf/block_rq_insert")
int insert_btf(u64 *ctx)
{
	return on_insert((struct request *)ctx[0]);
}

SEC("tp_btf/block_rq_issue")
int issue_btf(u64 *ctx)
{
	return on_issue((struct request *)ctx[0]);
}

SEC("tp_btf/block_rq_complete")
int complete_btf(u64 *ctx)
{
	return on_complete((struct request *)ctx[0]);
}

SEC("raw_tp/block_io_start")
int start_raw(struct bpf_raw_tracepoint_args *ctx)
{
	return on_start((struct request *)ctx->args[0]);
}

SEC("raw_tp/block_rq_insert")
int insert_raw(struct bpf_raw_tracepoint_args *ctx)
{
	return on_insert((struct request *)ctx->args[0]);
}

SEC("raw_tp/block_rq_issue")
int issue_raw(struct bpf_raw_tracepoint_args *ctx)
{
	return on_issue((struct request *)ctx->args[0]);
}

SEC("raw_tp/block_rq_complete")
int complete_raw(struct bpf_raw_tracepoint_args *ctx)
{
	return on_complete((struct request *)ctx->args[0]);
}

char LICENSE[] SEC("license") = "GPL";
