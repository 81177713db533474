// SPDX-License-Identifier: GPL-2.0
/* opensnoop: one ring-buffer record per open()/openat()/openat2() with its result.
 *
 * The syscall-entry tracepoints keep the arguments by thread; the exit ones read
 * the path from user memory (still mapped: the call has not returned to user
 * space) and send the record, so each record carries what the call returned. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "opensnoop.h"

#define AT_FDCWD -100

const volatile __u32 targ_tgid = 0;
const volatile __u32 targ_tid = 0;
const volatile __u32 targ_uid = (__u32)-1;
const volatile bool targ_failed = false;
const volatile bool full_path = false;

__u64 dropped = 0;

const struct full_event *unused_full_event __attribute__((unused));

struct args {
	__u64 path;		/* user pointer */
	__s64 dfd;
	__u32 flags;
	__u32 mode;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, __u32);		/* thread id */
	__type(value, struct args);
} start SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

static __always_inline int enter(__s64 dfd, const char *path, __u32 flags, __u32 mode)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tid = id, uid = bpf_get_current_uid_gid();
	struct args a = { .path = (__u64)path, .dfd = dfd, .flags = flags, .mode = mode };

	if (targ_tgid && (id >> 32) != targ_tgid)
		return 0;
	if (targ_tid && tid != targ_tid)
		return 0;
	if (targ_uid != (__u32)-1 && uid != targ_uid)
		return 0;
	bpf_map_update_elem(&start, &tid, &a, BPF_ANY);
	return 0;
}

/* The directory a relative path is looked up from: the cwd or the dfd's file. */
static __always_inline int base_dir(struct task_struct *task, __s64 dfd, struct path *p)
{
	struct fs_struct *fs = BPF_CORE_READ(task, fs);
	struct file **fds, *file;

	if (dfd == AT_FDCWD)
		return bpf_core_read(p, sizeof(*p), &fs->pwd);
	if (dfd < 0 || dfd >= BPF_CORE_READ(task, files, fdt, max_fds))
		return -1;
	fds = BPF_CORE_READ(task, files, fdt, fd);
	if (bpf_core_read(&file, sizeof(file), &fds[dfd]) || !file)
		return -1;
	return bpf_core_read(p, sizeof(*p), &file->f_path);
}

/* Directory names from the base directory up to the root, crossing mounts the way
 * d_path() does: at a mount's root dentry, continue at its mountpoint (that slot
 * stays empty, so every iteration fills exactly slot i and the verifier sees one
 * state per iteration, not one per mix of crossings and names). */
static __always_inline void fill_dirs(struct full_event *f, __s64 dfd)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct dentry *dentry, *parent;
	struct mount *mnt, *mnt_parent;
	struct path p;
	int i;

	if (base_dir(task, dfd, &p)) {
		f->e.ev_flags |= EV_F_DIRS_UNKNOWN;
		return;
	}
	dentry = p.dentry;
	/* container_of() with the offset relocated for the running kernel */
	mnt = (void *)p.mnt - bpf_core_field_offset(struct mount, mnt);
	for (i = 0; i < MAX_DEPTH; i++) {
		f->dirs[i][0] = 0;
		parent = BPF_CORE_READ(dentry, d_parent);
		if (dentry == parent) {
			mnt_parent = BPF_CORE_READ(mnt, mnt_parent);
			if (mnt_parent == mnt)
				break;
			dentry = BPF_CORE_READ(mnt, mnt_mountpoint);
			mnt = mnt_parent;
			continue;
		}
		bpf_probe_read_kernel_str(f->dirs[i], DNAME_LEN,
					  BPF_CORE_READ(dentry, d_name.name));
		dentry = parent;
	}
	if (i == MAX_DEPTH)
		f->e.ev_flags |= EV_F_DIRS_TRUNCATED;
	f->e.depth = i;
}

static __always_inline void fill(struct event *e, __u64 id, struct args *a, long ret)
{
	e->ts = bpf_ktime_get_ns();
	e->pid = id >> 32;
	e->tid = id;
	e->uid = bpf_get_current_uid_gid();
	e->ret = ret;
	e->flags = a->flags;
	e->mode = a->mode;
	e->depth = 0;
	e->ev_flags = 0;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	bpf_probe_read_user_str(e->path, sizeof(e->path), (const void *)a->path);
}

static __always_inline int exit(long ret)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tid = id;
	struct args *a = bpf_map_lookup_elem(&start, &tid);
	struct full_event *f;
	struct event *e;

	if (!a)
		return 0;
	if (targ_failed && ret >= 0)
		goto done;
	if (full_path) {
		f = bpf_ringbuf_reserve(&events, sizeof(*f), 0);
		if (!f)
			goto drop;
		fill(&f->e, id, a, ret);
		if (f->e.path[0] != '/')
			fill_dirs(f, a->dfd);
		bpf_ringbuf_submit(f, 0);
		goto done;
	}
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e)
		goto drop;
	fill(e, id, a, ret);
	bpf_ringbuf_submit(e, 0);
	goto done;
drop:
	__sync_fetch_and_add(&dropped, 1);
done:
	bpf_map_delete_elem(&start, &tid);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_open")
int enter_open(struct syscall_trace_enter *ctx)
{
	return enter(AT_FDCWD, (const char *)ctx->args[0], ctx->args[1], ctx->args[2]);
}

SEC("tracepoint/syscalls/sys_enter_openat")
int enter_openat(struct syscall_trace_enter *ctx)
{
	return enter((int)ctx->args[0], (const char *)ctx->args[1], ctx->args[2], ctx->args[3]);
}

SEC("tracepoint/syscalls/sys_enter_openat2")
int enter_openat2(struct syscall_trace_enter *ctx)
{
	struct open_how how = {};

	bpf_probe_read_user(&how, sizeof(how), (void *)ctx->args[2]);
	return enter((int)ctx->args[0], (const char *)ctx->args[1], how.flags, how.mode);
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

SEC("tracepoint/syscalls/sys_exit_openat2")
int exit_openat2(struct syscall_trace_exit *ctx)
{
	return exit(ctx->ret);
}

char LICENSE[] SEC("license") = "GPL";
