/* SPDX-License-Identifier: MIT */
/* Shared by bpf/biolatency.bpf.c and bpf/biosnoop.bpf.c and their tools: request
 * flags in a fixed numbering, whatever bit this kernel gives each REQ_ flag. */
#ifndef COREFRAME_BIOLATENCY_H
#define COREFRAME_BIOLATENCY_H

#define REQ_OP_BITS 8		/* the low bits of cmd_flags: enum req_op */
#define MINORBITS 20		/* the kernel's dev_t: major << 20 | minor */

/* canonical flag bits (above the op), in libbpf-tools' print order */
enum cf_req_flag {
	CF_REQ_NOWAIT = 1 << 8,
	CF_REQ_BACKGROUND = 1 << 9,
	CF_REQ_RAHEAD = 1 << 10,
	CF_REQ_PREFLUSH = 1 << 11,
	CF_REQ_FUA = 1 << 12,
	CF_REQ_INTEGRITY = 1 << 13,
	CF_REQ_IDLE = 1 << 14,
	CF_REQ_NOMERGE = 1 << 15,
	CF_REQ_PRIO = 1 << 16,
	CF_REQ_META = 1 << 17,
	CF_REQ_SYNC = 1 << 18,
};

struct hist_key {
	__u32 dev;		/* with per-disk histograms, else 0 */
	__u32 flags;		/* op | CF_REQ_* with per-flag histograms, else 0 */
};

#endif /* COREFRAME_BIOLATENCY_H */
