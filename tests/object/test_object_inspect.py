"""inspect_object(): the data behind `coreframe object inspect`."""

from __future__ import annotations

import json
import os

import pytest
from objpaths import all_objects, obj

import coreframe
from coreframe.object.inspect import format_inspection, inspect_object, map_flag_names
from coreframe.sys import consts as C


def test_programs_maps_variables() -> None:
    data = inspect_object(coreframe.open(obj("obj_globals")))
    assert data["object"] == "obj_globals" and data["license"] == "GPL"
    (prog,) = data["programs"]
    assert prog == {
        "name": "globals_prog", "section": "tracepoint/syscalls/sys_enter_getppid",
        "type": "tracepoint", "attach_kind": "tracepoint",
        "attach_target": "syscalls/sys_enter_getppid", "auto_attach": True,
        "insns": prog["insns"], "autoload": True,
    }
    maps = {m["name"]: m for m in data["maps"]}
    assert maps[".rodata"]["kernel_name"] == "obj_glob.rodata"
    assert maps[".rodata"]["flags"] == ["BPF_F_RDONLY_PROG", "BPF_F_MMAPABLE"]
    variables = {(v["section"], v["name"]): v for v in data["variables"]}
    uid = variables[(".rodata", "targ_uid")]
    assert (uid["type"], uid["value"], uid["size"]) == ("const volatile uid_t", 1000, 4)
    assert variables[(".data", "counter")]["value"] == 42
    assert data["core_relocations"] == [] and data["core_target"] == "none needed"
    json.dumps(data)  # JSON-ready
    text = format_inspection(data)
    assert "globals_prog" in text and "targ_uid" in text


def test_maps_with_inner_and_slots() -> None:
    data = inspect_object(coreframe.open(obj("obj_maps")))
    maps = {m["name"]: m for m in data["maps"]}
    assert maps["outer"]["inner"] == {"type": "array", "key_size": 4, "value_size": 8,
                                      "max_entries": 2}
    assert maps["outer"]["initial_slots"] == {"0": "inner_a", "2": "inner_b"}
    assert maps["counts"]["key_type"] == "struct count_key"
    assert maps["counts"]["pinning"] is None


@pytest.mark.skipif(not os.path.exists("/sys/kernel/btf/vmlinux"), reason="no kernel BTF")
def test_core_relocations_resolved_against_kernel() -> None:
    data = inspect_object(coreframe.open(obj("core_task")))
    relos = data["core_relocations"]
    assert relos and data["core_target"].startswith("running kernel")
    first = relos[0]
    assert first["function"] == "exec_direct" and first["kind"] == "byte_off"
    assert first["type"] == "struct task_struct" and first["status"] == "ok"
    assert isinstance(first["new"], int)


def test_core_against_given_btf() -> None:
    spec = coreframe.open(obj("core_task"))
    data = inspect_object(spec, target_btf=spec.btf)  # the object's own BTF: nothing moves
    assert data["core_target"] == "given BTF"
    ok = [r for r in data["core_relocations"] if r["status"] == "ok"]
    assert ok and all(r["old"] == r["new"] for r in ok if r["kind"] == "byte_off")


@pytest.mark.parametrize("path", all_objects(), ids=lambda p: p.name)
def test_every_object_inspects(path: os.PathLike[str]) -> None:
    data = inspect_object(coreframe.open(path))
    assert format_inspection(data)


def test_flag_names() -> None:
    assert map_flag_names(C.BPF_F_NO_PREALLOC | 1 << 30) == ["BPF_F_NO_PREALLOC", hex(1 << 30)]
    assert map_flag_names(0) == []
