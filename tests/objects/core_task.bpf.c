// SPDX-License-Identifier: GPL-2.0
/* CO-RE relocation test object: every relocation kind clang 14 can emit,
 * against kernel types declared in another order and with other sizes.
 *
 * Built with `make tests/objects/core_task.bpf.o` from the repository root, i.e.:
 *   clang -g -O2 -target bpf -D__TARGET_ARCH_x86 -mcpu=v3 -Wall \
 *     -fdebug-prefix-map=$PWD=. -ffile-prefix-map=$PWD=. -Ibpf -Itests/objects \
 *     -c tests/objects/core_task.bpf.c -o tests/objects/core_task.bpf.o
 *   llvm-strip -g tests/objects/core_task.bpf.o
 */
#include "core_types.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

#define field_signed(field...) \
	__builtin_preserve_field_info(___bpf_field_ref(field), BPF_FIELD_SIGNED)

struct direct_out {
	__u64 flags;
	__u64 in_execve;
	int pid;
	int tgid;
	int parent_tgid;
	unsigned int state;
};

struct chain_out {
	char comm[16];
	__u64 ancestor;
	__u64 iowait;
	__s64 depth;
	__u64 iter_state;
	int parent_pid;
	int mine_pid;
	__u32 name_len;
	char comm3;
};

struct checks_out {
	char me_comm[16];
	__u64 old_state;
	int me_pid;
	int me_tgid;
	int me_ppid;
	int me_mine_pid;
	int has_old_state;
	int has_state;
	int has_task;
	int has_nosuch;
	int has_mine;
	int has_few;
	int task_size;
	int nosuch_size;
	int task_id;
	int task_local_id;
	int sid;
	int has_sid;
	int has_nope;
	int nope;
	int prio_size;
	int prio_signed;
	int flags_signed;
	int comm_size;
	int depth_signed;
	int depth_size;
	int ancestors_size;
};

/* Set by the runtime test: only this process (and its children) is recorded. */
int target_tgid = 0;

struct direct_out direct = {};
struct chain_out chain = {};
struct checks_out checks = {};

/* Direct (BTF pointer) loads: offsets and load sizes are relocated in LDX. */
SEC("tp_btf/sched_process_exec")
int BPF_PROG(exec_direct, struct task_struct *task, int old_pid, void *bprm)
{
	if (task->real_parent->tgid != target_tgid)
		return 0;
	direct.pid = task->pid;
	direct.tgid = task->tgid;
	direct.flags = task->flags;
	direct.state = task->__state;
	direct.in_execve = BPF_CORE_READ_BITFIELD(task, in_execve);
	direct.parent_tgid = task->real_parent->tgid;
	return 0;
}

/* Probe-read chains: offsets relocated in ALU adds, through anonymous
 * unions in the target, arrays, a flexible array and a local flavor.
 */
SEC("raw_tp/sys_enter")
int read_chain(void *ctx)
{
	struct task_struct *t = (void *)bpf_get_current_task();
	struct task_struct___mine *mine = (void *)t;
	struct bpf_reg_state *reg = (void *)t;

	chain.parent_pid = BPF_CORE_READ(t, real_parent, pid);
	chain.name_len = BPF_CORE_READ(t, mm, exe_file, f_path.dentry, d_name.len);
	BPF_CORE_READ_STR_INTO(&chain.comm, t, comm);
	chain.comm3 = BPF_CORE_READ(t, comm[3]);
	chain.ancestor = (__u64)BPF_CORE_READ(t, cgroups, dfl_cgrp, ancestors[1]);
	chain.mine_pid = BPF_CORE_READ(mine, pid);
	chain.iowait = BPF_CORE_READ_BITFIELD_PROBED(t, in_iowait);
	chain.depth = BPF_CORE_READ_BITFIELD_PROBED(reg, iter.depth);
	chain.iter_state = BPF_CORE_READ_BITFIELD_PROBED(reg, iter.state);
	return 0;
}

/* Existence, size, signedness, type id and enum relocations; the guarded
 * reads of things this kernel lacks are poisoned but unreachable.
 */
SEC("tracepoint/syscalls/sys_enter_getpid")
int checks_prog(void *ctx)
{
	struct task_struct *t = (void *)bpf_get_current_task();
	struct task_struct___mine *mine = (void *)t;

	if ((bpf_get_current_pid_tgid() >> 32) == target_tgid) {
		checks.me_pid = BPF_CORE_READ(t, pid);
		checks.me_tgid = BPF_CORE_READ(t, tgid);
		checks.me_ppid = BPF_CORE_READ(t, real_parent, tgid);
		checks.me_mine_pid = BPF_CORE_READ(mine, pid);
		BPF_CORE_READ_STR_INTO(&checks.me_comm, t, comm);
	}
	checks.has_old_state = bpf_core_field_exists(struct task_struct___old, state);
	if (bpf_core_field_exists(struct task_struct___old, state)) {
		struct task_struct___old *old = (void *)t;

		checks.old_state = BPF_CORE_READ(old, state);
	}
	checks.has_state = bpf_core_field_exists(t->__state);
	checks.has_task = bpf_core_type_exists(struct task_struct);
	checks.has_nosuch = bpf_core_type_exists(struct coreframe_no_such_type);
	checks.has_mine = bpf_core_type_exists(struct task_struct___mine);
	checks.has_few = bpf_core_type_exists(enum pid_type___few);
	checks.task_size = bpf_core_type_size(struct task_struct);
	checks.nosuch_size = bpf_core_type_size(struct coreframe_no_such_type);
	checks.task_id = bpf_core_type_id_kernel(struct task_struct);
	checks.task_local_id = bpf_core_type_id_local(struct task_struct);
	checks.sid = bpf_core_enum_value(enum pid_type, PIDTYPE_SID);
	checks.has_sid = bpf_core_enum_value_exists(enum pid_type, PIDTYPE_SID);
	checks.has_nope = bpf_core_enum_value_exists(enum pid_type, PIDTYPE_NOPE);
	if (bpf_core_enum_value_exists(enum pid_type, PIDTYPE_NOPE))
		checks.nope = bpf_core_enum_value(enum pid_type, PIDTYPE_NOPE);
	checks.prio_size = bpf_core_field_size(t->prio);
	checks.prio_signed = field_signed(t->prio);
	checks.flags_signed = field_signed(t->flags);
	checks.comm_size = bpf_core_field_size(t->comm);
	checks.depth_signed = field_signed(struct bpf_reg_state, iter.depth);
	checks.depth_size = bpf_core_field_size(struct bpf_reg_state, iter.depth);
	checks.ancestors_size = bpf_core_field_size(struct cgroup, ancestors[0]);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
