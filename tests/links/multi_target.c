/*
 * Target of the uprobe.multi tests: NFUNCS functions, cf_multi_fn0 .. cf_multi_fn7,
 * each called with its own index and returning it, so a program can count calls per
 * function from the argument (entry) or the return value (exit). Function i runs
 * i + 1 times per round; argv[1] says how many rounds. Never inlined, never merged.
 */
#include <stdlib.h>

#define FN(i) \
	__attribute__((noinline, used)) int cf_multi_fn##i(volatile int idx) \
	{ __asm__ volatile("" ::: "memory"); return idx; }

FN(0) FN(1) FN(2) FN(3) FN(4) FN(5) FN(6) FN(7)

/* Not matched by cf_multi_fn*: a near miss for the glob. */
__attribute__((noinline, used)) int cf_multi_other(volatile int idx) { return idx; }

typedef int (*fn_t)(volatile int);
static fn_t fns[] = { cf_multi_fn0, cf_multi_fn1, cf_multi_fn2, cf_multi_fn3,
		      cf_multi_fn4, cf_multi_fn5, cf_multi_fn6, cf_multi_fn7 };

int main(int argc, char **argv)
{
	int rounds = argc > 1 ? atoi(argv[1]) : 1, sum = 0;

	for (int r = 0; r < rounds; r++)
		for (int i = 0; i < 8; i++)
			for (int k = 0; k <= i; k++)
				sum += fns[i](i);
	sum += cf_multi_other(15);
	return sum == -1;
}
