"""The on-disk CO-RE result cache: a replay gives exactly what resolving gives."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import coreframe
from coreframe.btf import kernel
from coreframe.btf.core import CoreRelocator
from coreframe.btf.replay import CachedRelocator

ROOT = Path(__file__).resolve().parents[2]
VMLINUX = "/sys/kernel/btf/vmlinux"
OBJECTS = sorted(
    str(p) for p in [*ROOT.glob("plugins/objects/*.bpf.o"), *ROOT.glob("tests/objects/*.bpf.o")])
pytestmark = pytest.mark.skipif(not os.path.exists(VMLINUX), reason="no kernel BTF")


def _relos(path: str) -> tuple[object, list[object]]:
    spec = coreframe.open(path)
    ext = spec.btf_ext
    relos = [r for rs in ext.core_relos.values() for r in rs] if ext else []
    return spec, relos


def _outcomes(relocator: CoreRelocator, relos: list[object]) -> list[object]:
    out: list[object] = []
    for relo in relos:
        try:
            out.append(relocator.resolve(relo))
        except Exception as e:  # an unresolvable relocation must replay as one too
            out.append((type(e).__name__, str(e)))
    return out


def _no_target(*args: object, **kwargs: object) -> object:
    raise AssertionError("a replay must not load the kernel's BTF")


class _CountingTarget:
    """A load_target that counts how often the kernel's BTF was asked for."""

    def __init__(self) -> None:
        self.loads = 0

    def __call__(self) -> object:
        self.loads += 1
        return kernel.vmlinux()


def _recorded(spec: object, relos: list[object]) -> list[object]:
    """Resolve through a CachedRelocator and write its results; the outcomes."""
    first = CachedRelocator(spec.btf, kernel.vmlinux)  # type: ignore[attr-defined]
    out = _outcomes(first, relos)
    first.save()
    return out


def _core_objects() -> list[str]:
    return [p for p in OBJECTS if _relos(p)[1]]


@pytest.mark.parametrize("path", _core_objects(), ids=os.path.basename)
def test_replay_equals_resolving(btf_cache_dir: Path, path: str) -> None:
    spec, relos = _relos(path)
    fresh = _outcomes(CoreRelocator(spec.btf, kernel.vmlinux()), relos)

    first = CachedRelocator(spec.btf, kernel.vmlinux)
    assert _outcomes(first, relos) == fresh
    first.save()
    if not all(isinstance(r, tuple) for r in fresh):
        assert list(btf_cache_dir.glob("core-*.res"))

    if any(isinstance(r, tuple) for r in fresh):
        return  # an error stops a load before save(): nothing to replay
    replay = CachedRelocator(spec.btf, _no_target)
    assert _outcomes(replay, relos) == fresh


def test_other_order_resolves_again(btf_cache_dir: Path) -> None:
    """Candidate pruning is order dependent: a different order is not replayed."""
    spec, relos = _relos(str(ROOT / "tests/objects/core_flavors.bpf.o"))
    assert len(relos) > 1
    _recorded(spec, relos)
    reordered = relos[::-1]
    target = _CountingTarget()
    again = CachedRelocator(spec.btf, target)
    assert _outcomes(again, reordered) == _outcomes(
        CoreRelocator(spec.btf, kernel.vmlinux()), reordered)
    assert target.loads == 1


@pytest.mark.parametrize("damage", ["truncate", "flip", "empty", "other_code"])
def test_damaged_or_stale_cache_is_ignored(btf_cache_dir: Path, damage: str,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    spec, relos = _relos(str(ROOT / "plugins/objects/execsnoop.bpf.o"))
    expect = _recorded(spec, relos)
    (path,) = btf_cache_dir.glob("core-*.res")
    good = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(good[: len(good) // 2])
    elif damage == "flip":
        blob = bytearray(good)
        blob[len(blob) // 2] ^= 0x40
        path.write_bytes(bytes(blob))
    elif damage == "empty":
        path.write_bytes(b"")
    else:
        import coreframe.btf.replay as relo

        monkeypatch.setattr(relo, "_cache_stamp", lambda: (relo._CACHE_VERSION, 0, 0))
    target = _CountingTarget()
    again = CachedRelocator(spec.btf, target)
    assert _outcomes(again, relos) == expect
    assert target.loads == 1
    again.save()
    if damage != "other_code":
        assert path.read_bytes() == good


def test_other_kernel_misses(btf_cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec, relos = _relos(str(ROOT / "plugins/objects/execsnoop.bpf.o"))
    _recorded(spec, relos)
    monkeypatch.setattr(kernel, "vmlinux_digest", lambda: b"\x01" * 32)
    target = _CountingTarget()
    _outcomes(CachedRelocator(spec.btf, target), relos)
    assert target.loads == 1


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to load programs")
def test_loader_replays_without_kernel_btf(btf_cache_dir: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Second load of execsnoop: same instructions to the kernel, kernel BTF never read."""
    import coreframe.programs as programs

    sent: list[list[bytes]] = []
    real_load = programs.load_program

    def load_program(name: str, prog_type: int, insns: bytes, *args: object,
                     **kwargs: object) -> object:
        sent[-1].append(bytes(insns))  # loads run on threads: compared as sorted lists
        return real_load(name, prog_type, insns, *args, **kwargs)

    monkeypatch.setattr(programs, "load_program", load_program)
    for attempt in range(2):
        sent.append([])
        if attempt:
            kernel.vmlinux.cache_clear()
            monkeypatch.setattr(kernel, "load_indexed", _no_target)
        spec = coreframe.open(str(ROOT / "plugins/objects/execsnoop.bpf.o"))
        spec.programs.handle_exit.autoload = False
        with spec.load():
            pass
    assert len(sent[0]) == 4 and sorted(sent[0]) == sorted(sent[1])


def test_patch_errors_name_the_relocation(btf_cache_dir: Path) -> None:
    """A replayed result that does not fit its instruction fails like a computed one."""
    from coreframe import asm
    from coreframe.errors import RelocationError

    spec, relos = _relos(str(ROOT / "plugins/objects/execsnoop.bpf.o"))
    relo = relos[0]
    res = CoreRelocator(spec.btf, kernel.vmlinux()).resolve(relo)
    insns = bytearray(asm.exit_())  # no instruction at the relocated index
    cached = CachedRelocator(spec.btf, kernel.vmlinux)
    with pytest.raises(RelocationError) as got:
        cached.apply(insns, 5, relo, res)
    with pytest.raises(RelocationError) as want:
        CoreRelocator(spec.btf, kernel.vmlinux()).apply(insns, 5, relo, res)
    assert str(got.value) == str(want.value)
    assert "CO-RE relocation <" in str(got.value) and "out of range" in str(got.value)
