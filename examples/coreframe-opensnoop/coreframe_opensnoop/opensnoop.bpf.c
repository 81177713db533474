// SPDX-License-Identifier: GPL-2.0
/* opensnoop: one ring-buffer record per open()/openat() with its result.
 *
 * The enter tracepoints remember the path pointer by thread; the exit ones read the
 * path and send the record, so a record carries what the call returned. Built by
 * this package's Makefile (and by the coreframe repository's `make objects`). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#define TASK_COMM_LEN 16
#define PATH_LEN 256

struct event {
	__u64 ts;		/* bpf_ktime_get_ns(): CLOCK_MONOTONIC */
	__u32 pid;
	__u32 uid;
	__s32 fd;		/* -1 when the call failed */
	__s32 err;		/* errno, 0 on success */
	char comm[TASK_COMM_LEN];
	char path[PATH_LEN];
};

/* puts struct event in the object's BTF, where Python finds it by name */
const struct event *unused_event __attribute__((unused));

/* set from Python before load; the verifier drops the checks that stay off */
const volatile __u32 targ_tgid = 0;
const volatile __u32 targ_uid = (__u32)-1;
const volatile bool targ_failed = false;

__u64 dropped = 0;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, __u32);		/* thread id */
	__type(value, __u64);		/* user pointer to the path */
} paths SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

static __always_inline int enter(const char *path)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tid = id, uid = bpf_get_current_uid_gid();
	__u64 ptr = (__u64)path;

	if (targ_tgid && (id >> 32) != targ_tgid)
		return 0;
	if (targ_uid != (__u32)-1 && uid != targ_uid)
		return 0;
	bpf_map_update_elem(&paths, &tid, &ptr, BPF_ANY);
	return 0;
}

static __always_inline int exit(long ret)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tid = id;
	__u64 *ptr = bpf_map_lookup_elem(&paths, &tid);
	struct event *e;

	if (!ptr)
		return 0;
	if (targ_failed && ret >= 0)
		goto done;
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		__sync_fetch_and_add(&dropped, 1);
		goto done;
	}
	e->ts = bpf_ktime_get_ns();
	e->pid = id >> 32;
	e->uid = bpf_get_current_uid_gid();
	e->fd = ret >= 0 ? ret : -1;
	e->err = ret >= 0 ? 0 : -ret;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	bpf_probe_read_user_str(e->path, sizeof(e->path), (const void *)*ptr);
	bpf_ringbuf_submit(e, 0);
done:
	bpf_map_delete_elem(&paths, &tid);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_open")
int enter_open(struct syscall_trace_enter *ctx)
{
	return enter((const char *)ctx->args[0]);
}

SEC("tracepoint/syscalls/sys_enter_openat")
int enter_openat(struct syscall_trace_enter *ctx)
{
	return enter((const char *)ctx->args[1]);
}

SEC("tracepoint/syscalls/sys_exit_open")
int exit_open(struct syscall_trace_exit *ctx)
{
	return exit(ctx->ret);
}

SEC("tracepoint/syscalls/sys_exit_openat")
int exit_openat(struct syscall_trace_exit *ctx)
{
	return exit(ctx->ret);
}

char LICENSE[] SEC("license") = "GPL";
