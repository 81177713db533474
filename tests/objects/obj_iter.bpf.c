// SPDX-License-Identifier: GPL-2.0
/* A task iterator: attach_btf_id comes from the kernel's bpf_iter_task.
 *
 * Built by the repository Makefile (`make tests/objects/obj_iter.bpf.o`), i.e. from the
 * repository root:
 *   clang -g -O2 -target bpf -D__TARGET_ARCH_x86 -mcpu=v3 -Wall -Ibpf -Itests/objects \
 *     -c tests/objects/obj_iter.bpf.c -o tests/objects/obj_iter.bpf.o
 *   llvm-strip -g tests/objects/obj_iter.bpf.o
 * (plus -fdebug-prefix-map/-ffile-prefix-map of the root to "." for reproducible bytes)
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

__u64 tasks_seen;

SEC("iter/task")
int count_tasks(struct bpf_iter__task *ctx)
{
	if (ctx->task)
		tasks_seen++;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
