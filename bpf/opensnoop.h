/* SPDX-License-Identifier: MIT */
/*
 * Record layout shared by bpf/opensnoop.bpf.c and plugins/opensnoop.py.
 *
 * One ring-buffer record per open()/openat()/openat2() that returned, sent from
 * the sys_exit tracepoint. Without -f (full_path unset) the record is
 * struct event; with it, struct full_event: the event followed by the names of
 * the directories the path was relative to (the cwd, or the dfd's directory),
 * innermost first, each NUL-terminated in its DNAME_LEN slot.
 */
#ifndef COREFRAME_OPENSNOOP_H
#define COREFRAME_OPENSNOOP_H

#define TASK_COMM_LEN 16
#define PATH_LEN 256		/* NAME_MAX + 1, as libbpf-tools' opensnoop keeps */
#define DNAME_LEN 256		/* one directory name, NUL included */
#define MAX_DEPTH 24		/* directory slots for -f (mount crossings leave a slot empty) */

#define EV_F_DIRS_TRUNCATED 1	/* deeper than MAX_DEPTH: the top is missing */
#define EV_F_DIRS_UNKNOWN 2	/* the directory could not be read (bad dfd) */

struct event {
	__u64 ts;		/* bpf_ktime_get_ns() at exit (CLOCK_MONOTONIC) */
	__u32 pid;		/* tgid */
	__u32 tid;
	__u32 uid;
	__s32 ret;		/* fd, or -errno */
	__u32 flags;		/* open flags (openat2: how->flags) */
	__u32 mode;
	__u32 depth;		/* directory names in full_event.dirs */
	__u32 ev_flags;		/* EV_F_* */
	char comm[TASK_COMM_LEN];
	char path[PATH_LEN];	/* as the caller passed it */
};

struct full_event {
	struct event e;
	char dirs[MAX_DEPTH][DNAME_LEN];
};

#endif /* COREFRAME_OPENSNOOP_H */
