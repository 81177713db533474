// SPDX-License-Identifier: GPL-2.0
/* Typeless __ksym externs: addresses come from /proc/kallsyms (a function
 * symbol: this kernel lists no data symbols), plus a weak one that is missing.
 *
 * Built by the repository Makefile (`make tests/objects/obj_ksym.bpf.o`), i.e. from the
 * repository root:
 *   clang -g -O2 -target bpf -D__TARGET_ARCH_x86 -mcpu=v3 -Wall -Ibpf -Itests/objects \
 *     -c tests/objects/obj_ksym.bpf.c -o tests/objects/obj_ksym.bpf.o
 *   llvm-strip -g tests/objects/obj_ksym.bpf.o
 * (plus -fdebug-prefix-map/-ffile-prefix-map of the root to "." for reproducible bytes)
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

extern const void vfs_read __ksym;
extern const void coreframe_no_such_symbol __ksym __weak;

__u64 addrs[2];

SEC("tracepoint/syscalls/sys_enter_getppid")
int ksym_prog(void *ctx)
{
	addrs[0] = (__u64)&vfs_read;
	addrs[1] = (__u64)&coreframe_no_such_symbol;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
