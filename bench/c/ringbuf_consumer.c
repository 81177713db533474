/* libbpf ring buffer consumer: the C anchor for bench/buffers_bench.py.
 * usage: ringbuf_consumer OBJ PID PER_HIT live|drain
 *        ringbuf_consumer OBJ PID PER_HIT --hold ringbuf|perf
 * live: consume while the driver runs (at full speed or paced, the consumer does
 * not know); the clock starts at "go" and stops at the last record consumed; the
 * run ends at "stop" (after a final drain), which is only looked for when a poll
 * timed out empty, so the loop costs what a real reader's does. drain: read
 * nothing until "stop", then time draining the backlog. --hold: only load and
 * attach (for a reader elsewhere). */
#include "bench_common.h"

static unsigned long long consumed;

static int on_event(void *ctx, void *data, size_t size)
{
	consumed++;
	return 0;
}

int main(int argc, char **argv)
{
	unsigned long long t0, t_last, cpu0, polls = 0;
	struct ring_buffer *rb;
	struct cf_bench b;
	int hold, drain, n;

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
	t0 = t_last = now_ns();
	cpu0 = cpu_ns();
	if (drain) {
		cf_line_ready(1); /* stop: the driver is done */
		cpu0 = cpu_ns();
	} else {
		for (;;) {
			n = ring_buffer__poll(rb, 20);
			if (n > 0) {
				polls++;
				t_last = now_ns();
			} else if (cf_line_ready(0)) {
				break;
			}
		}
	}
	while (ring_buffer__consume(rb) > 0)
		t_last = now_ns();
	cf_report(&b, consumed, drain ? cpu_ns() - cpu0 : t_last - t0, 0, cpu_ns() - cpu0, polls);
	ring_buffer__free(rb);
	bpf_link__destroy(b.link);
	bpf_object__close(b.obj);
	return 0;
}
