// SPDX-License-Identifier: GPL-2.0
/* .kconfig externs (kernel version, CONFIG_* of several types, a weak unknown
 * option). (No __ksym variable: this kernel has no CONFIG_KALLSYMS_ALL.)
 *
 * Built by the repository Makefile (`make tests/objects/obj_kconfig.bpf.o`), i.e. from the
 * repository root:
 *   clang -g -O2 -target bpf -D__TARGET_ARCH_x86 -mcpu=v3 -Wall -Ibpf -Itests/objects \
 *     -c tests/objects/obj_kconfig.bpf.c -o tests/objects/obj_kconfig.bpf.o
 *   llvm-strip -g tests/objects/obj_kconfig.bpf.o
 * (plus -fdebug-prefix-map/-ffile-prefix-map of the root to "." for reproducible bytes)
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

extern int LINUX_KERNEL_VERSION __kconfig;
extern bool CONFIG_BPF_SYSCALL __kconfig;
extern int CONFIG_HZ __kconfig;
extern enum libbpf_tristate CONFIG_BPF_JIT __kconfig __weak;
extern char CONFIG_LOCALVERSION[16] __kconfig __weak;
extern int CONFIG_COREFRAME_DOES_NOT_EXIST __kconfig __weak;

__u64 seen[4];

SEC("tracepoint/syscalls/sys_enter_getppid")
int kconfig_prog(void *ctx)
{
	seen[0] = LINUX_KERNEL_VERSION;
	seen[1] = CONFIG_BPF_SYSCALL + CONFIG_HZ + CONFIG_COREFRAME_DOES_NOT_EXIST;
	seen[2] = CONFIG_BPF_JIT + CONFIG_LOCALVERSION[0];
	seen[3] = bpf_get_smp_processor_id();
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
