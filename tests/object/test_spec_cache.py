"""The parsed-object cache: a spec read back from the user cache equals a fresh parse."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from objpaths import all_objects, obj

import coreframe
from coreframe.btf.ext import BTFExt
from coreframe.btf.types import BTF
from coreframe.object import ProgramSpec
from coreframe.object import spec as objmod
from coreframe.object.elf import ElfFile
from coreframe.object.reader import ElfReader
from coreframe.object.sections import parse_section
from coreframe.runtime.cache import Codec
from coreframe.runtime.startup import Record

TRAMPOLINE = {"fentry", "fexit", "fmod_ret", "lsm", "lsm_cgroup", "freplace"}

@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    d = tmp_path / "cache"
    monkeypatch.setenv("COREFRAME_CACHE_DIR", str(d))
    yield d


def _spec_files(d: Path) -> list[Path]:
    return sorted(d.glob("spec-*.obj"))


def _tree(x: Any) -> Any:
    """Everything a spec holds, as plain comparable data (independent of the codec)."""
    if isinstance(x, (int, str, bytes, float)) or x is None:
        return x
    if isinstance(x, bytearray):
        return ("bytearray", bytes(x))
    if isinstance(x, BTF):
        return ("BTF", x.to_bytes())
    if isinstance(x, BTFExt):
        return ("BTFExt", _tree(x.func_info), _tree(x.core_relos), _tree(x.line_info),
                _tree(x.line_rows), x.version, x.flags)
    if isinstance(x, ElfFile):
        return ("ElfFile", x.name, x.data, _tree(x.sections), _tree(x.symbols),
                _tree(x.relocations))
    if isinstance(x, dict):
        return (type(x).__name__, sorted((repr(k), _tree(v)) for k, v in x.items()))
    if isinstance(x, (list, tuple)):
        return (type(x).__name__, [_tree(v) for v in x])
    # attributes the codec leaves out are rebuilt on demand: compared through their
    # public accessors instead (``_elf`` as ``elf``, ``_section_def`` as ``section_def``)
    skip = getattr(type(x), "_codec_transient", ())
    attrs = {k: v for k, v in getattr(x, "__dict__", {}).items() if k not in skip}
    for name in skip:
        attrs[name.lstrip("_")] = getattr(x, name.lstrip("_"))
    for cls in type(x).__mro__:
        for name in cls.__dict__.get("__slots__", ()):
            attrs[name] = getattr(x, name)
    return (type(x).__name__, sorted((k, _tree(v)) for k, v in attrs.items()))


def _parsed_fresh(path: str) -> coreframe.object.spec.ObjectSpec:
    with open(path, "rb") as f:
        spec = coreframe.object.spec.ObjectSpec(ElfFile(f.read(), name=path),
                                           coreframe.object.spec.object_name(path))
    return spec


def _forbid_parse(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(self: object) -> None:
        raise AssertionError("the object was parsed, not read from the cache")

    monkeypatch.setattr(ElfReader, "parse", fail)


@pytest.mark.parametrize("path", all_objects(), ids=lambda p: p.name)
def test_cached_spec_equals_fresh_parse(path: Path, cache_dir: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    first = coreframe.open(path)
    assert len(_spec_files(cache_dir)) == 1, "every project object must be cacheable"
    with monkeypatch.context() as m:
        _forbid_parse(m)
        cached = coreframe.open(path)
        again = coreframe.open(path)
    assert "_elf" not in vars(cached)  # made on first use, not stored
    assert not any("_section_def" in vars(p) for p in cached.programs.values())
    assert _tree(cached) == _tree(first) == _tree(_parsed_fresh(str(path)))
    # each open hands out its own copy: editing one spec leaves the next untouched
    assert cached is not again
    for name, prog in cached.programs.items():
        assert prog is not again.programs[name]
        assert prog.insns is not again.programs[name].insns
        prog.insns[:8] = b"\0" * 8
        prog.autoload = not prog.autoload
    for m_ in cached.maps.values():
        m_.max_entries += 1
    assert _tree(again) == _tree(first)
    # shared objects stay shared: a program is the same object in every table
    for sec, funcs in cached.functions.items():
        for f in funcs:
            owner = cached.programs.get(f.name) or cached.subprograms[(sec, f.sec_insn_off)]
            assert f is owner


def _xlated(spec: coreframe.object.spec.ObjectSpec) -> dict[str, bytes]:
    """The instructions the kernel holds for each program (after its own rewrites)."""
    from xlated_oracle import program_insns

    for m in spec.maps.values():
        m.pinning = 0
    for p in spec.programs.values():  # this kernel refuses BPF trampolines
        if p.section_def and p.section_def.attach_kind in TRAMPOLINE:
            p.autoload = False
    with spec.load() as loaded:
        return {name: program_insns(prog.fd) for name, prog in loaded.programs.items()}


@pytest.mark.parametrize("name", ["execsnoop", "readhist"])
def test_cached_spec_loads_the_same_instructions(name: str, cache_dir: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to load BPF programs")
    path = str(Path(objmod.__file__).resolve().parents[2] / "plugins" / "objects"
               / f"{name}.bpf.o")
    fresh = _xlated(coreframe.open(path))
    with monkeypatch.context() as m:
        _forbid_parse(m)
        cached = _xlated(coreframe.open(path))
    assert cached == fresh and fresh


def test_changed_file_is_parsed_again(tmp_path: Path, cache_dir: Path) -> None:
    target = tmp_path / "x.bpf.o"
    shutil.copy(obj("obj_maps"), target)
    maps_before = set(coreframe.open(target).maps)
    shutil.copy(obj("obj_globals"), target)  # same path, other bytes
    spec = coreframe.open(target)
    assert _tree(spec) == _tree(_parsed_fresh(str(target)))
    assert set(spec.maps) != maps_before
    assert len(_spec_files(cache_dir)) == 1  # one file per path, rewritten


def test_same_bytes_other_name_is_not_shared(tmp_path: Path, cache_dir: Path) -> None:
    a = tmp_path / "alpha.bpf.o"
    b = tmp_path / "beta.bpf.o"
    shutil.copy(obj("obj_globals"), a)
    shutil.copy(obj("obj_globals"), b)
    coreframe.open(a)
    spec = coreframe.open(b)
    assert spec.name == "beta"
    assert coreframe.open(a).name == "alpha"
    assert coreframe.open(a, name="gamma").name == "gamma"
    assert len(_spec_files(cache_dir)) == 3


@pytest.mark.parametrize("damage", ["flip", "truncate", "empty", "garbage", "foreign"])
def test_damaged_cache_file_is_ignored_and_rewritten(damage: str, cache_dir: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    path = obj("obj_calls")
    want = _tree(coreframe.open(path))
    (file,) = _spec_files(cache_dir)
    data = file.read_bytes()
    if damage == "flip":
        data = data[:100] + bytes([data[100] ^ 0xFF]) + data[101:]
    elif damage == "truncate":
        data = data[:len(data) // 2]
    elif damage == "empty":
        data = b""
    elif damage == "garbage":  # a valid checksum over a payload that is not a spec
        import marshal
        import zlib

        payload = marshal.dumps(("not", "a", "spec", (99, 1, 2)))
        data = zlib.crc32(payload).to_bytes(4, "little") + payload
    else:  # well-formed, but the encoded value names a class index it does not have
        import marshal
        import zlib

        stamp, key, raw, _encoded = marshal.loads(data[4:])
        payload = marshal.dumps((stamp, key, raw, (4, 999, [])))
        data = zlib.crc32(payload).to_bytes(4, "little") + payload
    file.write_bytes(data)
    assert _tree(coreframe.open(path)) == want
    with monkeypatch.context() as m:
        _forbid_parse(m)
        assert _tree(coreframe.open(path)) == want


def test_other_parser_code_misses(cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = obj("obj_calls")
    coreframe.open(path)
    monkeypatch.setattr(objmod.SpecCache, "VERSION", objmod.SpecCache.VERSION + 1)
    calls = []
    real = ElfReader.parse

    def counting(self: object) -> None:
        calls.append(1)
        real(self)  # type: ignore[arg-type]

    monkeypatch.setattr(ElfReader, "parse", counting)
    coreframe.open(path)
    assert calls == [1]


def test_unusable_cache_dir_still_opens(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    d = tmp_path / "open"
    d.mkdir(mode=0o777)
    d.chmod(0o777)  # writable by others: not trusted, so not used
    monkeypatch.setenv("COREFRAME_CACHE_DIR", str(d))
    spec = coreframe.open(obj("obj_calls"))
    assert spec.programs
    assert list(d.iterdir()) == []


def test_bytes_are_not_cached(cache_dir: Path) -> None:
    with open(obj("obj_calls"), "rb") as f:
        coreframe.open(f.read())
    assert _spec_files(cache_dir) == []


def test_cache_keeps_a_bounded_number_of_files(tmp_path: Path, cache_dir: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(objmod.SpecCache, "KEEP", 3)
    for i in range(6):
        target = tmp_path / f"o{i}.bpf.o"
        shutil.copy(obj("obj_calls"), target)
        coreframe.open(target)
    assert len(_spec_files(cache_dir)) == 3


class _Node:
    def __init__(self, value: object) -> None:
        self.value = value
        self.peer: _Node | None = None


class _Slotted:
    __slots__ = ("a", "b")


def test_codec_keeps_sharing_and_cycles() -> None:
    codec = Codec([_Node, _Slotted])
    a, b = _Node([1, "x", b"y", 2.5, None, True]), _Node(bytearray(b"z"))
    a.peer, b.peer = b, a
    s = _Slotted()
    s.a = (a, b, {"k": (1, 2)})
    out = codec.decode(codec.encode(s))
    x, y, d = out.a
    assert x.peer is y and y.peer is x
    assert x.value == [1, "x", b"y", 2.5, None, True] and y.value == bytearray(b"z")
    assert type(y.value) is bytearray and d == {"k": (1, 2)}
    assert not hasattr(out, "b")


class _Pair(Record, fields="left right"):
    __slots__ = ()


class _Other(Record, fields="left right"):
    __slots__ = ()


def test_codec_lists_of_plain_records_round_trip() -> None:
    codec = Codec([_Node, _Pair, _Other])
    plain = [_Pair(i, f"s{i}") for i in range(5)]
    mixed = [_Pair(1, 2), _Other(1, 2)]
    nested = [_Pair(1, _Node(3)), _Pair(2, None)]
    shared = _Pair(7, "x")
    data = codec.encode((plain, mixed, nested, [shared, shared], [_Pair(0, 1)]))
    assert data[1][0][0] == 9 and data[1][3][0] == 9  # the one-node form, used for these
    out_plain, out_mixed, out_nested, out_shared, single = codec.decode(data)
    assert out_plain == plain and all(type(p) is _Pair for p in out_plain)
    assert [type(p) for p in out_mixed] == [_Pair, _Other] and out_mixed == mixed
    assert out_nested[0].right.value == 3 and out_nested[1] == _Pair(2, None)
    assert out_shared == [shared, shared] and single == [_Pair(0, 1)]
    assert type(single[0]) is _Pair


class _WithScratch:
    _codec_transient = ("scratch",)

    def __init__(self) -> None:
        self.kept = [1, 2]
        self.scratch = object()  # not encodable: must not even be looked at


def test_codec_leaves_transient_attributes_out() -> None:
    codec = Codec([_WithScratch])
    out = codec.decode(codec.encode(_WithScratch()))
    assert out.kept == [1, 2] and not hasattr(out, "scratch")


def test_program_with_a_section_def_off_the_table_is_not_cached(cache_dir: Path) -> None:
    """A spec whose SectionDef the SEC() table would not give back is never stored."""
    spec = objmod.ObjectSpec.__new__(objmod.ObjectSpec)
    prog = ProgramSpec("p", "tracepoint/x/y", 0, bytearray(8), [], True)
    sd = parse_section("tracepoint/x/y")
    prog.section_def = sd._replace(attach_target="edited")
    spec.programs = objmod.ProgramDict(p=prog)
    cache = objmod.SpecCache(str(cache_dir / "x.o"), "x", b"x")
    cache.write(spec)
    assert not _spec_files(cache_dir)


def test_codec_refuses_unknown_types_and_data() -> None:
    codec = Codec([_Node])
    with pytest.raises(TypeError, match="cannot cache"):
        codec.encode(_Node(object()))
    with pytest.raises(TypeError, match="cannot cache"):
        codec.encode({1: _Slotted()})
    for bad in [(42,), (4, 5, []), (5, 0), (0, 7), (2, [(3, [1])])]:
        with pytest.raises(ValueError):
            codec.decode(bad)


def test_cached_bytes_answers_only_its_own_key(cache_dir: Path) -> None:
    from coreframe.runtime.cache import cached_bytes

    calls: list[int] = []

    def compute(value: bytes) -> bytes:
        calls.append(1)
        return value

    assert cached_bytes("t", (1, b"k"), lambda: compute(b"one")) == b"one"
    assert cached_bytes("t", (1, b"k"), lambda: compute(b"two")) == b"one"  # stored
    assert cached_bytes("t", (2, b"k"), lambda: compute(b"two")) == b"two"  # other key
    assert len(calls) == 2
    for f in cache_dir.glob("t-*.bin"):  # damaged files are recomputed and rewritten
        f.write_bytes(f.read_bytes()[:-3])
    assert cached_bytes("t", (1, b"k"), lambda: compute(b"three")) == b"three"
    assert cached_bytes("t", (1, b"k"), lambda: compute(b"four")) == b"three"
    assert len(calls) == 3


def test_sanitized_btf_is_cached(cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to load BPF")
    from coreframe.btf import sanitize as sanitize_mod
    from coreframe.features import btf_kinds

    path = str(Path(objmod.__file__).resolve().parents[2] / "plugins" / "objects"
               / "execsnoop.bpf.o")
    spec = coreframe.open(path)
    want = sanitize_mod.sanitize(spec.btf.to_bytes(), spec.section_sizes, {},
                                 kernel_kinds=btf_kinds())
    spec.load().close()
    (stored,) = cache_dir.glob("sanitized-btf-*.bin")
    assert want in stored.read_bytes()

    def fail(*args: object, **kwargs: object) -> bytes:
        raise AssertionError("sanitized again")

    monkeypatch.setattr(sanitize_mod, "sanitize", fail)
    with coreframe.open(path).load() as obj:
        assert obj.btf_fd is not None


def test_open_and_load_leave_the_gc_as_they_found_it(cache_dir: Path) -> None:
    import gc

    path = obj("obj_calls")
    assert gc.isenabled()
    coreframe.open(path)
    assert gc.isenabled()
    with pytest.raises(coreframe.ObjectError):
        coreframe.open(b"not an ELF")
    assert gc.isenabled()
    gc.disable()
    try:
        coreframe.open(path)
        assert not gc.isenabled()  # a caller's choice is kept
    finally:
        gc.enable()
    if os.geteuid() == 0:
        spec = coreframe.open(path)
        spec.load().close()
        assert gc.isenabled()


def test_unparsed_elf_reads_its_tables_on_first_use() -> None:
    with open(obj("obj_calls"), "rb") as f:
        data = f.read()
    lazy = ElfFile.unparsed(data, "x.o")
    assert "sections" not in vars(lazy)
    fresh = ElfFile(data, name="x.o")
    assert lazy.sections == fresh.sections and lazy.symbols == fresh.symbols
    assert lazy.relocations == fresh.relocations and lazy.section(".text") is not None
    with pytest.raises(AttributeError, match="no_such"):
        lazy.no_such  # noqa: B018


def test_spec_cache_stamp_covers_the_reader_code() -> None:
    """Every module the ELF reader runs is in the stamp: editing one re-parses."""
    import subprocess
    import sys

    code = ("import sys, coreframe.object.reader\n"
            "print(' '.join(m.__file__ for n, m in sys.modules.items()\n"
            "               if n.startswith('coreframe') and getattr(m, '__file__', None)))")
    files = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True).stdout.split()
    root = Path(objmod.__file__).resolve().parents[1]
    used = {str(Path(f).resolve().relative_to(root)) for f in files}
    messages_only = {"__init__.py", "errors.py", "sys/__init__.py", "btf/__init__.py"}
    assert used - messages_only <= set(objmod.SpecCache.SOURCES), used


# What docs/architecture.md says a warm open imports ("Start-up"): a module added to this
# path costs every tool's start its lookup and load, so adding one is a decision, made
# here and in the doc together.
WARM_OPEN_MODULES = {
    "coreframe", "coreframe.errors", "coreframe.runtime", "coreframe.runtime.startup",
    "coreframe.runtime.cache", "coreframe.runtime.compat",
    "coreframe.object", "coreframe.object.spec",
    "coreframe.object.parts", "coreframe.btf", "coreframe.btf.types", "coreframe.btf.kinds",
    "coreframe.btf.ext",
}


def test_warm_open_imports_only_the_documented_modules(tmp_path: Path) -> None:
    """A spec read from the cache imports neither the reader nor the syscall layer."""
    import subprocess
    import sys

    code = ("import sys, coreframe\n"
            "coreframe.open(sys.argv[1])\n"
            "print(' '.join(sorted(n for n in sys.modules if n.startswith('coreframe'))))")
    env = dict(os.environ, COREFRAME_CACHE_DIR=str(tmp_path / "cache"))
    runs = [subprocess.run([sys.executable, "-c", code, obj("obj_calls")], env=env,
                           capture_output=True, text=True, check=True).stdout.split()
            for _ in range(2)]
    assert "coreframe.object.reader" in runs[0]  # the first open parsed: the cache is used
    assert set(runs[1]) == WARM_OPEN_MODULES
