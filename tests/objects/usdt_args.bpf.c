// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * usdt_args: what libbpf's usdt.bpf.h returns at a USDT probe, one record per hit.
 *
 * The same object is loaded by coreframe and by libbpf in tests/usdt: both must
 * deliver the same argument count, values, strings behind the first two
 * arguments and cookie, which is only true if both filled __bpf_usdt_specs (and,
 * without BPF cookies, __bpf_usdt_ip_to_spec_id) the same way.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/usdt.bpf.h>

#define NARGS 3

struct usdt_rec {
	__u32 pid;
	__s32 arg_cnt;
	__s64 args[NARGS];
	__s32 errs[NARGS];
	__u64 cookie;
	__u64 ip;
	char str0[96];
	char str1[64];
};

const volatile __u32 targ_pid = 0;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
} events SEC(".maps");

static __always_inline int record(struct pt_regs *ctx, bool strings)
{
	__u32 pid = bpf_get_current_pid_tgid() >> 32;
	struct usdt_rec *r;
	long v;
	int i;

	if (targ_pid && pid != targ_pid)
		return 0;
	r = bpf_ringbuf_reserve(&events, sizeof(*r), 0);
	if (!r)
		return 0;
	r->pid = pid;
	r->arg_cnt = bpf_usdt_arg_cnt(ctx);
	for (i = 0; i < NARGS; i++) {
		r->errs[i] = bpf_usdt_arg(ctx, i, &v);
		r->args[i] = v;
	}
	r->cookie = bpf_usdt_cookie(ctx);
	r->ip = PT_REGS_IP(ctx);
	r->str0[0] = 0;
	r->str1[0] = 0;
	if (strings) {
		bpf_probe_read_user_str(r->str0, sizeof(r->str0), (void *)r->args[0]);
		bpf_probe_read_user_str(r->str1, sizeof(r->str1), (void *)r->args[1]);
	}
	bpf_ringbuf_submit(r, 0);
	return 0;
}

/* Attached explicitly (any binary, provider and probe). */
SEC("usdt")
int usdt_any(struct pt_regs *ctx)
{
	return record(ctx, false);
}

/* Attached explicitly to probes whose first two arguments are C strings. */
SEC("usdt")
int usdt_strings(struct pt_regs *ctx)
{
	return record(ctx, true);
}

/* Auto-attached from its section name. */
SEC("usdt//usr/bin/python3.11:python:function__entry")
int BPF_USDT(py_entry_auto, void *file, void *func, int line)
{
	return record(ctx, true);
}

/* Does nothing: attached with a probe's semaphore as its ref_ctr_offset, it only
 * makes the kernel count that semaphore up (tests turn on CPython's `line` one). */
SEC("uprobe")
int semaphore_only(struct pt_regs *ctx)
{
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
