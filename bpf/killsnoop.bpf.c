// SPDX-License-Identifier: GPL-2.0
/* killsnoop: one ring-buffer record per kill(), tkill() and tgkill() with its result.
 *
 * The entry tracepoint keeps target and signal by thread; the exit one adds the
 * result and sends the record. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "killsnoop.h"

const volatile __u32 targ_tgid = 0;
const volatile __u64 targ_signals = 0;	/* bit (sig - 1) set: trace sig; 0: all */
const volatile bool failed_only = false;

__u64 dropped = 0;

const struct event *unused_event __attribute__((unused));

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, __u32);
	__type(value, struct event);
} inflight SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

static __always_inline int enter(__u32 call, __s32 tgid, __s32 tpid, __s32 sig)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tid = id;
	struct event e = {};

	if (targ_tgid && (id >> 32) != targ_tgid)
		return 0;
	if (targ_signals && (sig < 1 || sig > 64 || !(targ_signals & (1ULL << (sig - 1)))))
		return 0;
	e.pid = id >> 32;
	e.tid = tid;
	e.tpid = tpid;
	e.tgid = tgid;
	e.sig = sig;
	e.call = call;
	bpf_get_current_comm(e.comm, sizeof(e.comm));
	bpf_map_update_elem(&inflight, &tid, &e, BPF_ANY);
	return 0;
}

static __always_inline int exit(long ret)
{
	__u32 tid = bpf_get_current_pid_tgid();
	struct event *e = bpf_map_lookup_elem(&inflight, &tid);

	if (!e)
		return 0;
	if (failed_only && ret >= 0)
		goto done;
	e->ret = ret;
	e->ts = bpf_ktime_get_ns();
	if (bpf_ringbuf_output(&events, e, sizeof(*e), 0))
		__sync_fetch_and_add(&dropped, 1);
done:
	bpf_map_delete_elem(&inflight, &tid);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_kill")
int kill_entry(struct syscall_trace_enter *ctx)
{
	return enter(CALL_KILL, 0, ctx->args[0], ctx->args[1]);
}

SEC("tracepoint/syscalls/sys_enter_tkill")
int tkill_entry(struct syscall_trace_enter *ctx)
{
	return enter(CALL_TKILL, 0, ctx->args[0], ctx->args[1]);
}

SEC("tracepoint/syscalls/sys_enter_tgkill")
int tgkill_entry(struct syscall_trace_enter *ctx)
{
	return enter(CALL_TGKILL, ctx->args[0], ctx->args[1], ctx->args[2]);
}

SEC("tracepoint/syscalls/sys_exit_kill")
int kill_exit(struct syscall_trace_exit *ctx)
{
	return exit(ctx->ret);
}

SEC("tracepoint/syscalls/sys_exit_tkill")
int tkill_exit(struct syscall_trace_exit *ctx)
{
	return exit(ctx->ret);
}

SEC("tracepoint/syscalls/sys_exit_tgkill")
int tgkill_exit(struct syscall_trace_exit *ctx)
{
	return exit(ctx->ret);
}

char LICENSE[] SEC("license") = "GPL";
