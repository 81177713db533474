"""Malformed BTF raises ObjectError naming the offset and the problem, nothing else."""

from __future__ import annotations

import random
import struct
from pathlib import Path
from typing import Any

import pytest

from coreframe.btf import BTF, Kind, btf_from_path
from coreframe.btf.ctypegen import ctype
from coreframe.btf.dump import dump_json, dump_raw
from coreframe.errors import ObjectError
from coreframe.runtime.compat import zip_strict


def _hdr(blob: bytes, **changes: int) -> bytes:
    names = ["magic", "version", "flags", "hdr_len", "type_off", "type_len", "str_off",
             "str_len"]
    values = dict(zip_strict(names, struct.unpack_from("<HBBIIIII", blob)))
    values.update(changes)
    return struct.pack("<HBBIIIII", *(values[n] for n in names)) + blob[24:]


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda b: b[:5], "too short"),
        (lambda b: _hdr(b, magic=0x1234), "bad magic 0x1234 at byte offset 0"),
        (lambda b: _hdr(b, magic=0x9FEB), "big-endian"),
        (lambda b: _hdr(b, version=2), "version 2"),
        (lambda b: _hdr(b, hdr_len=8), "header length 8"),
        (lambda b: _hdr(b, hdr_len=1 << 30), "header length"),
        (lambda b: _hdr(b, type_len=1 << 31), "type section"),
        (lambda b: _hdr(b, str_off=1 << 31), "string section"),
        (lambda b: _hdr(b, type_len=struct.unpack_from("<I", b, 12)[0] - 4),
         "byte offset"),
        (lambda b: b[:-1], "string section"),
    ],
)
def test_header_and_section_errors(synthetic_blob: bytes, mutate: Any, message: str) -> None:
    with pytest.raises(ObjectError, match=message):
        BTF.from_bytes(mutate(synthetic_blob))


def test_record_errors(raw_btf: Any) -> None:
    b = raw_btf()
    b.int_("int", 4, signed=True)
    b.add(25, "bogus", 0)
    with pytest.raises(ObjectError, match=r"BTF type #2 at byte offset 40: unknown BTF kind 25"):
        BTF.from_bytes(b.blob())

    b = raw_btf()
    b.int_("int", 4)
    b.add(4, "s", 4, vlen=1000, extra=b"\0" * 12)
    with pytest.raises(ObjectError, match=r"STRUCT record with vlen 1000 needs 12012 bytes"):
        BTF.from_bytes(b.blob())

    b = raw_btf()
    b.add(2, "", 0)
    b.types[-1] = b.types[-1][:8]
    with pytest.raises(ObjectError, match="truncated type record"):
        BTF.from_bytes(b.blob())

    b = raw_btf()
    b.add(2, "", 0)
    b.types[-1] = struct.pack("<III", 9999, 2 << 24, 0)
    with pytest.raises(ObjectError, match=r"byte offset 24: name offset 9999 outside"):
        BTF.from_bytes(b.blob())

    b = raw_btf()
    b.add(4, "s", 4, vlen=1, extra=struct.pack("<III", 5000, 0, 0))
    btf = BTF.from_bytes(b.blob())
    with pytest.raises(ObjectError, match="string offset 5000"):
        btf[1]
    with pytest.raises(ObjectError, match="string offset 5000"):
        dump_raw(btf)

    b = raw_btf()
    b.add(2, "", 5)
    b.add(10, "", 1)
    b.add(10, "", 2)
    b.types[0] = struct.pack("<III", 0, 10 << 24, 3)  # const loop 1 -> 3 -> 2 -> 1
    btf = BTF.from_bytes(b.blob())
    with pytest.raises(ObjectError, match="loop"):
        btf.resolve(1)
    with pytest.raises(ObjectError, match="loop"):
        btf.size_of(1)
    with pytest.raises(ObjectError):
        btf.c_type_name(1)


def _exercise(btf: BTF) -> None:
    """Touch every API a caller may use on untrusted BTF."""
    dump_raw(btf)
    dump_json(btf)
    for tid in range(len(btf)):
        t = btf[tid]
        btf.name_of(tid)
        btf.resolve(tid)
        try:
            btf.size_of(tid)
        except ObjectError:
            pass
        btf.c_type_name(tid)
        if t.kind in (Kind.STRUCT, Kind.UNION, Kind.DATASEC, Kind.ARRAY):
            ctype(btf, tid)
    for name in ("event", "int", "bits", "wide", "x"):
        btf.find(name)
        btf.find_prefix(name[:2])


def _blobs(allkinds_obj: Path, synthetic_blob: bytes) -> list[bytes]:
    return [btf_from_path(str(allkinds_obj)).to_bytes(), synthetic_blob]


def test_mutations_only_raise_object_error(allkinds_obj: Path, synthetic_blob: bytes) -> None:
    rng = random.Random(0xB7F)
    escaped: list[str] = []
    raised = 0
    for original in _blobs(allkinds_obj, synthetic_blob):
        _exercise(BTF.from_bytes(original))
        for i in range(600):
            blob = bytearray(original)
            mode = i % 3
            if mode == 0:
                blob = blob[: rng.randrange(len(blob))]
            else:
                for _ in range(rng.randint(1, 4)):
                    pos = rng.randrange(len(blob))
                    if mode == 1:
                        blob[pos] ^= 1 << rng.randrange(8)
                    else:
                        blob[pos] = rng.choice((0, 0xFF, rng.randrange(256)))
            try:
                _exercise(BTF.from_bytes(bytes(blob)))
            except ObjectError:
                raised += 1
            except Exception as e:  # noqa: BLE001 - the point is to catch anything else
                escaped.append(f"mutation {i}: {type(e).__name__}: {e}")
    assert not escaped, escaped[:5]
    assert raised > 100


def test_huge_declared_sizes_do_not_allocate(raw_btf: Any) -> None:
    b = raw_btf()
    i32 = b.int_("int", 4)
    arr = b.add(3, "", 0, extra=struct.pack("<III", i32, i32, 0xFFFFFFFF))
    b.add(4, "huge", 0xFFFFFFFF, vlen=1, extra=struct.pack("<III", b.s("a"), arr, 0))
    btf = BTF.from_bytes(b.blob())
    assert btf.size_of(arr) == 4 * 0xFFFFFFFF
    assert "4294967295" in dump_raw(btf)
    try:
        ctype(btf, 3)  # building the type must not allocate 16 GiB
    except ObjectError:
        pass
