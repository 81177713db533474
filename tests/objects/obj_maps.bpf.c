// SPDX-License-Identifier: GPL-2.0
/* BTF-defined maps: sizes from types and from __uint, ring buffer, perf array,
 * map-in-map with initial slots, prog array with initial slots. (Pinning is tested
 * with objects built in a temporary directory, so that no tool loading every
 * committed object leaves a pin in /sys/fs/bpf.)
 *
 * Built by the repository Makefile (`make tests/objects/obj_maps.bpf.o`), i.e. from the
 * repository root:
 *   clang -g -O2 -target bpf -D__TARGET_ARCH_x86 -mcpu=v3 -Wall -Ibpf -Itests/objects \
 *     -c tests/objects/obj_maps.bpf.c -o tests/objects/obj_maps.bpf.o
 *   llvm-strip -g tests/objects/obj_maps.bpf.o
 * (plus -fdebug-prefix-map/-ffile-prefix-map of the root to "." for reproducible bytes)
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

struct count_key { __u32 pid; __u32 cpu; };

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 128);
	__uint(map_flags, BPF_F_NO_COMMON_LRU);
	__type(key, struct count_key);
	__type(value, __u64);
} counts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__uint(key_size, 8);
	__uint(value_size, 12);
} sized SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 5000);
} ring SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} perf SEC(".maps");

struct inner_array {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} inner_a SEC(".maps"), inner_b SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 3);
	__type(key, __u32);
	__array(values, struct inner_array);
} outer SEC(".maps") = {
	.values = { [0] = &inner_a, [2] = &inner_b },
};

int tail_target(void *ctx);

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__array(values, int (void *));
} jumps SEC(".maps") = {
	.values = { [1] = (void *)&tail_target },
};

SEC("tracepoint/syscalls/sys_enter_getppid")
int tail_target(void *ctx)
{
	return 1;
}

SEC("tracepoint/syscalls/sys_enter_getppid")
int maps_prog(void *ctx)
{
	struct count_key k = { .pid = bpf_get_current_pid_tgid() >> 32, .cpu = bpf_get_smp_processor_id() };
	__u64 one = 1, *v;
	__u32 i = 0;
	void *inner;

	v = bpf_map_lookup_elem(&counts, &k);
	if (v)
		__sync_fetch_and_add(v, 1);
	else
		bpf_map_update_elem(&counts, &k, &one, BPF_NOEXIST);
	inner = bpf_map_lookup_elem(&outer, &i);
	if (inner) {
		v = bpf_map_lookup_elem(inner, &i);
		if (v)
			*v += 1;
	}
	v = bpf_ringbuf_reserve(&ring, 8, 0);
	if (v) {
		*v = k.pid;
		bpf_ringbuf_submit(v, 0);
	}
	bpf_perf_event_output(ctx, &perf, BPF_F_CURRENT_CPU, &one, sizeof(one));
	bpf_map_lookup_elem(&sized, &one);
	bpf_tail_call(ctx, &jumps, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
