// SPDX-License-Identifier: GPL-2.0
/* Global variables of many C types, for coreframe's typed variable access.
 *
 * Built by the repository Makefile (`make tests/objects/obj_globals.bpf.o`), i.e. from the
 * repository root:
 *   clang -g -O2 -target bpf -D__TARGET_ARCH_x86 -mcpu=v3 -Wall -Ibpf -Itests/objects \
 *     -c tests/objects/obj_globals.bpf.c -o tests/objects/obj_globals.bpf.o
 *   llvm-strip -g tests/objects/obj_globals.bpf.o
 * (plus -fdebug-prefix-map/-ffile-prefix-map of the root to "." for reproducible bytes)
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

enum mode { MODE_OFF = 0, MODE_ON = 5, MODE_AUTO = 6 };

struct limits {
	int lo;
	unsigned short hi;
	char tag[6];
	unsigned int flag_a : 3;
	unsigned int flag_b : 5;
};

const volatile uid_t targ_uid = 1000;
const volatile pid_t targ_pid = -1;
const volatile bool verbose = false;
const volatile enum mode run_mode = MODE_ON;
const volatile char comm_filter[16] = "bash";
const volatile __u64 sizes[4] = { 1, 2, 4, 8 };
const volatile struct limits lim = { .lo = -3, .hi = 7, .tag = "ab", .flag_a = 2, .flag_b = 9 };
const volatile __s8 tiny = -5;
const volatile __u16 port = 8080;
const volatile __s64 big = -1234567890123LL;

int counter = 42;
__u64 total;
static __u32 hits;

const volatile int custom_ro SEC(".rodata.custom") = 77;
int custom_rw SEC(".data.custom") = 88;

SEC("tracepoint/syscalls/sys_enter_getppid")
int globals_prog(void *ctx)
{
	__u32 uid = (__u32)bpf_get_current_uid_gid();

	if (targ_uid != (uid_t)-1 && uid != targ_uid)
		return 0;
	if (verbose && run_mode == MODE_AUTO)
		counter++;
	hits++;
	total += sizes[hits & 3] + lim.lo + lim.flag_b + tiny + port + big + comm_filter[0] +
		 custom_ro + custom_rw + targ_pid;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
