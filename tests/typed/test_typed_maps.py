"""Maps of a loaded object return values typed from its BTF: hash, array, per-CPU,
enum keys, char-array values; raw bytes on request; len(); readable KeyErrors."""

from __future__ import annotations

import os

import pytest
from typedkit import trigger

from coreframe.btf.values import StructValue
from coreframe.errors import MapError
from coreframe.maps import possible_cpus

pytestmark = [
    pytest.mark.kernel,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
]


def _comm() -> str:
    with open("/proc/self/comm") as f:
        return f.read().strip()[:15]


def test_hash_map_with_struct_keys_and_values(loaded) -> None:
    loaded.attach()
    trigger(21)
    m = loaded.maps.by_key
    assert len(m) == 1
    ((key, value),) = list(m.items())
    assert isinstance(key, StructValue) and isinstance(value, StructValue)
    assert key == {"pid": os.getpid(), "comm": _comm()}
    assert (value.count, value.delta, value.seen, value.color) == (21, -21, True, 7)
    assert value.where == {"x": 21, "y": -21}
    assert [(p.x, p.y) for p in value.path] == [(0, 21), (1, 21), (2, 21)]
    assert (value.a, value.b, value.c) == (21 & 7, -3, 1)
    assert value.raw == bytes([1, 2, 3, 4, 5, 6]) and value.name == "typed"
    assert value.hist == [0, 21, 42, 63] and value.u.as_bytes == b"\x01\x02\x03\x04"
    assert value.ptr == 21 * 4096
    # every key spelling finds the entry: typed instance, dict, tuple, bytes
    assert m[key] == value
    assert m[{"pid": os.getpid(), "comm": _comm()}] == value
    assert m.lookup((os.getpid(), _comm())) == value
    assert m.get((os.getpid(), _comm())) == value and m.get((0, "none"), 5) == 5
    assert m[bytes(key)] == value and m.raw[bytes(key)] == bytes(value)
    assert list(m.values()) == [value] and list(m.keys()) == [key]


def test_round_trip_through_the_kernel(loaded) -> None:
    m = loaded.maps.by_key
    k = {"pid": 1, "comm": "init"}
    m[k] = {"count": 5, "name": "five", "b": -16, "where": {"x": -1, "y": 2},
            "path": [{"x": 1, "y": 1}], "hist": [9, 8], "raw": b"\xff", "color": "GREEN"}
    v = m[k]
    assert v.to_dict() == {
        "count": 5, "delta": 0, "seen": False, "color": 1, "where": {"x": -1, "y": 2},
        "path": [{"x": 1, "y": 1}, {"x": 0, "y": 0}, {"x": 0, "y": 0}], "a": 0, "b": -16,
        "c": 0, "raw": "ff0000000000", "name": "five", "hist": [9, 8, 0, 0],
        "u": {"as_u32": 0, "as_bytes": "00000000"}, "ptr": 0}
    m[k] = v._replace(count=6)                       # read, change, write back
    assert m[k].count == 6 and len(m) == 1
    del m[k]
    assert len(m) == 0


def test_missing_keys_and_bad_values_are_readable(loaded) -> None:
    m = loaded.maps.by_key
    with pytest.raises(KeyError) as e:
        m[{"pid": 2, "comm": "sh"}]
    assert "{'pid': 2, 'comm': 'sh'}" in str(e.value)
    from coreframe.btf.values import codec

    typed_key = codec(m.btf, m._btf_key_id).cls(pid=3, comm="sh")
    with pytest.raises(KeyError, match=r"typed_key\(pid=3, comm='sh'\)"):
        m[typed_key]
    with pytest.raises(MapError, match=r"map 'by_key': value as struct typed_value: "
                                       r"delta: 99999 is out of range"):
        m[typed_key] = {"delta": 99999}
    with pytest.raises(MapError, match="no field 'cnt'; did you mean 'count'"):
        m[typed_key] = {"cnt": 1}


def test_array_map_len_and_int_keys(loaded) -> None:
    loaded.attach()
    trigger(3)
    m = loaded.maps["values"]
    assert len(m) == 4                                 # an array has max_entries slots
    assert m[0].count == 3 and m[1] == m[1].__class__()  # untouched slots are zero
    assert [k for k, _ in m.items()] == [0, 1, 2, 3]
    m[2] = m[0]
    assert m[2] == m[0]


def test_percpu_maps_give_one_value_per_possible_cpu(loaded) -> None:
    loaded.attach()
    trigger(7, 8)
    counts = loaded.maps.pcpu_counts[0]
    assert isinstance(counts, list) and len(counts) == possible_cpus()
    assert all(isinstance(c, int) for c in counts) and sum(counts) == 15
    # bytes() of a typed scalar is its C value, as when lookups returned bytes
    assert [int.from_bytes(bytes(c)[:8], "little") for c in counts] == counts
    assert all(len(bytes(c)) == 8 for c in counts) and repr(counts[0]) == str(int(counts[0]))
    points = loaded.maps.pcpu_points
    assert len(points) == 2
    per_cpu = points[8]
    assert len(per_cpu) == possible_cpus()
    assert {"x": 8, "y": -8} in per_cpu
    points[9] = [{"x": i, "y": -i} for i in range(possible_cpus())]
    assert [p.x for p in points[9]] == list(range(possible_cpus()))
    points[10] = {"x": 1, "y": 1}                      # one value for every CPU
    assert points[10] == [{"x": 1, "y": 1}] * possible_cpus()


def test_enum_keys_and_char_array_values(loaded) -> None:
    m = loaded.maps.by_color
    m["BLUE"] = "blue"                                 # enumerator name as the key
    m[1] = "green"
    assert m[7] == "blue" and m.lookup("GREEN") == "green"
    assert dict(m.items()) == {7: "blue", 1: "green"}
    assert m.raw[7] == b"blue\0\0\0\0"


def test_raw_view_and_typed_switch(loaded) -> None:
    loaded.attach()
    trigger(4)
    m = loaded.maps["values"]
    raw = m.raw[0]
    assert isinstance(raw, bytes) and len(raw) == m.value_size
    assert m[0] == m[0].__class__._codec.decode(raw)
    m.typed = False
    assert m[0] == raw
    m.typed = True
    assert m[0].count == 4
    # an explicit ctypes value_type wins over the BTF type, as before
    ct = loaded.btf.ctype("struct typed_value")
    m.value_type = ct
    assert isinstance(m[0], ct) and m[0].count == 4
    m.value_type = None


def test_len_of_maps_that_cannot_count(loaded) -> None:
    with pytest.raises(TypeError, match="cannot count its entries"):
        len(loaded.maps.ring)
    assert bool(loaded.maps.ring) and bool(loaded.maps.by_key)  # truth never walks a map


def test_live_globals_are_typed(loaded) -> None:
    loaded.attach()
    trigger(11)
    assert loaded.bss.calls == 1
    assert loaded.bss.last_small == {"seq": 11, "neg": -11, "val": 11 << 33}
    assert loaded.data.origin == {"x": 3, "y": -4}
    loaded.data.origin = {"x": 5}
    assert loaded.data.origin == {"x": 5, "y": -4}
    assert isinstance(loaded.maps[".bss"][0], bytes)      # a section image stays bytes


def test_maps_opened_by_id_are_typed_from_the_kernels_btf(loaded) -> None:
    from coreframe.maps import Map

    loaded.attach()
    trigger(12)
    with Map.from_id(loaded.maps.by_key.info().id) as m:
        assert list(m.items()) == list(loaded.maps.by_key.items())
        assert next(iter(m.values())).count == 12
        assert isinstance(m.raw[next(iter(m.raw))], bytes)
    with Map.from_id(loaded.maps.pcpu_counts.info().id) as m:
        assert sum(m[0]) == 12
