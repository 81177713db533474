/*
 * Workload for tests/tools/test_profile.py and bench/profile_bench.py.
 *
 *   profile_burn burn SECONDS [CPU]      burn_a() and burn_b() in a 2:1 ratio of equal work
 *   profile_burn syscalls SECONDS [CPU]  read() 64 KiB from /dev/zero in a loop (kernel time)
 *
 * Single-threaded and pinned to CPU (default 0), so every sample of it sees one of the
 * two functions on its user stack (or the loop in main between calls). Built with
 * -O0 -fno-omit-frame-pointer -fno-inline: the kernel walks user stacks by frame pointer.
 * Prints "ready" once pinned, then runs for SECONDS of wall-clock time.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CHUNK 200000UL  /* iterations per burn_b() call; burn_a() does twice as many */

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

__attribute__((noinline)) void burn_a(unsigned long n)
{
	volatile unsigned long x = 0;

	for (unsigned long i = 0; i < n; i++)
		x += i;
}

__attribute__((noinline)) void burn_b(unsigned long n)
{
	volatile unsigned long x = 0;

	for (unsigned long i = 0; i < n; i++)
		x += i;
}

__attribute__((noinline)) void zero_reader(int fd, char *buf, size_t len)
{
	if (read(fd, buf, len) < 0)
		exit(3);
}

int main(int argc, char **argv)
{
	static char buf[65536];
	cpu_set_t set;
	double end;
	int cpu, fd;

	if (argc < 3) {
		fprintf(stderr, "usage: %s burn|syscalls SECONDS [CPU]\n", argv[0]);
		return 2;
	}
	cpu = argc > 3 ? atoi(argv[3]) : 0;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set)) {
		perror("sched_setaffinity");
		return 1;
	}
	end = now() + atof(argv[2]);
	printf("ready\n");
	fflush(stdout);
	if (strcmp(argv[1], "burn") == 0) {
		while (now() < end) {
			burn_a(2 * CHUNK);
			burn_b(CHUNK);
		}
	} else {
		fd = open("/dev/zero", O_RDONLY);
		if (fd < 0)
			return 1;
		while (now() < end)
			zero_reader(fd, buf, sizeof(buf));
	}
	return 0;
}
