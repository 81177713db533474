"""Typed global variables: reads, checked writes, CLI text parsing, error messages."""

from __future__ import annotations

import pytest
from objpaths import obj

import coreframe
from coreframe.errors import ObjectError
from coreframe.object import ObjectSpec
from coreframe.object.variables import UnknownVariable, VariableError


@pytest.fixture
def spec() -> ObjectSpec:
    return coreframe.open(obj("obj_globals"))


def test_initial_values(spec: ObjectSpec) -> None:
    ro = spec.rodata
    assert ro.targ_uid == 1000
    assert ro.targ_pid == -1
    assert ro.verbose is False
    assert ro.run_mode == 5
    assert ro.comm_filter == "bash"
    assert ro.sizes == [1, 2, 4, 8]
    assert ro.lim == {"lo": -3, "hi": 7, "tag": "ab", "flag_a": 2, "flag_b": 9}
    assert (ro.tiny, ro.port, ro.big) == (-5, 8080, -1234567890123)
    assert spec.data.counter == 42
    assert spec.bss.total == 0 and spec.bss.hits == 0
    assert spec.datasec(".rodata.custom").custom_ro == 77
    assert spec.datasec(".data.custom").custom_rw == 88


def test_writes_land_in_the_map_image(spec: ObjectSpec) -> None:
    ro = spec.rodata
    ro.targ_uid = 4242
    v = ro.variable("targ_uid")
    image = spec.maps[".rodata"].data
    assert image[v.offset:v.offset + 4] == (4242).to_bytes(4, "little")
    ro.targ_pid = -77
    ro.verbose = True
    ro.run_mode = "MODE_AUTO"
    ro.comm_filter = "python3"
    ro.sizes = [9, 8]
    ro.lim = {"hi": 65535, "tag": "xyz", "flag_b": 31, "flag_a": 7}
    ro.tiny = -128
    ro.big = 2**63 - 1
    spec.bss.total = 5
    assert ro.targ_pid == -77 and ro.verbose is True and ro.run_mode == 6
    assert ro.comm_filter == "python3"
    assert ro.sizes == [9, 8, 0, 0]
    assert ro.lim == {"lo": -3, "hi": 65535, "tag": "xyz", "flag_a": 7, "flag_b": 31}
    assert (ro.tiny, ro.big, spec.bss.total) == (-128, 2**63 - 1, 5)
    ro["port"] = 1
    assert ro["port"] == 1


def test_out_of_range_message(spec: ObjectSpec) -> None:
    with pytest.raises(VariableError) as ei:
        spec.rodata.targ_uid = -5
    assert str(ei.value).startswith(
        "rodata variable 'targ_uid' is 'const volatile uid_t' (unsigned 32-bit): "
        "-5 is out of range")
    assert isinstance(ei.value, ObjectError) and isinstance(ei.value, ValueError)


@pytest.mark.parametrize("name,value,match", [
    ("targ_uid", 2**32, "out of range"),
    ("tiny", 128, r"\(signed 8-bit\): 128 is out of range \[-128, 127\]"),
    ("targ_uid", "12", "is not an integer"),
    ("targ_uid", 1.5, "is not an integer"),
    ("verbose", 2, "is not a bool"),
    ("run_mode", "MODE_NOPE", "not one of its enumerators .*MODE_ON"),
    ("comm_filter", "x" * 16, "only 15 fit with the terminating NUL"),
    ("sizes", [1, 2, 3, 4, 5], "5 elements do not fit in 4"),
    ("sizes", [1, -1], r"element \[1\]: -1 is out of range"),
    ("sizes", 3, "is not a list"),
    ("lim", {"nope": 1}, "no field 'nope'"),
    ("lim", {"flag_a": 8}, "does not fit in a 3-bit bitfield"),
    ("lim", {"hi": -1}, "field 'hi': -1 is out of range"),
    ("lim", [1], "is not a dict"),
])
def test_bad_values(spec: ObjectSpec, name: str, value: object, match: str) -> None:
    before = bytes(spec.maps[".rodata"].data)
    with pytest.raises(VariableError, match=match):
        spec.rodata.set(name, value)
    assert bytes(spec.maps[".rodata"].data) == before  # nothing half-written


def test_unknown_name_lists_close_names(spec: ObjectSpec) -> None:
    with pytest.raises(UnknownVariable, match="rodata has no variable 'targ_ui'; did you mean "
                                              "'targ_uid'"):
        spec.rodata.targ_ui = 1
    with pytest.raises(AttributeError):
        spec.rodata.nothing_like_this  # noqa: B018
    assert not hasattr(spec.rodata, "zzz")


def test_missing_section() -> None:
    spec = coreframe.open(obj("obj_maps"))
    with pytest.raises(ObjectError, match="has no global data section '.rodata'"):
        spec.rodata  # noqa: B018


@pytest.mark.parametrize("name,text,expected", [
    ("targ_uid", "1000", 1000),
    ("targ_uid", "0x10", 16),
    ("targ_pid", "-3", -3),
    ("verbose", "true", True),
    ("verbose", "0", False),
    ("run_mode", "MODE_OFF", 0),
    ("run_mode", "6", 6),
    ("comm_filter", "sshd", "sshd"),
    ("sizes", "4,5,6", [4, 5, 6, 0]),
    ("sizes", "[7, 8]", [7, 8, 0, 0]),
    ("lim", '{"lo": 12}', {"lo": 12, "hi": 7, "tag": "ab", "flag_a": 2, "flag_b": 9}),
])
def test_set_from_string(spec: ObjectSpec, name: str, text: str, expected: object) -> None:
    spec.rodata.set_from_string(name, text)
    assert spec.rodata.get(name) == expected


@pytest.mark.parametrize("name,text,match", [
    ("targ_uid", "abc", "'abc' is not an integer"),
    ("verbose", "maybe", "is not a bool"),
    ("lim", "{bad", "is not valid JSON"),
    ("targ_uid", "-1", "out of range"),
])
def test_set_from_string_errors(spec: ObjectSpec, name: str, text: str, match: str) -> None:
    with pytest.raises(VariableError, match=match):
        spec.rodata.set_from_string(name, text)


def test_set_variable_across_sections(spec: ObjectSpec) -> None:
    spec.set_variable("counter", "7")
    spec.set_variable("targ_uid", "12")
    spec.set_variable(".data.custom:custom_rw", "5")
    assert spec.data.counter == 7 and spec.rodata.targ_uid == 12
    assert spec.datasec(".data.custom").custom_rw == 5
    with pytest.raises(UnknownVariable, match="did you mean 'counter'"):
        spec.set_variable("countr", "1")


def test_listing(spec: ObjectSpec) -> None:
    names = spec.rodata.names()
    assert names[:3] == ["targ_uid", "targ_pid", "verbose"]
    assert "targ_uid" in dir(spec.rodata)
    var = spec.rodata.variable("comm_filter")
    assert (var.size, var.c_type) == (16, "const volatile char[16]")
    assert spec.bss.variable("hits").static
    assert dict(spec.data.items()) == {"counter": 42}
