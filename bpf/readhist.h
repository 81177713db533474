/* SPDX-License-Identifier: MIT */
/*
 * Map layout shared by bpf/readhist.bpf.c and the Python readhist tool.
 *
 * Map `hists` (BPF_MAP_TYPE_HASH, BPF_F_NO_PREALLOC, HISTS_MAX_ENTRIES):
 *   key   struct hist_key  (20 bytes)
 *     off  size  field
 *       0     4  id     tgid (targ_tgid_mode) or thread id; 0 when per_comm
 *       4    16  comm   task comm when per_comm, else all zero
 *   value struct hist     (552 bytes)
 *     off  size  field
 *       0   512  slots[64]  u64 counts of successful reads by returned size
 *     512     8  reads      successful reads (return value >= 0)
 *     520     8  bytes      sum of the bytes those reads returned
 *     528     8  errors     reads that returned < 0 (not in slots)
 *     536    16  comm       comm of the task that created the entry
 *
 * Map `dropped` (BPF_MAP_TYPE_PERCPU_ARRAY, 1 entry of u64): reads that were
 * not counted because `hists` was full; sum over CPUs.
 *
 * Slots follow bcc's log2 histogram: slot 0 counts reads that returned 0;
 * slot i (1..63) counts returns r with 2^(i-1) <= r <= 2^i - 1, i.e. the
 * half-open range [2^(i-1), 2^i). So slot i = floor(log2(r)) + 1 for r > 0,
 * and the 64 slots cover every non-negative ssize_t (slot 63 ends at 2^63-1).
 * Printing like bcc: slot i is shown as "lo -> hi" with
 *   lo = 0 for i == 0, else 1 << (i - 1)
 *   hi = 0 for i == 0, else (1 << i) - 1
 *
 * Programs (the tool keeps one family and sets autoload = false on the rest):
 *   vfs_read_fexit   fexit/vfs_read                       (BPF trampolines)
 *   vfs_read_kret    kretprobe/vfs_read                   (kprobes)
 *   sys_exit_read    tracepoint/syscalls/sys_exit_read     (always available,
 *   sys_exit_pread64 tracepoint/syscalls/sys_exit_pread64   read()/pread64() only)
 */
#ifndef COREFRAME_READHIST_H
#define COREFRAME_READHIST_H

#define TASK_COMM_LEN 16
#define MAX_SLOTS 64
#define HISTS_MAX_ENTRIES 10240

struct hist_key {
	__u32 id;
	char comm[TASK_COMM_LEN];
};

struct hist {
	__u64 slots[MAX_SLOTS];
	__u64 reads;
	__u64 bytes;
	__u64 errors;
	char comm[TASK_COMM_LEN];
};

#endif /* COREFRAME_READHIST_H */
