// SPDX-License-Identifier: GPL-2.0
/* bpf-to-bpf calls: .text subprograms (static and global, nested), a static
 * bpf_loop callback, and two programs in one section. (A static function inside
 * a program section, which libbpf refuses, is in obj_static_call.bpf.c.)
 *
 * Built by the repository Makefile (`make tests/objects/obj_calls.bpf.o`), i.e. from the
 * repository root:
 *   clang -g -O2 -target bpf -D__TARGET_ARCH_x86 -mcpu=v3 -Wall -Ibpf -Itests/objects \
 *     -c tests/objects/obj_calls.bpf.c -o tests/objects/obj_calls.bpf.o
 *   llvm-strip -g tests/objects/obj_calls.bpf.o
 * (plus -fdebug-prefix-map/-ffile-prefix-map of the root to "." for reproducible bytes)
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} results SEC(".maps");

const volatile __u64 scale = 3;

static __noinline __u64 leaf(__u64 x)
{
	return x * scale + 1;
}

static __noinline __u64 middle(__u64 x)
{
	__u32 k = x & 3;
	__u64 *v = bpf_map_lookup_elem(&results, &k);

	if (v)
		*v += leaf(x);
	return leaf(x + 1);
}

__noinline int global_helper(int x)
{
	return x > 10 ? x - 10 : x + 1;
}

static int loop_cb(__u32 idx, void *ctx)
{
	__u64 *acc = ctx;

	*acc += idx;
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_getppid")
int calls_a(void *ctx)
{
	__u64 acc = 0;

	bpf_loop(4, loop_cb, &acc, 0);
	return middle(acc) + global_helper(acc);
}

SEC("tracepoint/syscalls/sys_enter_getppid")
int calls_b(void *ctx)
{
	return leaf(7) ^ 0x55;
}

SEC("raw_tp/sys_enter")
int calls_c(void *ctx)
{
	return global_helper(middle(2));
}

char LICENSE[] SEC("license") = "GPL";
