/* Shared setup for the libbpf benchmark consumers (bench only, never shipped). */
#ifndef CF_BENCH_COMMON_H
#define CF_BENCH_COMMON_H
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct cf_config {
	__u32 pid, per_hit, use_perf, pad;
};

struct cf_bench {
	struct bpf_object *obj;
	struct bpf_link *link;
	int rb_fd, pb_fd, stats_fd;
};

static inline unsigned long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

/* Drain runs are timed in thread CPU time: capacity, robust to a loaded machine. */
static inline unsigned long long cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

/* Load OBJ, point the producer at PID with PER_HIT events per hit, attach it. */
static inline int cf_bench_setup(struct cf_bench *b, const char *path, __u32 pid,
				 __u32 per_hit, __u32 use_perf)
{
	struct cf_config cfg = { .pid = pid, .per_hit = per_hit, .use_perf = use_perf };
	struct bpf_program *prog;
	__u32 zero = 0;

	b->obj = bpf_object__open_file(path, NULL);
	if (!b->obj || bpf_object__load(b->obj)) {
		fprintf(stderr, "cannot load %s\n", path);
		return -1;
	}
	b->rb_fd = bpf_map__fd(bpf_object__find_map_by_name(b->obj, "rb"));
	b->pb_fd = bpf_map__fd(bpf_object__find_map_by_name(b->obj, "pb"));
	b->stats_fd = bpf_map__fd(bpf_object__find_map_by_name(b->obj, "stats"));
	if (bpf_map_update_elem(bpf_map__fd(bpf_object__find_map_by_name(b->obj, "config")),
				&zero, &cfg, BPF_ANY)) {
		perror("config");
		return -1;
	}
	prog = bpf_object__find_program_by_name(b->obj, "produce");
	b->link = prog ? bpf_program__attach(prog) : NULL;
	if (!b->link) {
		fprintf(stderr, "cannot attach produce\n");
		return -1;
	}
	return 0;
}

static inline unsigned long long cf_stat(struct cf_bench *b, __u32 idx)
{
	unsigned long long v = 0;

	bpf_map_lookup_elem(b->stats_fd, &idx, &v);
	return v;
}

/* Control lines from the orchestrator on stdin: "go" starts the clock, "stop" ends
 * the run. Returns 1 when a line arrived (consumed), 0 otherwise. */
static inline int cf_line_ready(int wait)
{
	struct pollfd p = { .fd = 0, .events = POLLIN };
	char c;

	if (poll(&p, 1, wait ? -1 : 0) <= 0)
		return 0;
	while (read(0, &c, 1) == 1 && c != '\n')
		;
	return 1;
}

/* One JSON line: records consumed, the timed span (live: "go" to the last record;
 * drain: CPU time of the drain), the producer's counters, perf lost samples, the
 * consumer's CPU time from "go" to the end and its polls that returned records. */
static inline void cf_report(struct cf_bench *b, unsigned long long consumed,
			     unsigned long long ns, unsigned long long lost,
			     unsigned long long cpu, unsigned long long polls)
{
	printf("{\"consumed\": %llu, \"ns\": %llu, \"produced\": %llu, \"drops\": %llu, "
	       "\"lost\": %llu, \"cpu_ns\": %llu, \"polls\": %llu}\n", consumed, ns,
	       cf_stat(b, 0), cf_stat(b, 1), lost, cpu, polls);
	fflush(stdout);
}

/* --hold: keep the producer attached for an external (Python) reader. */
static inline int cf_hold(struct cf_bench *b)
{
	struct bpf_map_info info;
	__u32 len = sizeof(info), rb_id, pb_id, st_id;
	char buf[16];

	memset(&info, 0, sizeof(info));
	bpf_obj_get_info_by_fd(b->rb_fd, &info, &len);
	rb_id = info.id;
	memset(&info, 0, sizeof(info));
	len = sizeof(info);
	bpf_obj_get_info_by_fd(b->pb_fd, &info, &len);
	pb_id = info.id;
	memset(&info, 0, sizeof(info));
	len = sizeof(info);
	bpf_obj_get_info_by_fd(b->stats_fd, &info, &len);
	st_id = info.id;
	printf("ids %u %u %u\n", rb_id, pb_id, st_id);
	fflush(stdout);
	while (read(0, buf, sizeof(buf)) > 0)
		;
	return 0;
}
#endif
