/* libbpf ring buffer consumer: the C anchor for bench/buffers_bench.py.
 * usage: ringbuf_consumer OBJ PID PER_HIT live|drain
 *        ringbuf_consumer OBJ PID PER_HIT --hold ringbuf|perf
 * live: consume while the driver runs; the clock starts at "go", the run ends at
 * "stop" (after a final drain). drain: read nothing until "stop", then time
 * draining the backlog. --hold: only load and attach (for a reader elsewhere). */
#include "bench_common.h"

static unsigned long long consumed;

static int on_event(void *ctx, void *data, size_t size)
{
	consumed++;
	return 0;
}

int main(int argc, char **argv)
{
	unsigned long long t0 = 0, t1;
	struct ring_buffer *rb;
	struct cf_bench b;
	int hold, drain;

	if (argc < 5)
		return 2;
	hold = !strcmp(argv[4], "--hold");
	drain = !strcmp(argv[4], "drain");
	if (cf_bench_setup(&b, argv[1], atoi(argv[2]), atoi(argv[3]),
			   hold && argc > 5 && !strcmp(argv[5], "perf")))
		return 1;
	if (hold)
		return cf_hold(&b);
	rb = ring_buffer__new(b.rb_fd, on_event, NULL, NULL);
	if (!rb)
		return 1;
	printf("ready\n");
	fflush(stdout);
	cf_line_ready(1); /* go */
	t0 = now_ns();
	if (drain) {
		cf_line_ready(1); /* stop: the driver is done */
		t0 = cpu_ns();
	} else {
		while (!cf_line_ready(0))
			ring_buffer__poll(rb, 20);
	}
	while (ring_buffer__consume(rb) > 0)
		;
	t1 = drain ? cpu_ns() : now_ns();
	cf_report(&b, consumed, t1 - t0, 0);
	ring_buffer__free(rb);
	bpf_link__destroy(b.link);
	bpf_object__close(b.obj);
	return 0;
}
