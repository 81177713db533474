"""Every map type this kernel can create, through Map.create, for real."""

from __future__ import annotations

import os

import pytest

from coreframe.errors import FeatureMissing
from coreframe.features import storage_btf
from coreframe.maps import Map
from coreframe.sys import consts as C
from coreframe.sys.bpf import btf_load

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")

PAGE = os.sysconf("SC_PAGE_SIZE")

SIMPLE = [
    ("hash", C.BPF_MAP_TYPE_HASH, 4, 8, 16, 0),
    ("array", C.BPF_MAP_TYPE_ARRAY, 4, 8, 16, 0),
    ("percpu_hash", C.BPF_MAP_TYPE_PERCPU_HASH, 4, 8, 16, 0),
    ("percpu_array", C.BPF_MAP_TYPE_PERCPU_ARRAY, 4, 8, 16, 0),
    ("lru_hash", C.BPF_MAP_TYPE_LRU_HASH, 4, 8, 16, 0),
    ("lru_percpu_hash", C.BPF_MAP_TYPE_LRU_PERCPU_HASH, 4, 8, 16, 0),
    ("ringbuf", C.BPF_MAP_TYPE_RINGBUF, 0, 0, 16 * PAGE, 0),
    ("perf_event_array", C.BPF_MAP_TYPE_PERF_EVENT_ARRAY, 4, 4, 2, 0),
    ("stack_trace", C.BPF_MAP_TYPE_STACK_TRACE, 4, 8 * 127, 16, 0),
    ("lpm_trie", C.BPF_MAP_TYPE_LPM_TRIE, 8, 4, 16, C.BPF_F_NO_PREALLOC),
    ("queue", C.BPF_MAP_TYPE_QUEUE, 0, 4, 16, 0),
    ("stack", C.BPF_MAP_TYPE_STACK, 0, 4, 16, 0),
    ("bloom_filter", C.BPF_MAP_TYPE_BLOOM_FILTER, 0, 8, 16, 0),
    ("prog_array", C.BPF_MAP_TYPE_PROG_ARRAY, 4, 4, 4, 0),
]


@pytest.mark.parametrize("label,mtype,key,value,entries,flags", SIMPLE, ids=[s[0] for s in SIMPLE])
def test_create_simple(label: str, mtype: int, key: int, value: int, entries: int,
                       flags: int) -> None:
    with Map.create(mtype, key, value, entries, name=label, flags=flags) as m:
        info = m.info()
        assert info.type == mtype
        assert info.name == label[:15]
        assert info.max_entries == entries
        assert info.id > 0


@pytest.mark.parametrize("outer", [C.BPF_MAP_TYPE_ARRAY_OF_MAPS, C.BPF_MAP_TYPE_HASH_OF_MAPS])
def test_map_in_map(outer: int) -> None:
    with Map.create(C.BPF_MAP_TYPE_ARRAY, 4, 8, 4, name="inner") as inner, \
            Map.create(outer, 4, 4, 4, name="outer", inner_map=inner) as om:
        om.update(0, inner)  # a Map value is stored by fd
        inner_id = om[0]
        assert int.from_bytes(inner_id, "little") == inner.info().id
        other = Map.from_id(int.from_bytes(inner_id, "little"))
        with other:
            assert other.info().id == inner.info().id


@pytest.mark.parametrize("mtype", [C.BPF_MAP_TYPE_TASK_STORAGE, C.BPF_MAP_TYPE_INODE_STORAGE],
                         ids=["task_storage", "inode_storage"])
def test_local_storage_with_btf(mtype: int) -> None:
    blob, key_id, value_id = storage_btf()
    with btf_load(blob) as btf, Map.create(
        mtype, 4, 4, 0, name="stor", flags=C.BPF_F_NO_PREALLOC, btf_fd=btf,
        btf_key_type_id=key_id, btf_value_type_id=value_id,
    ) as m:
        info = m.info()
        assert info.type == mtype
        assert info.btf_value_type_id == value_id


def test_unknown_map_type_is_feature_missing() -> None:
    with pytest.raises(FeatureMissing, match="map type 9999"):
        Map.create(9999, 4, 4, 1, name="nope")
