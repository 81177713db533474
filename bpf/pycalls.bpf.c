// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * pycalls: calls and latency per Python function, and GC pauses, from CPython's
 * USDT probes (python:function__entry / function__return / gc__start / gc__done).
 *
 * Arguments are read with libbpf's usdt.bpf.h, so the same object works under
 * libbpf and coreframe. function__entry and function__return both carry
 * (file, function, line) as (char *, char *, int); the line at return is where
 * the function returned from, so a call is keyed by its entry's line, kept with
 * its start time per (thread, depth) until the matching return. Returns whose
 * entry was never seen (the call began before attach) are counted, not timed.
 *
 * py_tracing_on does nothing: the tool attaches it at a place that runs at most
 * once per process (the interpreter's ELF entry point) with the `line` probe's
 * semaphore as its reference counter, see plugins/pycalls.py for why.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/usdt.bpf.h>
#include "pycalls.h"
#include "log2.h"

const volatile __u32 targ_pid = 0; /* tgid to trace; 0 = every process */

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, PY_STATS_MAX_ENTRIES);
	__type(key, struct py_key);
	__type(value, struct py_stat);
} stats SEC(".maps");

/* Calls in progress, per thread; LRU so that threads that exited (or calls whose
 * return was never reported) give way instead of filling the table. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, PY_FRAMES_MAX_ENTRIES);
	__type(key, struct py_frame_key);
	__type(value, struct py_frame);
} frames SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, PY_FRAMES_MAX_ENTRIES);
	__type(key, __u32);
	__type(value, __u32);
} depths SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, PY_FRAMES_MAX_ENTRIES);
	__type(key, __u32);
	__type(value, __u64);
} gc_starts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct py_stat);
} gc_stat SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, PY_CNT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

/* struct py_key is too big for comfort on the 512-byte BPF stack */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct py_key);
} scratch SEC(".maps");

static const struct py_stat zero_stat;

static __always_inline void bump(__u32 idx)
{
	__u64 *c = bpf_map_lookup_elem(&counters, &idx);

	if (c)
		*c += 1;
}

static __always_inline void add_sample(struct py_stat *s, __u64 ns)
{
	__u64 slot = slot_of(ns);

	if (slot >= PY_MAX_SLOTS)
		slot = PY_MAX_SLOTS - 1;
	__sync_fetch_and_add(&s->count, 1);
	__sync_fetch_and_add(&s->total_ns, ns);
	__sync_fetch_and_add(&s->slots[slot], 1);
}

static __always_inline bool traced(__u32 tgid)
{
	return !targ_pid || tgid == targ_pid;
}

SEC("usdt")
int BPF_USDT(py_entry, void *file, void *func, int line)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct py_frame_key fk = { .tid = (__u32)id };
	struct py_frame fr = {};
	__u32 zero = 0, *depth;

	if (!traced(id >> 32))
		return 0;
	bump(PY_CNT_ENTRIES);
	depth = bpf_map_lookup_elem(&depths, &fk.tid);
	if (!depth) {
		bpf_map_update_elem(&depths, &fk.tid, &zero, BPF_NOEXIST);
		depth = bpf_map_lookup_elem(&depths, &fk.tid);
		if (!depth) {
			bump(PY_CNT_DROPPED);
			return 0;
		}
	}
	*depth += 1;
	fk.depth = *depth;
	fr.ts = bpf_ktime_get_ns();
	fr.func = (__u64)func;
	fr.line = line;
	if (bpf_map_update_elem(&frames, &fk, &fr, BPF_ANY))
		bump(PY_CNT_DROPPED);
	return 0;
}

SEC("usdt")
int BPF_USDT(py_return, void *file, void *func, int line)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct py_frame_key fk = { .tid = (__u32)id };
	struct py_frame *fr;
	struct py_stat *s;
	struct py_key *key;
	__u32 zero = 0, *depth;
	__u64 ns, start;
	__u32 entry_line;

	if (!traced(id >> 32))
		return 0;
	bump(PY_CNT_RETURNS);
	depth = bpf_map_lookup_elem(&depths, &fk.tid);
	if (!depth || *depth == 0) {
		bump(PY_CNT_UNMATCHED);
		return 0;
	}
	fk.depth = *depth;
	*depth -= 1;
	fr = bpf_map_lookup_elem(&frames, &fk);
	if (!fr || fr->func != (__u64)func) {
		bump(PY_CNT_UNMATCHED);
		return 0;
	}
	start = fr->ts;
	entry_line = fr->line;
	bpf_map_delete_elem(&frames, &fk);
	ns = bpf_ktime_get_ns() - start;

	key = bpf_map_lookup_elem(&scratch, &zero);
	if (!key)
		return 0;
	__builtin_memset(key, 0, sizeof(*key));
	bpf_probe_read_user_str(key->file, sizeof(key->file), file);
	bpf_probe_read_user_str(key->func, sizeof(key->func), func);
	key->line = entry_line;

	s = bpf_map_lookup_elem(&stats, key);
	if (!s) {
		bpf_map_update_elem(&stats, key, &zero_stat, BPF_NOEXIST);
		s = bpf_map_lookup_elem(&stats, key);
		if (!s) {
			bump(PY_CNT_DROPPED);
			return 0;
		}
	}
	add_sample(s, ns);
	return 0;
}

SEC("usdt")
int BPF_USDT(py_gc_start, int generation)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)id;
	__u64 now;

	if (!traced(id >> 32))
		return 0;
	now = bpf_ktime_get_ns();
	bpf_map_update_elem(&gc_starts, &tid, &now, BPF_ANY);
	return 0;
}

SEC("usdt")
int BPF_USDT(py_gc_done, long collected)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)id, zero = 0;
	struct py_stat *s;
	__u64 *start, ns;

	if (!traced(id >> 32))
		return 0;
	start = bpf_map_lookup_elem(&gc_starts, &tid);
	if (!start) {
		bump(PY_CNT_GC_UNMATCHED);
		return 0;
	}
	ns = bpf_ktime_get_ns() - *start;
	bpf_map_delete_elem(&gc_starts, &tid);
	s = bpf_map_lookup_elem(&gc_stat, &zero);
	if (s)
		add_sample(s, ns);
	return 0;
}

SEC("uprobe")
int py_tracing_on(struct pt_regs *ctx)
{
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
