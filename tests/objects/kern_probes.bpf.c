// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * Kernel-matrix probes: one program per kernel-function attach kind, all on
 * vfs_read(). Each counts only reads of exactly magic_count bytes by targ_tgid,
 * so the test knows the exact expected count. The entry programs also record
 * file->f_inode->i_ino through CO-RE, which the test compares with fstat():
 * struct file and struct inode differ between kernels, so a wrong relocation
 * shows up as a wrong inode number. Used by tests/kernel/.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

enum { SLOT_KPROBE, SLOT_KRETPROBE, SLOT_FENTRY, SLOT_FEXIT, SLOT_COUNT };

struct kern_hit {
	__u64 hits;
	__s64 last;	/* count (entry probes) or return value (exit probes) */
	__u64 ino;	/* inode number of the file read, where the probe sees it */
};

const volatile __u32 targ_tgid = 0;
const volatile __u64 magic_count = 0;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SLOT_COUNT);
	__type(key, __u32);
	__type(value, struct kern_hit);
} hits SEC(".maps");

static __always_inline bool mine(void)
{
	return (bpf_get_current_pid_tgid() >> 32) == targ_tgid;
}

static __always_inline void note(__u32 slot, __s64 value, __u64 ino)
{
	struct kern_hit *h = bpf_map_lookup_elem(&hits, &slot);

	if (!h)
		return;
	__sync_fetch_and_add(&h->hits, 1);
	h->last = value;
	if (ino)
		h->ino = ino;
}

SEC("kprobe/vfs_read")
int BPF_KPROBE(kern_kprobe, struct file *file, char *buf, size_t count)
{
	if (mine() && count == magic_count)
		note(SLOT_KPROBE, count, BPF_CORE_READ(file, f_inode, i_ino));
	return 0;
}

SEC("kretprobe/vfs_read")
int BPF_KRETPROBE(kern_kretprobe, ssize_t ret)
{
	if (mine() && ret == magic_count)
		note(SLOT_KRETPROBE, ret, 0);
	return 0;
}

SEC("fentry/vfs_read")
int BPF_PROG(kern_fentry, struct file *file, char *buf, size_t count, loff_t *pos)
{
	if (mine() && count == magic_count)
		note(SLOT_FENTRY, count, file->f_inode->i_ino);
	return 0;
}

SEC("fexit/vfs_read")
int BPF_PROG(kern_fexit, struct file *file, char *buf, size_t count, loff_t *pos, ssize_t ret)
{
	if (mine() && count == magic_count)
		note(SLOT_FEXIT, ret, file->f_inode->i_ino);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
