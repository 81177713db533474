/* libbpf perf buffer consumer: the C anchor for bench/buffers_bench.py.
 * usage: perfbuf_consumer OBJ PID PER_HIT live|drain PAGE_CNT WATERMARK_BYTES
 * WATERMARK_BYTES 0 wakes on every sample (wakeup_events=1). Same control
 * protocol and timing as ringbuf_consumer. */
#include "bench_common.h"
#include <linux/perf_event.h>

static unsigned long long consumed, lost;

struct lost_rec {
	struct perf_event_header hdr;
	__u64 id, lost;
};

static enum bpf_perf_event_ret on_event(void *ctx, int cpu, struct perf_event_header *e)
{
	if (e->type == PERF_RECORD_SAMPLE)
		consumed++;
	else if (e->type == PERF_RECORD_LOST)
		lost += ((struct lost_rec *)e)->lost;
	return LIBBPF_PERF_EVENT_CONT;
}

int main(int argc, char **argv)
{
	unsigned long long t0, t_last, cpu0, before, polls = 0;
	struct perf_event_attr attr;
	struct perf_buffer *pb;
	struct cf_bench b;
	int wm, drain;

	if (argc < 7)
		return 2;
	drain = !strcmp(argv[4], "drain");
	if (cf_bench_setup(&b, argv[1], atoi(argv[2]), atoi(argv[3]), 1))
		return 1;
	wm = atoi(argv[6]);
	memset(&attr, 0, sizeof(attr));
	attr.size = sizeof(attr);
	attr.type = PERF_TYPE_SOFTWARE;
	attr.config = PERF_COUNT_SW_BPF_OUTPUT;
	attr.sample_type = PERF_SAMPLE_RAW;
	attr.sample_period = 1;
	if (wm) {
		attr.watermark = 1;
		attr.wakeup_watermark = wm;
	} else {
		attr.wakeup_events = 1;
	}
	pb = perf_buffer__new_raw(b.pb_fd, atoi(argv[5]), &attr, on_event, NULL, NULL);
	if (!pb)
		return 1;
	printf("ready\n");
	fflush(stdout);
	cf_line_ready(1);
	t0 = t_last = now_ns();
	cpu0 = cpu_ns();
	if (drain) {
		cf_line_ready(1);
		cpu0 = cpu_ns();
	} else {
		for (;;) {
			before = consumed;
			perf_buffer__poll(pb, 20);
			if (consumed != before) {
				polls++;
				t_last = now_ns();
			} else if (cf_line_ready(0)) {
				break;
			}
		}
	}
	do {
		before = consumed;
		perf_buffer__consume(pb);
		if (consumed != before)
			t_last = now_ns();
	} while (consumed != before);
	cf_report(&b, consumed, drain ? cpu_ns() - cpu0 : t_last - t0, lost, cpu_ns() - cpu0,
		  polls);
	perf_buffer__free(pb);
	bpf_link__destroy(b.link);
	bpf_object__close(b.obj);
	return 0;
}
