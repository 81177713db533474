"""Map API: element ops, encodings, per-CPU, batch, iteration, queue/stack, mmap, pinning."""

from __future__ import annotations

import ctypes
import os
import uuid
from collections.abc import Iterator

import pytest

from coreframe.errors import MapError
from coreframe.maps import Map, check_compatible, possible_cpus
from coreframe.sys import consts as C

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")


class Point(ctypes.Structure):
    _fields_ = [("x", ctypes.c_uint32), ("y", ctypes.c_uint32)]


@pytest.fixture
def hmap() -> Iterator[Map]:
    with Map.create(C.BPF_MAP_TYPE_HASH, 4, 8, 64, name="hists") as m:
        yield m


def test_lookup_update_delete(hmap: Map) -> None:
    assert hmap.lookup(1) is None
    assert hmap.lookup(1, b"dflt") == b"dflt"
    with pytest.raises(KeyError):
        _ = hmap[1]
    hmap.update(1, 42)
    assert hmap[1] == (42).to_bytes(8, "little")
    hmap[2] = b"\x01" * 8
    assert 2 in hmap and 3 not in hmap
    assert hmap.delete(2) is True
    assert hmap.delete(2) is False
    with pytest.raises(KeyError):
        del hmap[2]


def test_lookup_and_delete(hmap: Map) -> None:
    hmap[4] = 44
    assert int.from_bytes(hmap.lookup_and_delete(4), "little") == 44
    assert hmap.lookup_and_delete(4, "gone") == "gone"
    assert 4 not in hmap


@pytest.mark.parametrize("per_key", [True, False], ids=["lookup_and_delete", "batch"])
def test_take_all(hmap: Map, per_key: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """take_all empties the map either way; the batch way (kernels before 5.14 have no
    per-key lookup-and-delete on hash maps) is chosen here by making the probe say
    so, and runs against this kernel's BPF_MAP_LOOKUP_AND_DELETE_BATCH."""
    from coreframe import features

    if not per_key:
        monkeypatch.setattr(features, "has_lookup_and_delete", lambda _t: False)
    elif not features.has_lookup_and_delete(C.BPF_MAP_TYPE_HASH):
        pytest.skip("kernel feature missing: lookup-and-delete on hash maps (5.14+)")
    for k in range(40):
        hmap[k] = k * 3
    got = {int.from_bytes(k, "little"): int.from_bytes(v, "little") for k, v in hmap.take_all()}
    assert got == {k: k * 3 for k in range(40)}
    assert list(hmap.keys()) == []
    assert hmap.take_all() == []
    if not per_key:
        assert any("LOOKUP_AND_DELETE_BATCH" in n for n in features.fallbacks_taken())


def test_update_flags(hmap: Map) -> None:
    hmap.update(1, 1, C.BPF_NOEXIST)
    with pytest.raises(MapError, match="already exists"):
        hmap.update(1, 2, C.BPF_NOEXIST)
    with pytest.raises(KeyError):
        hmap.update(5, 2, C.BPF_EXIST)
    hmap.update(1, 3, C.BPF_EXIST)
    assert int.from_bytes(hmap[1], "little") == 3


def test_wrong_sizes_are_clear(hmap: Map) -> None:
    with pytest.raises(MapError) as ei:
        hmap.update(b"\0" * 8, 1)
    assert str(ei.value) == "map 'hists': key is 8 bytes, expected 4"
    with pytest.raises(MapError, match="value is 4 bytes, expected 8"):
        hmap.update(1, ctypes.c_uint32(5))
    with pytest.raises(MapError, match="does not fit in 4 bytes"):
        hmap.update(1 << 40, 1)
    with pytest.raises(MapError, match="must be int, bytes or a ctypes instance"):
        hmap.update("x", 1)


def test_ctypes_keys_values_and_types() -> None:
    with Map.create(C.BPF_MAP_TYPE_HASH, 8, 8, 16, name="pts",
                    key_type=Point, value_type=ctypes.c_uint64) as m:
        m.update(Point(1, 2), ctypes.c_uint64(7))
        v = m[Point(1, 2)]
        assert isinstance(v, ctypes.c_uint64) and v.value == 7
        (k, val), = list(m.items())
        assert isinstance(k, Point) and (k.x, k.y) == (1, 2) and val.value == 7
        m.value_type = int
        assert m[Point(1, 2)] == 7
        m.key_type = None
        assert list(m.keys()) == [bytes(Point(1, 2))]


def test_full_hash_map() -> None:
    with Map.create(C.BPF_MAP_TYPE_HASH, 4, 4, 2, name="small") as m:
        m[1] = 1
        m[2] = 2
        with pytest.raises(MapError, match="full"):
            m[3] = 3


def test_array_int_keys() -> None:
    with Map.create(C.BPF_MAP_TYPE_ARRAY, 4, 4, 4, name="arr", value_type=int) as m:
        m[3] = 9
        assert m[3] == 9 and m[0] == 0
        assert list(m.keys()) == [0, 1, 2, 3]
        assert dict(m.items()) == {0: 0, 1: 0, 2: 0, 3: 9}
        with pytest.raises(MapError, match="out of range"):
            m[4] = 1
        with pytest.raises(MapError, match="cannot be deleted"):
            m.clear()
        with pytest.raises(MapError, match="cannot be deleted"):
            del m[0]


def test_percpu_values() -> None:
    n = possible_cpus()
    assert n >= 1
    with Map.create(C.BPF_MAP_TYPE_PERCPU_ARRAY, 4, 4, 2, name="pc", value_type=int) as m:
        m[0] = list(range(10, 10 + n))
        assert m[0] == list(range(10, 10 + n))
        m[1] = 5  # one value is replicated to every CPU
        assert m[1] == [5] * n
        with pytest.raises(MapError, match=f"needs {n} entries"):
            m[0] = [1] * (n + 1)
    with Map.create(C.BPF_MAP_TYPE_PERCPU_HASH, 4, 12, 4, name="pch") as m:
        m[1] = [bytes([i]) * 12 for i in range(n)]
        assert m[1] == [bytes([i]) * 12 for i in range(n)]


def test_iteration_survives_deletion(hmap: Map) -> None:
    for i in range(40):
        hmap[i] = i
    seen = []
    for k in hmap.keys():
        seen.append(k)
        hmap.delete(k)
    assert len(seen) == len(set(seen)) == 40
    assert list(hmap.keys()) == []
    for i in range(10):
        hmap[i] = i
    items = []
    for k, _v in hmap.items():
        items.append(k)
        for other in list(hmap.keys()):
            if other != k:
                hmap.delete(other)
                break
    assert len(items) == len(set(items))
    hmap.clear()
    assert list(hmap.keys()) == []


@pytest.mark.parametrize("mtype", [C.BPF_MAP_TYPE_HASH, C.BPF_MAP_TYPE_ARRAY,
                                   C.BPF_MAP_TYPE_PERCPU_HASH])
def test_batch_ops(mtype: int) -> None:
    n = possible_cpus()
    with Map.create(mtype, 4, 8, 100, name="batch", key_type=int, value_type=int) as m:
        expected = {}
        for i in range(100):
            m[i] = i * 3
            expected[i] = [i * 3] * n if m.is_percpu else i * 3
        got = dict(m.items_batch(batch_size=7))
        assert got == expected
        entries, token = m.lookup_batch(count=10)
        assert 0 < len(entries) <= 10 and token is not None  # hash batches stop at buckets
        if mtype != C.BPF_MAP_TYPE_ARRAY:
            assert m.delete_batch(range(50)) == 50
            assert len(list(m.keys())) == 50
            assert m.update_batch([(i, 1) for i in range(10)]) == 10
            drained, _ = m.lookup_batch(count=1000, delete=True)
            assert len(drained) == 60
            assert list(m.keys()) == []


def test_batch_falls_back_for_unsupported_types() -> None:
    with Map.create(C.BPF_MAP_TYPE_LPM_TRIE, 8, 4, 4, name="lpm",
                    flags=C.BPF_F_NO_PREALLOC) as m:
        key = (24).to_bytes(4, "little") + bytes([10, 0, 0, 0])
        m[key] = 1
        assert dict(m.items_batch()) == {key: (1).to_bytes(4, "little")}


def test_queue_and_stack() -> None:
    with Map.create(C.BPF_MAP_TYPE_QUEUE, 0, 4, 3, name="q", value_type=int) as q:
        assert q.pop() is None and q.peek() is None
        for i in (1, 2, 3):
            q.push(i)
        with pytest.raises(MapError, match="full"):
            q.push(4)
        q.push(4, C.BPF_EXIST)  # drops the oldest
        assert q.peek() == 2
        assert [q.pop(), q.pop(), q.pop(), q.pop()] == [2, 3, 4, None]
    with Map.create(C.BPF_MAP_TYPE_STACK, 0, 4, 3, name="s", value_type=int) as s:
        s.push(1)
        s.push(2)
        assert s.pop() == 2 and s.pop() == 1
    with Map.create(C.BPF_MAP_TYPE_HASH, 4, 4, 1, name="h") as h, \
            pytest.raises(MapError, match="needs a queue or stack"):
        h.push(1)


def test_mmap_and_freeze() -> None:
    with Map.create(C.BPF_MAP_TYPE_ARRAY, 4, 16, 1, name="data",
                    flags=C.BPF_F_MMAPABLE) as m:
        view = m.mmap()
        assert len(view) == 16 and not view.readonly
        view[0:4] = b"abcd"
        assert m[0][:4] == b"abcd"
        m[0] = b"z" * 16
        assert bytes(view[:2]) == b"zz"
        with pytest.raises(MapError, match="cannot freeze while a writable mmap"):
            m.freeze()
        view.release()
    with Map.create(C.BPF_MAP_TYPE_ARRAY, 4, 8, 1, name="ro", flags=C.BPF_F_MMAPABLE) as m:
        m[0] = 5
        m.freeze()
        with pytest.raises(MapError, match="frozen"):
            m[0] = 6
        view = m.mmap()
        assert view.readonly and view[0] == 5
        view.release()
    with Map.create(C.BPF_MAP_TYPE_ARRAY, 4, 8, 1, name="plain") as m, \
            pytest.raises(MapError, match="MMAPABLE"):
        m.mmap()


@pytest.fixture
def bpffs_dir() -> Iterator[str]:
    root = "/sys/fs/bpf"
    if not os.path.ismount(root):
        pytest.skip("bpffs is not mounted at /sys/fs/bpf")
    path = os.path.join(root, f"cf_test_{uuid.uuid4().hex[:8]}")
    os.mkdir(path)
    try:
        yield path
    finally:
        for name in os.listdir(path):
            os.unlink(os.path.join(path, name))
        os.rmdir(path)


def test_pin_and_from_pinned(bpffs_dir: str) -> None:
    path = os.path.join(bpffs_dir, "counts")
    with Map.create(C.BPF_MAP_TYPE_HASH, 4, 8, 32, name="counts") as m:
        m[1] = 11
        m.pin(path)
        with pytest.raises(MapError, match="exists"):
            m.pin(path)
        mid = m.info().id
    with Map.from_pinned(path) as again:
        assert again.info().id == mid
        assert (again.name, again.key_size, again.value_size, again.max_entries) == (
            "counts", 4, 8, 32)
        assert int.from_bytes(again[1], "little") == 11
        again.check_compatible(map_type=C.BPF_MAP_TYPE_HASH, key_size=4, value_size=8,
                               max_entries=32, map_flags=0)
        with pytest.raises(MapError, match="max_entries is 32, definition says 64"):
            again.check_compatible(map_type=C.BPF_MAP_TYPE_HASH, key_size=4, value_size=8,
                                   max_entries=64, map_flags=0)
        with pytest.raises(MapError, match="type is BPF_MAP_TYPE_HASH"):
            check_compatible(again.info(), "counts", map_type=C.BPF_MAP_TYPE_ARRAY,
                             key_size=4, value_size=8, max_entries=32, map_flags=0)
    with pytest.raises(MapError, match="no pinned map"):
        Map.from_pinned(os.path.join(bpffs_dir, "missing"))


def test_pin_outside_bpffs(tmp_path: object) -> None:
    with Map.create(C.BPF_MAP_TYPE_HASH, 4, 8, 1, name="x") as m, \
            pytest.raises(MapError, match="not on a bpf filesystem"):
        m.pin(os.path.join(str(tmp_path), "x"))


def test_closed_map_is_clear() -> None:
    m = Map.create(C.BPF_MAP_TYPE_HASH, 4, 4, 1, name="gone")
    m.close()
    with pytest.raises(MapError, match="closed"):
        m.lookup(1)


def test_from_id_and_repr() -> None:
    with Map.create(C.BPF_MAP_TYPE_LRU_HASH, 4, 4, 8, name="lru") as m:
        with Map.from_id(m.info().id) as same:
            assert same.type == C.BPF_MAP_TYPE_LRU_HASH and same.name == "lru"
        assert "BPF_MAP_TYPE_LRU_HASH" in repr(m)
    with pytest.raises(MapError, match="no map with id"):
        Map.from_id(0x7FFFFFF0)


def test_prog_array_takes_programs() -> None:
    from coreframe import asm
    from coreframe.programs import load_program

    insns = asm.mov64_imm(asm.R0, 0) + asm.exit_()
    with Map.create(C.BPF_MAP_TYPE_PROG_ARRAY, 4, 4, 2, name="jmp") as m, \
            load_program("tail", C.BPF_PROG_TYPE_SOCKET_FILTER, insns) as prog:
        m[0] = prog
        assert int.from_bytes(m[0], "little") == prog.info().id
        del m[0]
        assert m.lookup(0) is None


def test_bad_definition_is_map_error() -> None:
    with pytest.raises(MapError, match="kernel rejected the definition"):
        Map.create(C.BPF_MAP_TYPE_HASH, 0, 4, 1, name="nokey")


def test_reader_for_ringbuf() -> None:
    pytest.importorskip("coreframe.ringbuf")
    with Map.create(C.BPF_MAP_TYPE_RINGBUF, 0, 0, os.sysconf("SC_PAGE_SIZE") * 4,
                    name="rb") as m:
        rb = m.reader()
        try:
            assert type(rb).__name__ == "RingBuffer"
        finally:
            rb.close()
    with Map.create(C.BPF_MAP_TYPE_HASH, 4, 4, 1, name="h") as m, \
            pytest.raises(MapError, match="has no reader"):
        m.reader()
