// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * readhist: log2 histogram of read sizes per process, thread or comm.
 *
 * Three ways in, chosen by the tool before load (it sets autoload = false on
 * the others): fexit/vfs_read where trampolines work, kretprobe/vfs_read where
 * kprobes work, and the read()/pread64() syscall exit tracepoints everywhere.
 * The tracepoints only see those two syscalls, not readv() or in-kernel reads.
 * Build with -DONLY_TP to leave the fexit/kretprobe programs out entirely.
 * Layout of the map: readhist.h.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "readhist.h"
#include "log2.h"

/* Set by the loader before load; read-only afterwards. */
const volatile pid_t targ_pid = -1;        /* tgid to trace; -1 or 0 = all */
const volatile bool targ_tgid_mode = true; /* key by tgid (true) or thread id */
const volatile bool per_comm = false;      /* key by comm; overrides targ_tgid_mode */

/* Template for new entries: a struct hist does not fit on the BPF stack. */
static const struct hist zero_hist;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, HISTS_MAX_ENTRIES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct hist_key);
	__type(value, struct hist);
} hists SEC(".maps");

/* Reads not counted because `hists` was full (per CPU; the tool sums and reports them). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} dropped SEC(".maps");

static __always_inline int record(long ret)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32, tid = (__u32)id;
	struct hist_key key = {};
	struct hist *h;
	__u64 slot;

	if (targ_pid > 0 && tgid != (__u32)targ_pid)
		return 0;
	if (per_comm)
		bpf_get_current_comm(&key.comm, sizeof(key.comm));
	else
		key.id = targ_tgid_mode ? tgid : tid;

	h = bpf_map_lookup_elem(&hists, &key);
	if (!h) {
		bpf_map_update_elem(&hists, &key, &zero_hist, BPF_NOEXIST);
		h = bpf_map_lookup_elem(&hists, &key);
		if (!h) {
			__u32 zero = 0;
			__u64 *d = bpf_map_lookup_elem(&dropped, &zero);

			if (d)
				*d += 1;
			return 0;
		}
	}
	if (!h->comm[0])
		bpf_get_current_comm(&h->comm, sizeof(h->comm));

	if (ret < 0) {
		__sync_fetch_and_add(&h->errors, 1);
		return 0;
	}
	slot = slot_of(ret);
	if (slot >= MAX_SLOTS)
		slot = MAX_SLOTS - 1;
	__sync_fetch_and_add(&h->slots[slot], 1);
	__sync_fetch_and_add(&h->reads, 1);
	__sync_fetch_and_add(&h->bytes, ret);
	return 0;
}

#ifndef ONLY_TP
SEC("fexit/vfs_read")
int BPF_PROG(vfs_read_fexit, struct file *file, char *buf, size_t count, loff_t *pos,
	     ssize_t ret)
{
	return record(ret);
}

SEC("kretprobe/vfs_read")
int BPF_KRETPROBE(vfs_read_kret, ssize_t ret)
{
	return record(ret);
}
#endif

SEC("tracepoint/syscalls/sys_exit_read")
int sys_exit_read(struct trace_event_raw_sys_exit *ctx)
{
	return record(ctx->ret);
}

SEC("tracepoint/syscalls/sys_exit_pread64")
int sys_exit_pread64(struct trace_event_raw_sys_exit *ctx)
{
	return record(ctx->ret);
}

char LICENSE[] SEC("license") = "GPL";
