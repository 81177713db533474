/* A shared library with a USDT probe without semaphore (tests/usdt). */
#include <sys/sdt.h>

static const char lib_name[] = "libcftest";

int cftest_lib_tick(int i)
{
	volatile long on_stack = 1000 + i;

	STAP_PROBE3(cftest, libtick, lib_name, i, on_stack);
	return i + 1;
}
