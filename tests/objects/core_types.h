/* Hand-written kernel type declarations for the CO-RE test objects.
 *
 * Deliberately NOT vmlinux.h: members are declared in other orders and with
 * other sizes than the running kernel's, so every access only works because
 * the loader relocates it against the target BTF.
 */
#ifndef CORE_TYPES_H
#define CORE_TYPES_H

typedef unsigned char __u8;
typedef unsigned short __u16;
typedef unsigned int __u32;
typedef unsigned long long __u64;
typedef signed char __s8;
typedef short __s16;
typedef int __s32;
typedef long long __s64;
typedef __u16 __be16;
typedef __u32 __be32;
typedef __u32 __wsum;

#define __pa __attribute__((preserve_access_index))

struct qstr {
	const unsigned char *name;	/* kernel: after an anonymous union */
	__u32 len;			/* kernel: inside union { struct { hash; len; }; } */
	__u32 hash;
} __pa;

struct dentry {
	struct qstr d_name;		/* kernel: inside an anonymous union */
	__u32 d_flags;
} __pa;

struct path {
	struct dentry *dentry;
} __pa;

struct file {
	struct path f_path;		/* kernel: inside an anonymous union */
	__u32 f_flags;
} __pa;

struct mm_struct {
	struct file *exe_file;
} __pa;

struct cgroup {
	int level;
	struct cgroup *ancestors[];	/* flexible array, as in the kernel */
} __pa;

struct css_set {
	struct cgroup *dfl_cgrp;
} __pa;

struct task_struct {
	char comm[16];
	struct task_struct *real_parent;
	int tgid;
	int pid;
	/* kernel: unsigned int; loads are narrowed by the size rewrite */
	__u64 flags;
	struct mm_struct *mm;
	struct css_set *cgroups;
	unsigned int in_execve: 1;
	unsigned int sched_migrated: 1;
	unsigned int in_iowait: 1;
	int prio;
	unsigned int __state;
} __pa;

/* A local flavor: same kernel type, only the fields this program needs. */
struct task_struct___mine {
	int pid;
	int tgid;
} __pa;

/* The pre-5.14 layout: 'state' was renamed to '__state', so it is missing here. */
struct task_struct___old {
	long state;
} __pa;

enum bpf_iter_state {
	BPF_ITER_STATE_INVALID,
};

struct bpf_reg_state {
	struct {
		int depth: 30;			/* signed bitfield */
		enum bpf_iter_state state: 2;	/* enum bitfield */
	} iter;
	int off;
} __pa;

/* Kernel values are 0..4; these local values and order deliberately differ. */
enum pid_type {
	PIDTYPE_SID = 30,
	PIDTYPE_PID = 10,
	PIDTYPE_MAX = 99,
	PIDTYPE_NOPE = 77,		/* not in the kernel */
};

/* A flavor with one enumerator, itself flavored: matches the kernel's enum. */
enum pid_type___few {
	PIDTYPE_TGID___few = 5,
};

/* Does not exist in any kernel. */
struct coreframe_no_such_type {
	int x;
} __pa;

#endif
