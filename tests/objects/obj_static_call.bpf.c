// SPDX-License-Identifier: GPL-2.0
/* A static function placed in a program section and called from two programs
 * of that section (no relocation: the call offset is section-relative). libbpf
 * refuses this layout; coreframe treats the function as a subprogram.
 *
 * Built by the repository Makefile (`make tests/objects/obj_static_call.bpf.o`), i.e. from the
 * repository root:
 *   clang -g -O2 -target bpf -D__TARGET_ARCH_x86 -mcpu=v3 -Wall -Ibpf -Itests/objects \
 *     -c tests/objects/obj_static_call.bpf.c -o tests/objects/obj_static_call.bpf.o
 *   llvm-strip -g tests/objects/obj_static_call.bpf.o
 * (plus -fdebug-prefix-map/-ffile-prefix-map of the root to "." for reproducible bytes)
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#define SEC_NAME "tracepoint/syscalls/sys_enter_getppid"

__u64 out[2];

static __noinline __attribute__((section(SEC_NAME))) int twist(int x)
{
	return (x ^ 0x55) + 1;
}

SEC(SEC_NAME)
int static_a(void *ctx)
{
	out[0] = twist(1);
	return 0;
}

SEC(SEC_NAME)
int static_b(void *ctx)
{
	out[1] = twist(2);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
