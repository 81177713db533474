// SPDX-License-Identifier: GPL-2.0
/* syscount: system calls counted per number (or per process) in a hash map, with
 * their summed latency when measure_latency is set.
 *
 * The counting happens at syscall exit (the result is known there, for -x/-e);
 * the entry program runs only for latency. Each has three front ends, one per
 * attach method: tp_btf and raw_tp get the pt_regs and read the number the
 * way syscall_get_nr() does, the perf-event tracepoint gets it in its record. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "cgroup.h"
#include "syscount.h"

#ifndef __TARGET_ARCH_x86
#error "syscount reads the syscall number from x86's pt_regs (orig_ax): port syscall_nr()"
#endif

const volatile __u32 targ_tgid = 0;
const volatile bool filter_failed = false;
const volatile __s32 filter_errno = 0;
const volatile bool measure_latency = false;
const volatile bool count_by_process = false;

const struct data *unused_data __attribute__((unused));

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_ENTRIES);
	__type(key, __u32);
	__type(value, struct data);
} counts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, __u32);		/* thread id */
	__type(value, __u64);		/* entry time */
} start SEC(".maps");

/* counts that found the map full */
__u64 dropped = 0;

static __always_inline bool skip(__u64 id)
{
	if (cgroup_excluded())
		return true;
	return targ_tgid && (id >> 32) != targ_tgid;
}

static __always_inline int on_enter(void)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tid = id;
	__u64 ts;

	if (skip(id))
		return 0;
	ts = bpf_ktime_get_ns();
	bpf_map_update_elem(&start, &tid, &ts, BPF_ANY);
	return 0;
}

static __always_inline int on_exit(long nr, long ret)
{
	static const struct data zero;
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tid = id, key;
	struct data *val;
	__u64 *startp, ns = 0;

	if (nr < 0 || skip(id))		/* -1: not a system call (e.g. a restart) */
		return 0;
	if (measure_latency) {
		startp = bpf_map_lookup_elem(&start, &tid);
		if (!startp)
			return 0;
		ns = bpf_ktime_get_ns() - *startp;
		bpf_map_delete_elem(&start, &tid);
	}
	if (filter_failed && ret >= 0)
		return 0;
	if (filter_errno && ret != -filter_errno)
		return 0;
	key = count_by_process ? id >> 32 : nr;
	val = bpf_map_lookup_elem(&counts, &key);
	if (!val) {
		/* EEXIST when another CPU inserted it first: fine, look it up */
		bpf_map_update_elem(&counts, &key, &zero, BPF_NOEXIST);
		val = bpf_map_lookup_elem(&counts, &key);
		if (!val) {
			__sync_fetch_and_add(&dropped, 1);
			return 0;
		}
		if (count_by_process)
			bpf_get_current_comm(val->comm, sizeof(val->comm));
	}
	__sync_fetch_and_add(&val->count, 1);
	if (measure_latency)
		__sync_fetch_and_add(&val->total_ns, ns);
	return 0;
}

SEC("tp_btf/sys_enter")
int enter_btf(u64 *ctx)
{
	return on_enter();
}

SEC("tp_btf/sys_exit")
int exit_btf(u64 *ctx)
{
	struct pt_regs *regs = (struct pt_regs *)ctx[0];

	return on_exit(regs->orig_ax, (long)ctx[1]);
}

SEC("raw_tp/sys_enter")
int enter_raw(struct bpf_raw_tracepoint_args *ctx)
{
	return on_enter();
}

SEC("raw_tp/sys_exit")
int exit_raw(struct bpf_raw_tracepoint_args *ctx)
{
	struct pt_regs *regs = (struct pt_regs *)ctx->args[0];

	return on_exit(BPF_CORE_READ(regs, orig_ax), ctx->args[1]);
}

SEC("tracepoint/raw_syscalls/sys_enter")
int enter_tp(struct trace_event_raw_sys_enter *ctx)
{
	return on_enter();
}

SEC("tracepoint/raw_syscalls/sys_exit")
int exit_tp(struct trace_event_raw_sys_exit *ctx)
{
	return on_exit(ctx->id, ctx->ret);
}

char LICENSE[] SEC("license") = "GPL";
