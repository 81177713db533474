// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * execsnoop: one event per exec() (pid, ppid, uid, comm, filename, argv) and,
 * when trace_exits is set, one per process exit (exit code, lifetime since its
 * exec()).
 *
 * Entry programs copy the arguments while the caller's memory is still the
 * old image; the exit programs learn the result and the new comm, then send
 * only the bytes used. Filters run at entry so filtered execs never reach a
 * map, and exit events exist only for processes whose exec() was reported.
 * Layout of the records: execsnoop.h.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "cgroup.h"
#include "execsnoop.h"

/* Set by the loader before load; read-only afterwards. */
const volatile __s64 targ_uid = -1;        /* -1 = every uid */
const volatile bool ignore_failed = true;  /* drop exec() calls that returned < 0 */
const volatile int max_args = DEFAULT_MAX_ARGS; /* capped at TOTAL_MAX_ARGS */
const volatile bool use_perfbuf = false;   /* send through events_perf, not events */
/*
 * Record exec() start times for handle_exit. A loader that wants no exit
 * events clears this and leaves handle_exit unloaded: then process exits cost
 * no map update, no event and no reader wake-up.
 */
const volatile bool trace_exits = true;

/* Template for new execs entries: an exec_event does not fit the 512-byte stack. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct exec_event);
} heap SEC(".maps");

/* exec() calls between syscall entry and exit, keyed by thread id. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, EXECS_MAX_ENTRIES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u32);
	__type(value, struct exec_event);
} execs SEC(".maps");

/*
 * tgid -> bpf_ktime_get_ns() at its last reported successful exec(); only
 * filled when trace_exits (a loader that clears it can make this one entry).
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, START_MAX_ENTRIES);
	__type(key, __u32);
	__type(value, __u64);
} start SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

/* max_entries 0: the loader sizes it to the number of possible CPUs. */
struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} events_perf SEC(".maps");

/* Events lost (buffer or execs table full): [DROP_EXEC], [DROP_EXIT]. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, DROP_MAX);
	__type(key, __u32);
	__type(value, __u64);
} drops SEC(".maps");

/* Keeps struct exit_event in the object's BTF for readers that decode by name. */
const volatile struct exit_event *const volatile exit_event_type = 0;

static __always_inline void count_drop(__u32 idx)
{
	__u64 *cnt = bpf_map_lookup_elem(&drops, &idx);

	if (cnt)
		__sync_fetch_and_add(cnt, 1);
}

static __always_inline long emit(void *ctx, void *data, __u64 size)
{
	if (use_perfbuf)
		return bpf_perf_event_output(ctx, &events_perf, BPF_F_CURRENT_CPU, data, size);
	return bpf_ringbuf_output(&events, data, size, 0);
}

static __always_inline bool task_filtered_out(__u32 uid)
{
	if (cgroup_excluded())
		return true;
	if (targ_uid >= 0 && (__s64)uid != targ_uid)
		return true;
	return false;
}

static __always_inline int enter_exec(const char *filename, const char *const *argv)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 uid = (__u32)bpf_get_current_uid_gid();
	__u32 tid = (__u32)id;
	__u32 zero = 0, off, flags = 0, count = 0;
	struct task_struct *task;
	struct exec_event *e;
	const char *argp;
	long ret;
	int i;

	if (task_filtered_out(uid))
		return 0;

	/*
	 * Fill the entry in place inside execs: a per-CPU scratch buffer could be
	 * reused by a preempting task on this CPU before we copied it out. The
	 * template's contents do not matter, every byte sent is written below.
	 */
	e = bpf_map_lookup_elem(&heap, &zero);
	if (!e)
		return 0;
	if (bpf_map_update_elem(&execs, &tid, e, BPF_ANY)) {
		count_drop(DROP_EXEC);
		return 0;
	}
	e = bpf_map_lookup_elem(&execs, &tid);
	if (!e)
		return 0;

	task = (struct task_struct *)bpf_get_current_task();
	e->type = EVENT_EXEC;
	e->pid = tid;
	e->tgid = id >> 32;
	e->ppid = BPF_CORE_READ(task, real_parent, tgid);
	e->uid = uid;
	e->retval = 0;
	e->ts = bpf_ktime_get_ns();

	ret = bpf_probe_read_user_str(e->data, FILENAME_LEN, filename);
	off = ret > 0 ? ret : 0;
	e->filename_len = off;

#pragma unroll
	for (i = 0; i < TOTAL_MAX_ARGS; i++) {
		if (i >= max_args)
			break;
		if (bpf_probe_read_user(&argp, sizeof(argp), &argv[i])) {
			flags |= EXEC_F_ARGS_INCOMPLETE;
			goto done;
		}
		if (!argp)
			goto done;
		/* Never true (FILENAME_LEN + i * ARGSIZE), but the verifier needs the bound. */
		if (off > EXEC_DATA_LEN - ARGSIZE)
			goto done;
		ret = bpf_probe_read_user_str(&e->data[off], ARGSIZE, argp);
		if (ret < 0) {
			flags |= EXEC_F_ARGS_INCOMPLETE;
			goto done;
		}
		off += ret;
		count++;
	}
	/* Stopped by max_args: say so when the command line goes on. */
	if (!bpf_probe_read_user(&argp, sizeof(argp), &argv[i]) && argp)
		flags |= EXEC_F_ARGS_TRUNCATED;
done:
	e->args_count = count;
	e->args_size = off - e->filename_len;
	e->flags = flags;
	return 0;
}

static __always_inline int exit_exec(void *ctx, long ret)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)id, tgid = id >> 32;
	struct exec_event *e;
	__u32 len;

	e = bpf_map_lookup_elem(&execs, &tid);
	if (!e)
		return 0;
	if (ret < 0 && ignore_failed)
		goto cleanup;

	e->retval = ret;
	bpf_get_current_comm(&e->comm, sizeof(e->comm));
	if (ret == 0 && trace_exits)
		bpf_map_update_elem(&start, &tgid, &e->ts, BPF_ANY);

	len = e->filename_len + e->args_size;
	if (len > EXEC_DATA_LEN)
		len = EXEC_DATA_LEN;
	if (emit(ctx, e, EVENT_HEADER_LEN + len))
		count_drop(DROP_EXEC);
cleanup:
	bpf_map_delete_elem(&execs, &tid);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_execve")
int handle_execve(struct trace_event_raw_sys_enter *ctx)
{
	return enter_exec((const char *)ctx->args[0], (const char *const *)ctx->args[1]);
}

SEC("tracepoint/syscalls/sys_enter_execveat")
int handle_execveat(struct trace_event_raw_sys_enter *ctx)
{
	return enter_exec((const char *)ctx->args[1], (const char *const *)ctx->args[2]);
}

SEC("tracepoint/syscalls/sys_exit_execve")
int handle_execve_exit(struct trace_event_raw_sys_exit *ctx)
{
	return exit_exec(ctx, ctx->ret);
}

SEC("tracepoint/syscalls/sys_exit_execveat")
int handle_execveat_exit(struct trace_event_raw_sys_exit *ctx)
{
	return exit_exec(ctx, ctx->ret);
}

SEC("tracepoint/sched/sched_process_exit")
int handle_exit(void *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)id, tgid = id >> 32;
	struct task_struct *task;
	struct exit_event ev = {};
	__u64 *startp, now;
	int code;

	/* Only the thread-group leader's exit ends the process we reported. */
	if (tid != tgid)
		return 0;
	startp = bpf_map_lookup_elem(&start, &tgid);
	if (!startp)
		return 0;
	now = bpf_ktime_get_ns();
	ev.duration_ns = now - *startp;
	bpf_map_delete_elem(&start, &tgid);

	task = (struct task_struct *)bpf_get_current_task();
	code = BPF_CORE_READ(task, exit_code);
	ev.type = EVENT_EXIT;
	ev.pid = tid;
	ev.tgid = tgid;
	ev.ppid = BPF_CORE_READ(task, real_parent, tgid);
	ev.uid = (__u32)bpf_get_current_uid_gid();
	ev.exit_code = (code >> 8) & 0xff;
	ev.sig = code & 0x7f;
	ev.flags = (code & 0x80) ? EXIT_F_CORE_DUMPED : 0;
	ev.ts = now;
	bpf_get_current_comm(&ev.comm, sizeof(ev.comm));
	if (emit(ctx, &ev, sizeof(ev)))
		count_drop(DROP_EXIT);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
