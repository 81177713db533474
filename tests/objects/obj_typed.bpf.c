// SPDX-License-Identifier: GPL-2.0
/* Maps, globals and buffer records of many C types, for coreframe's values typed
 * from BTF (coreframe/btf/values.py). Every getpgid(N) by targ_tgid fills the maps
 * from N and sends one variable-length `struct event` (24 bytes + N % 64 bytes of
 * data) through a ring buffer and a perf event array, and one fixed `struct
 * small_event` through a second ring buffer.
 *
 * Built by the repository Makefile (`make tests/objects/obj_typed.bpf.o`).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

enum color { RED = 0, GREEN = 1, BLUE = 7 };

struct point {
	__s32 x;
	__s32 y;
};

struct typed_key {
	__u32 pid;
	char comm[16];
};

struct typed_value {
	__u64 count;
	__s16 delta;
	bool seen;
	enum color color;
	struct point where;
	struct point path[3];
	unsigned int a : 3;
	int b : 5;
	unsigned int c : 1;
	__u8 raw[6];
	char name[8];
	__u32 hist[4];
	union {
		__u32 as_u32;
		__u8 as_bytes[4];
	} u;
	void *ptr;
};

/* a variable-length record: only 24 + len bytes of it are sent */
struct event {
	__u32 seq;
	__u32 len;
	char comm[16];
	char data[64];
};

struct small_event {
	__u32 seq;
	__s32 neg;
	__u64 val;
};

/* referenced from nothing but this global: enough to be in the object's BTF */
struct only_ref {
	__u32 z;
};
struct only_ref *unused_only_ref __attribute__((unused));

/* defined but never used: clang leaves it out of the BTF */
struct not_in_btf {
	__u32 gone;
};

const volatile __u32 targ_tgid = 0;
const volatile enum color default_color = GREEN;
struct point origin = { .x = 3, .y = -4 };
struct point corners[2];
char label[12] = "typed";
__u64 calls;
struct small_event last_small;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, struct typed_key);
	__type(value, struct typed_value);
} by_key SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, struct typed_value);
} values SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} pcpu_counts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, struct point);
} pcpu_points SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8);
	__type(key, enum color);
	__type(value, char[8]);
} by_color SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct event);
} heap SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024);
} ring SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024);
} ring_small SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} perf SEC(".maps");

SEC("tracepoint/syscalls/sys_enter_getpgid")
int typed_getpgid(struct trace_event_raw_sys_enter *ctx)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct typed_key key = {};
	struct typed_value val = {};
	struct small_event small = {};
	struct event *e;
	struct point pt;
	__u32 zero = 0, n, len, i;
	__u64 *cnt;

	if (tgid != targ_tgid)
		return 0;
	n = (__u32)ctx->args[0];
	calls++;

	key.pid = tgid;
	bpf_get_current_comm(key.comm, sizeof(key.comm));
	val.count = n;
	val.delta = -(__s16)n;
	val.seen = true;
	val.color = BLUE;
	val.where.x = n;
	val.where.y = -(__s32)n;
	for (i = 0; i < 3; i++) {
		val.path[i].x = i;
		val.path[i].y = n;
	}
	val.a = n & 7;
	val.b = -3;
	val.c = 1;
	for (i = 0; i < 6; i++)
		val.raw[i] = i + 1;
	__builtin_memcpy(val.name, "typed", 6);
	for (i = 0; i < 4; i++)
		val.hist[i] = i * n;
	val.u.as_u32 = 0x04030201;
	val.ptr = (void *)(long)(n * 4096);
	bpf_map_update_elem(&by_key, &key, &val, BPF_ANY);
	bpf_map_update_elem(&values, &zero, &val, BPF_ANY);

	cnt = bpf_map_lookup_elem(&pcpu_counts, &zero);
	if (cnt)
		*cnt += n;
	pt.x = n;
	pt.y = -(__s32)n;
	bpf_map_update_elem(&pcpu_points, &n, &pt, BPF_ANY);

	e = bpf_map_lookup_elem(&heap, &zero);
	if (!e)
		return 0;
	len = n % 64;
	e->seq = n;
	e->len = len;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	for (i = 0; i < 64; i++)
		e->data[i] = 'a' + i % 26;
	bpf_ringbuf_output(&ring, e, 24 + (len & 63), 0);
	bpf_perf_event_output(ctx, &perf, BPF_F_CURRENT_CPU, e, 24 + (len & 63));

	small.seq = n;
	small.neg = -(__s32)n;
	small.val = (__u64)n << 33;
	bpf_ringbuf_output(&ring_small, &small, sizeof(small), 0);
	last_small = small;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
