// SPDX-License-Identifier: GPL-2.0
/* CO-RE test object for synthetic target BTFs (tests/btf/targets/).
 *
 * Every access is guarded by bpf_core_type_exists(), so on the running
 * kernel (which has none of these types) the poisoned instructions are dead
 * code and the program still loads.
 *
 * Built with `make tests/objects/core_flavors.bpf.o` from the repository root, i.e.:
 *   clang -g -O2 -target bpf -D__TARGET_ARCH_x86 -mcpu=v3 -Wall \
 *     -fdebug-prefix-map=$PWD=. -ffile-prefix-map=$PWD=. -Ibpf -Itests/objects \
 *     -c tests/objects/core_flavors.bpf.c -o tests/objects/core_flavors.bpf.o
 *   llvm-strip -g tests/objects/core_flavors.bpf.o
 */
#include "core_flavors.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

#define field_signed(field...) \
	__builtin_preserve_field_info(___bpf_field_ref(field), BPF_FIELD_SIGNED)

struct flavors_out {
	__u64 wide;
	__u64 lo;
	__s64 neg;
	void *ptr;
	int a;
	int b;
	int b_only;
	int narrow;
	int sgn;
	int count;
	int pair3_b;
	int tail1;
	int has_tail;
	int red;
	int blue;
	int has_blue;
	int node_size;
	int handle_exists;
	int neg_signed;
	int tag1;
	int tagword;
	__s64 mode;
};

struct flavors_out flv = {};

SEC("tracepoint/syscalls/sys_enter_getppid")
int flavors(void *ctx)
{
	if (bpf_core_type_exists(struct cf_pair)) {
		struct cf_pair *p = ctx;

		flv.a = p->a;
		flv.b = p->b;
	}
	if (bpf_core_type_exists(struct cf_pair___b_only)) {
		struct cf_pair___b_only *q = ctx;

		flv.b_only = q->b;
	}
	if (bpf_core_type_exists(struct cf_sized)) {
		struct cf_sized *s = ctx;

		flv.narrow = s->narrow;
		flv.sgn = s->sgn;
		flv.wide = s->wide;
		flv.ptr = s->ptr;
		flv.tag1 = s->tag[1];
		flv.tagword = *(__u32 *)s->tag;
	}
	if (bpf_core_type_exists(struct cf_node)) {
		struct cf_node *n = ctx;

		flv.count = BPF_CORE_READ(n, count);
		flv.pair3_b = BPF_CORE_READ(n, pairs[3].b);
		flv.has_tail = bpf_core_field_exists(n->tail);
		if (bpf_core_field_exists(n->tail))
			flv.tail1 = BPF_CORE_READ(n, tail[1]);
		flv.node_size = bpf_core_type_size(struct cf_node);
	}
	if (bpf_core_type_exists(struct cf_bits)) {
		struct cf_bits *bits = ctx;

		flv.lo = BPF_CORE_READ_BITFIELD_PROBED(bits, lo);
		flv.neg = BPF_CORE_READ_BITFIELD_PROBED(bits, neg);
		flv.neg_signed = field_signed(bits->neg);
	}
	if (bpf_core_type_exists(enum cf_color)) {
		flv.red = bpf_core_enum_value(enum cf_color, CF_RED);
		flv.has_blue = bpf_core_enum_value_exists(enum cf_color, CF_BLUE);
		if (bpf_core_enum_value_exists(enum cf_color, CF_BLUE))
			flv.blue = bpf_core_enum_value(enum cf_color, CF_BLUE);
	}
	if (bpf_core_type_exists(enum cf_mode))
		flv.mode = bpf_core_enum_value(enum cf_mode, CF_MODE_A);
	flv.handle_exists = bpf_core_type_exists(cf_handle_t);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
