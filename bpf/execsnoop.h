/* SPDX-License-Identifier: MIT */
/*
 * Event layout shared by bpf/execsnoop.bpf.c and the Python execsnoop tool.
 *
 * Every record in the `events` ring buffer (or the `events_perf` perf event
 * array when the loader sets `use_perfbuf`) starts with a 64-byte header whose
 * first u32 is the event type, so the reader can dispatch before decoding.
 * All integers are native-endian (little-endian on every BPF target we build).
 *
 * EVENT_EXEC  (struct exec_event, 64-byte header + variable tail)
 *   off  size  field
 *     0     4  type          EVENT_EXEC
 *     4     4  pid           thread id that called exec()
 *     8     4  tgid          process id (same as pid once exec() succeeded)
 *    12     4  ppid          real_parent->tgid at exec() entry
 *    16     4  uid           real uid at exec() entry
 *    20     4  retval        exec() return value (s32, 0 or -errno)
 *    24     8  ts            bpf_ktime_get_ns() at exec() entry (CLOCK_MONOTONIC)
 *    32     4  args_count    number of argv strings present in the tail
 *    36     4  flags         EXEC_F_* bits below
 *    40     4  filename_len  bytes of the filename in the tail, NUL included
 *    44     4  args_size     bytes of argv strings in the tail, NULs included
 *    48    16  comm          comm at exec() return: the new program's name,
 *                            or the caller's when exec() failed (NUL padded)
 *    64     -  data          filename '\0' then args_count strings, each '\0'
 *                            terminated; only filename_len + args_size bytes
 *                            are sent, so the record length is
 *                            64 + filename_len + args_size (ring buffer
 *                            records report exactly that; perf samples may
 *                            add up to 7 bytes of padding: use the fields).
 *   filename_len is 0 when the filename could not be read.
 *
 * EVENT_EXIT  (struct exit_event, fixed 64 bytes; only sent while the
 *             `trace_exits` rodata variable is set, the default, and the
 *             handle_exit program is loaded)
 *   off  size  field
 *     0     4  type          EVENT_EXIT
 *     4     4  pid           thread id (the thread-group leader: == tgid)
 *     8     4  tgid          process id
 *    12     4  ppid          real_parent->tgid at exit
 *    16     4  uid           real uid at exit
 *    20     4  exit_code     task->exit_code >> 8 (the status passed to exit())
 *    24     8  duration_ns   exit ts - ts of the process's last reported
 *                            successful exec() (entry timestamp)
 *    32     4  sig           task->exit_code & 0x7f (signal that killed it, or 0)
 *    36     4  flags         EXIT_F_* bits below
 *    40     8  ts            bpf_ktime_get_ns() at exit
 *    48    16  comm          task comm
 *
 * Drops: the per-CPU array `drops` (u32 key, u64 value) counts events lost
 * in the kernel: index DROP_EXEC for exec events (ring/perf buffer full, or
 * the `execs` table of in-flight exec() calls full), DROP_EXIT for exit events
 * (buffer full). Sum the per-CPU values.
 */
#ifndef COREFRAME_EXECSNOOP_H
#define COREFRAME_EXECSNOOP_H

#define TASK_COMM_LEN 16
#define ARGSIZE 128            /* longest argv string kept, NUL included */
#define DEFAULT_MAX_ARGS 20    /* default of the max_args rodata variable */
#define TOTAL_MAX_ARGS 60      /* hard cap on max_args */
#define FILENAME_LEN 512       /* longest filename kept, NUL included */
#define EXEC_DATA_LEN (FILENAME_LEN + TOTAL_MAX_ARGS * ARGSIZE)   /* 8192 */
#define EVENT_HEADER_LEN 64

#define EXECS_MAX_ENTRIES 10240   /* in-flight exec() calls tracked (per tid) */
#define START_MAX_ENTRIES 10240   /* live processes tracked for lifetime */

enum event_type {
	EVENT_EXEC = 1,
	EVENT_EXIT = 2,
};

enum exec_flags {
	/* the command line had more than max_args arguments */
	EXEC_F_ARGS_TRUNCATED = 1,
	/* reading an argument failed part-way; args holds what was read */
	EXEC_F_ARGS_INCOMPLETE = 2,
};

enum exit_flags {
	/* the process dumped core (task->exit_code & 0x80) */
	EXIT_F_CORE_DUMPED = 1,
};

enum drop_index {
	DROP_EXEC = 0,
	DROP_EXIT = 1,
	DROP_MAX = 2,
};

struct exec_event {
	__u32 type;
	__u32 pid;
	__u32 tgid;
	__u32 ppid;
	__u32 uid;
	__s32 retval;
	__u64 ts;
	__u32 args_count;
	__u32 flags;
	__u32 filename_len;
	__u32 args_size;
	char comm[TASK_COMM_LEN];
	char data[EXEC_DATA_LEN];
};

struct exit_event {
	__u32 type;
	__u32 pid;
	__u32 tgid;
	__u32 ppid;
	__u32 uid;
	__s32 exit_code;
	__u64 duration_ns;
	__u32 sig;
	__u32 flags;
	__u64 ts;
	char comm[TASK_COMM_LEN];
};

#endif /* COREFRAME_EXECSNOOP_H */
