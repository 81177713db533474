// SPDX-License-Identifier: GPL-2.0
/* Buffer benchmark / test producer: on every getppid() of config.pid, emit
 * config.per_hit fixed-size events into the ring buffer or the perf buffer.
 * stats[0] counts events offered, stats[1] failed reserves/outputs (drops). */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define MAX_PER_HIT 64

struct config {
	__u32 pid;
	__u32 per_hit;
	__u32 use_perf;
	__u32 pad;
};

struct event {
	__u64 seq;
	__u32 pid;
	__u32 cpu;
	__u64 a;
	__u64 b;
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 22);
} rb SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} pb SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct config);
} config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

SEC("tracepoint/syscalls/sys_enter_getppid")
int produce(void *ctx)
{
	__u32 zero = 0, one = 1, i, n;
	struct config *cfg = bpf_map_lookup_elem(&config, &zero);
	__u64 *offered = bpf_map_lookup_elem(&stats, &zero);
	__u64 *drops = bpf_map_lookup_elem(&stats, &one);
	__u32 pid = bpf_get_current_pid_tgid() >> 32;
	__u32 cpu = bpf_get_smp_processor_id();

	if (!cfg || !offered || !drops || pid != cfg->pid)
		return 0;
	n = cfg->per_hit;
	if (n > MAX_PER_HIT)
		n = MAX_PER_HIT;
	__sync_fetch_and_add(offered, n);
	if (cfg->use_perf) {
		struct event e = { .pid = pid, .cpu = cpu, .a = 1, .b = 2 };

		for (i = 0; i < n; i++) {
			e.seq = i;
			if (bpf_perf_event_output(ctx, &pb, BPF_F_CURRENT_CPU, &e, sizeof(e)))
				__sync_fetch_and_add(drops, 1);
		}
		return 0;
	}
	for (i = 0; i < n; i++) {
		struct event *e = bpf_ringbuf_reserve(&rb, sizeof(*e), 0);

		if (!e) {
			__sync_fetch_and_add(drops, 1);
			continue;
		}
		e->seq = i;
		e->pid = pid;
		e->cpu = cpu;
		e->a = 1;
		e->b = 2;
		bpf_ringbuf_submit(e, 0);
	}
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
