// SPDX-License-Identifier: GPL-2.0
/* Kernel function (kfunc) calls resolved from vmlinux BTF, plus a weak kfunc
 * the kernel does not have (resolved to 0 and left unreachable).
 *
 * Built by the repository Makefile (`make tests/objects/obj_kfunc.bpf.o`), i.e. from the
 * repository root:
 *   clang -g -O2 -target bpf -D__TARGET_ARCH_x86 -mcpu=v3 -Wall -Ibpf -Itests/objects \
 *     -c tests/objects/obj_kfunc.bpf.c -o tests/objects/obj_kfunc.bpf.o
 *   llvm-strip -g tests/objects/obj_kfunc.bpf.o
 * (plus -fdebug-prefix-map/-ffile-prefix-map of the root to "." for reproducible bytes)
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

extern struct task_struct *bpf_task_acquire(struct task_struct *p) __ksym;
extern void bpf_task_release(struct task_struct *p) __ksym;
extern void coreframe_no_such_kfunc(void) __ksym __weak;

__u64 acquired;

SEC("tp_btf/sched_process_exec")
int BPF_PROG(kfunc_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	struct task_struct *t = bpf_task_acquire(p);

	if (!t)
		return 0;
	acquired++;
	bpf_task_release(t);
	if (coreframe_no_such_kfunc)
		coreframe_no_such_kfunc();
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
