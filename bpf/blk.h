/* SPDX-License-Identifier: MIT */
/* Reading struct request across kernels, shared by biolatency and biosnoop. */
#ifndef COREFRAME_BLK_H
#define COREFRAME_BLK_H

#include "biolatency.h"

/* before 5.16 the disk hung off the request itself */
struct request___old {
	struct gendisk *rq_disk;
} __attribute__((preserve_access_index));

static __always_inline struct gendisk *rq_disk(struct request *rq)
{
	if (bpf_core_field_exists(((struct request___old *)rq)->rq_disk))
		return BPF_CORE_READ((struct request___old *)rq, rq_disk);
	return BPF_CORE_READ(rq, q, disk);
}

static __always_inline __u32 rq_dev(struct request *rq)
{
	struct gendisk *disk = rq_disk(rq);

	if (!disk)
		return 0;
	return (BPF_CORE_READ(disk, major) << MINORBITS) | BPF_CORE_READ(disk, first_minor);
}

#define CF_FLAG(name) \
	if (bpf_core_enum_value_exists(enum req_flag_bits, __REQ_##name) && \
	    (raw & (1U << bpf_core_enum_value(enum req_flag_bits, __REQ_##name)))) \
		out |= CF_REQ_##name

/* cmd_flags with its flag bits moved to the fixed numbering of enum cf_req_flag */
static __always_inline __u32 rq_flags(struct request *rq)
{
	__u32 raw = BPF_CORE_READ(rq, cmd_flags);
	__u32 out = raw & ((1U << REQ_OP_BITS) - 1);

	CF_FLAG(NOWAIT);
	CF_FLAG(BACKGROUND);
	CF_FLAG(RAHEAD);
	CF_FLAG(PREFLUSH);
	CF_FLAG(FUA);
	CF_FLAG(INTEGRITY);
	CF_FLAG(IDLE);
	CF_FLAG(NOMERGE);
	CF_FLAG(PRIO);
	CF_FLAG(META);
	CF_FLAG(SYNC);
	return out;
}

#endif /* COREFRAME_BLK_H */
