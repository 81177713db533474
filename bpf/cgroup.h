/* SPDX-License-Identifier: MIT */
/* The -c/--cgroup filter of the first-party tools: user space puts the fd of a
 * cgroup v2 directory in slot 0 of cgroup_map and sets filter_cg. */
#ifndef COREFRAME_CGROUP_H
#define COREFRAME_CGROUP_H

const volatile bool filter_cg = false;

struct {
	__uint(type, BPF_MAP_TYPE_CGROUP_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} cgroup_map SEC(".maps");

/* true when filtering and the current task is outside the cgroup */
static __always_inline bool cgroup_excluded(void)
{
	return filter_cg && !bpf_current_task_under_cgroup(&cgroup_map, 0);
}

#endif /* COREFRAME_CGROUP_H */
