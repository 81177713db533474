// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * BTF kinds newer than some kernels of the matrix: FLOAT (5.13), DECL_TAG (5.16) and
 * TYPE_TAG (5.17) in the type of a map value, so the object's BTF holds all three.
 * A kernel that lacks them must get the object's BTF sanitized (coreframe.btf.sanitize,
 * chosen by features.btf_kinds): the BTF loads, the map keeps its typed value and the
 * program counts this process's getpgid() calls either way. (ENUM64, 6.0, needs
 * clang 15.) Used by tests/kernel/test_kern_fallbacks.py.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#define __cf_decl_tag __attribute__((btf_decl_tag("cf_decl_tag")))
#define __cf_type_tag __attribute__((btf_type_tag("cf_type_tag")))

struct kinds_value {
	float ratio;                 /* FLOAT */
	int __cf_type_tag *where;    /* TYPE_TAG */
	__u64 hits __cf_decl_tag;    /* DECL_TAG on a member */
};

const volatile __u32 targ_tgid = 0;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct kinds_value);
} counts SEC(".maps");

SEC("tracepoint/syscalls/sys_enter_getpgid")
int kern_btfkinds(void *ctx)
{
	__u32 zero = 0;
	struct kinds_value *v;

	if ((bpf_get_current_pid_tgid() >> 32) != targ_tgid)
		return 0;
	v = bpf_map_lookup_elem(&counts, &zero);
	if (v)
		__sync_fetch_and_add(&v->hits, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
