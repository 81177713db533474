"""Map types the loader treats specially, by libbpf's rules.

Kept apart from :mod:`coreframe.object.spec` so that rebuilding a spec from the cache
imports none of the UAPI constants: only the parser and the loader need these.
"""

from __future__ import annotations

from ..sys import consts as C

# Map types whose maps never carry key/value BTF (libbpf clears the ids for them).
NO_BTF_MAP_TYPES = frozenset({
    C.BPF_MAP_TYPE_PERF_EVENT_ARRAY, C.BPF_MAP_TYPE_CGROUP_ARRAY, C.BPF_MAP_TYPE_STACK_TRACE,
    C.BPF_MAP_TYPE_ARRAY_OF_MAPS, C.BPF_MAP_TYPE_HASH_OF_MAPS, C.BPF_MAP_TYPE_DEVMAP,
    C.BPF_MAP_TYPE_DEVMAP_HASH, C.BPF_MAP_TYPE_CPUMAP, C.BPF_MAP_TYPE_XSKMAP,
    C.BPF_MAP_TYPE_SOCKMAP, C.BPF_MAP_TYPE_SOCKHASH, C.BPF_MAP_TYPE_QUEUE,
    C.BPF_MAP_TYPE_STACK, C.BPF_MAP_TYPE_RINGBUF, C.BPF_MAP_TYPE_USER_RINGBUF,
    C.BPF_MAP_TYPE_ARENA,
})
MAP_IN_MAP = frozenset({C.BPF_MAP_TYPE_ARRAY_OF_MAPS, C.BPF_MAP_TYPE_HASH_OF_MAPS})
# Map types whose key is a u32 index when the definition leaves key_size out.
FD_ARRAYS = frozenset({
    C.BPF_MAP_TYPE_PERF_EVENT_ARRAY, C.BPF_MAP_TYPE_CGROUP_ARRAY, C.BPF_MAP_TYPE_PROG_ARRAY,
    C.BPF_MAP_TYPE_ARRAY_OF_MAPS,
})
