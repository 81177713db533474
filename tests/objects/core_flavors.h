/* Local declarations of synthetic types for core_flavors.bpf.c.
 *
 * None of these exist in the kernel: against vmlinux every access is poisoned
 * (and unreachable behind bpf_core_type_exists()); tests relocate the object
 * against the synthetic target BTFs in tests/btf/targets/ instead.
 */
#ifndef CORE_FLAVORS_H
#define CORE_FLAVORS_H

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

struct cf_pair {
	int a;
	int b;
} __pa;

/* Same essential name as cf_pair: a local flavor with one field. */
struct cf_pair___b_only {
	int b;
} __pa;

struct cf_sized {
	__u16 narrow;		/* unsigned: load size may be rewritten */
	int sgn;		/* signed: a size change poisons the load */
	__u64 wide;
	void *ptr;
	unsigned char tag[4];	/* target: __u16 tag[4] */
} __pa;

struct cf_node {
	struct cf_node *next;
	struct cf_pair pairs[4];
	int count;
	int tail[];		/* flexible array */
} __pa;

struct cf_bits {
	unsigned int lo: 3;
	unsigned int hi: 5;
	int neg: 4;
} __pa;

enum cf_color {
	CF_RED = 1,
	CF_GREEN = 2,
	CF_BLUE = 4,
};

enum cf_mode {
	CF_MODE_A = 1,		/* target: -2, widened like libbpf (sign-extended) */
};

typedef int cf_handle_t;

#endif
