/*
 * A USDT target for tests/usdt, built as a PIE executable linked to sdt_lib.c's
 * shared library: probes with register, stack, constant and string arguments,
 * one with a semaphore. Prints "ready", then for each line N on stdin fires
 * cftest:tick N times (and the library's probe through cftest_lib_tick) and
 * prints "done N"; exits at EOF.
 */
#define _SDT_HAS_SEMAPHORES 1
#include <stdio.h>
#include <stdlib.h>
#include <sys/sdt.h>

unsigned short cftest_tick_semaphore __attribute__((section(".probes"), used));
unsigned short cftest_plain_semaphore __attribute__((section(".probes"), used));

int cftest_lib_tick(int i);

static const char name[] = "tick-name";

int main(void)
{
	char line[64];

	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("ready\n");
	while (fgets(line, sizeof(line), stdin)) {
		int n = atoi(line);
		for (int i = 0; i < n; i++) {
			volatile int neg = -i;

			if (cftest_tick_semaphore)
				STAP_PROBE4(cftest, tick, name, i, neg, 5);
			STAP_PROBE1(cftest, plain, (long)i * 3);
			cftest_lib_tick(i);
		}
		printf("done %d\n", n);
	}
	return 0;
}
