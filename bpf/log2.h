/* SPDX-License-Identifier: MIT */
/* Integer log2 and the slot numberings of log2 histograms, one copy for every
 * program that buckets values: bcc's (readhist, pycalls) and libbpf-tools' (hist.h). */
#ifndef COREFRAME_LOG2_H
#define COREFRAME_LOG2_H

/* floor(log2(v)) for v > 0, without a loop the verifier would have to unroll */
static __always_inline __u64 log2_u32(__u32 v)
{
	__u32 shift, r;

	r = (v > 0xFFFF) << 4;
	v >>= r;
	shift = (v > 0xFF) << 3;
	v >>= shift;
	r |= shift;
	shift = (v > 0xF) << 2;
	v >>= shift;
	r |= shift;
	shift = (v > 0x3) << 1;
	v >>= shift;
	r |= shift;
	r |= (v >> 1);
	return r;
}

/* floor(log2(v)) for v > 0 (0 for 0), as one chain of halvings: the 6.1 verifier
 * loses the bound of log2_u32(v >> 32) + 32 and rejects it as a histogram index */
static __always_inline __u32 log2_u64(__u64 v)
{
	__u32 r = 0;

	if (v >> 32) { v >>= 32; r += 32; }
	if (v >> 16) { v >>= 16; r += 16; }
	if (v >> 8) { v >>= 8; r += 8; }
	if (v >> 4) { v >>= 4; r += 4; }
	if (v >> 2) { v >>= 2; r += 2; }
	if (v >> 1) { r += 1; }
	return r;
}

/* bcc's slot: 0 for 0, floor(log2(v)) + 1 otherwise */
static __always_inline __u64 slot_of(__u64 v)
{
	__u32 hi = v >> 32;

	if (!v)
		return 0;
	if (hi)
		return log2_u32(hi) + 32 + 1;
	return log2_u32((__u32)v) + 1;
}

#endif /* COREFRAME_LOG2_H */
