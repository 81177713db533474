// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * Multi-target probes: uprobe.multi / uretprobe.multi on the functions of a test
 * binary (tests/links/multi_target.c: function i is called with, and returns, i),
 * and kprobe.multi / kretprobe.multi on the get*id syscall wrappers (the test calls
 * those with arguments: wrappers of argument-less ones are not traceable on every
 * kernel), so a test knows the exact count per target whether one multi link or
 * one probe per target carries them. The uprobe programs count by argument and
 * return value (the same in both attach paths); the kprobe ones by function
 * address (bpf_get_func_ip, whose value the test maps to a kallsyms name), for
 * one thread only (the test's: the interpreter's other threads may make these
 * syscalls too).
 *
 * UAPI headers rather than vmlinux.h: struct pt_regs then carries no CO-RE access
 * index, so the object has no CO-RE relocations and the libbpf 1.1 oracles, which
 * cannot open an object with SEC("uprobe.multi"), have nothing of it to compare.
 */
#include <linux/bpf.h>
#include <linux/ptrace.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#define MAX_TARGETS 16

const volatile __u32 targ_tid = 0;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_TARGETS);
	__type(key, __u32);
	__type(value, __u64);
} entries SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_TARGETS);
	__type(key, __u32);
	__type(value, __u64);
} returns SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u64);
	__type(value, __u64);
} kentries SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u64);
	__type(value, __u64);
} kreturns SEC(".maps");

static __always_inline void count_slot(void *map, __u64 slot)
{
	__u32 key = slot;
	__u64 *v;

	if (slot >= MAX_TARGETS)
		return;
	v = bpf_map_lookup_elem(map, &key);
	if (v)
		__sync_fetch_and_add(v, 1);
}

static __always_inline void count_ip(void *map, __u64 ip)
{
	__u64 one = 1, *v;

	if ((__u32)bpf_get_current_pid_tgid() != targ_tid)
		return;
	v = bpf_map_lookup_elem(map, &ip);
	if (v)
		__sync_fetch_and_add(v, 1);
	else
		bpf_map_update_elem(map, &ip, &one, BPF_NOEXIST);
}

SEC("uprobe.multi")
int BPF_KPROBE(umulti_entry, int idx)
{
	count_slot(&entries, idx);
	return 0;
}

SEC("uretprobe.multi")
int BPF_KRETPROBE(umulti_return, int ret)
{
	count_slot(&returns, ret);
	return 0;
}

SEC("kprobe.multi/__x64_sys_get*id")
int kmulti_entry(struct pt_regs *ctx)
{
	count_ip(&kentries, bpf_get_func_ip(ctx));
	return 0;
}

SEC("kretprobe.multi/__x64_sys_get*id")
int kmulti_return(struct pt_regs *ctx)
{
	count_ip(&kreturns, bpf_get_func_ip(ctx));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
