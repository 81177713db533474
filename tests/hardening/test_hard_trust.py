"""Trust boundaries: the BTF index cache, pin paths and plugin discovery."""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

import hardkit
import pytest

from coreframe.errors import ObjectError

VMLINUX = "/sys/kernel/btf/vmlinux"


# ---- the BTF index cache -----------------------------------------------------------------


@pytest.fixture
def cache_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    from coreframe.btf import kernel

    d = tmp_path / "cache"
    monkeypatch.setenv("COREFRAME_CACHE_DIR", str(d))
    kernel.vmlinux.cache_clear()
    yield d
    kernel.vmlinux.cache_clear()


def test_cache_dir_is_created_private(cache_env: Path) -> None:
    from coreframe.btf import kernel

    assert kernel.cache_dir() == str(cache_env)
    st = cache_env.stat()
    assert st.st_uid == os.getuid()
    assert stat.S_IMODE(st.st_mode) == 0o700


@pytest.mark.parametrize("mode", [0o770, 0o707, 0o777])
def test_cache_dir_writable_by_others_is_not_used(cache_env: Path, mode: int) -> None:
    from coreframe.btf import kernel

    cache_env.mkdir()
    os.chmod(cache_env, mode)
    assert kernel.cache_dir() is None


def test_cache_dir_symlink_is_not_followed(cache_env: Path, tmp_path: Path) -> None:
    from coreframe.btf import kernel

    real = tmp_path / "elsewhere"
    real.mkdir(mode=0o700)
    cache_env.symlink_to(real)
    assert kernel.cache_dir() is None


@pytest.mark.skipif(not os.path.exists(VMLINUX), reason="no kernel BTF")
def test_forged_stamp_and_index_are_ignored(cache_env: Path) -> None:
    """A cache entry for other BTF content (stamp naming another digest) is never applied."""
    from coreframe.btf import Kind, kernel

    good = kernel.vmlinux().find("task_struct", Kind.STRUCT)
    kernel.save_pending_indexes()
    assert list(cache_env.glob("btf-*.idx")), "the cold start's index was written"
    stamps = list(cache_env.glob("vmlinux-*.sum"))
    for s in stamps:  # claim the running kernel hashes to something else
        blob = bytearray(s.read_bytes())
        blob[-1] ^= 0xFF
        s.write_bytes(bytes(blob))
    for idx in cache_env.glob("btf-*.idx"):
        blob = bytearray(idx.read_bytes())
        for i in range(64, min(len(blob), 4096), 4):  # scramble offsets, keep the header
            blob[i] ^= 0x5A
        idx.write_bytes(bytes(blob))
    kernel.vmlinux.cache_clear()
    btf = kernel.vmlinux()
    assert btf.find("task_struct", Kind.STRUCT) == good
    assert btf[good[0]].name == "task_struct"


# ---- pin paths ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def objdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not hardkit.have_clang():
        pytest.skip("needs clang and bpf/vmlinux.h")
    return tmp_path_factory.mktemp("hard_trust")


@pytest.fixture(scope="module")
def good_spec(objdir: Path) -> object:
    import coreframe

    return coreframe.open(str(hardkit.build(objdir, "good")))


@pytest.mark.parametrize("name", ["../escape", "a/b", "..", ".", "", "/etc/passwd"])
def test_pin_paths_cannot_escape_the_root(good_spec: object, tmp_path: Path, name: str) -> None:
    from coreframe.object.loader import Loader

    loader = Loader(good_spec, None, str(tmp_path))
    with pytest.raises(ObjectError, match="pin"):
        loader._pin_path(name)


def test_pin_path_through_symlink_is_refused(good_spec: object, tmp_path: Path) -> None:
    from coreframe.object.loader import Loader

    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (root / "sneaky").symlink_to(outside / "sneaky")
    spec = good_spec
    with pytest.raises(ObjectError, match="escapes pin root"):
        Loader(spec, None, str(root))._pin_path("sneaky")
    assert Loader(spec, None, str(root))._pin_path("fine") == str(root / "fine")


@pytest.fixture
def pin_root() -> Path:
    base = Path("/sys/fs/bpf")
    if os.geteuid() != 0 or not os.path.ismount(base):
        pytest.skip("needs root and bpffs at /sys/fs/bpf")
    root = base / f"hard_trust_{secrets.token_hex(4)}"
    root.mkdir()
    yield root
    for p in root.iterdir():
        os.unlink(p)
    root.rmdir()


def test_hostile_map_name_cannot_pin_outside(objdir: Path, pin_root: Path) -> None:
    """A map whose BTF/ELF name was rewritten to a relative path is refused before pinning."""
    import coreframe

    token = secrets.token_hex(4)
    pin = f"hard_pin_{token}"  # 17 characters
    evil = "../../../tmp/" + "x" * (len(pin) - 13)
    assert len(evil) == len(pin)
    data = hardkit.build(objdir, f"pin_{token}", pin=pin).read_bytes()
    data = data.replace(pin.encode(), evil.encode())
    before = set(os.listdir("/tmp"))
    spec = coreframe.open(data)
    with pytest.raises(ObjectError, match="pin path"):
        spec.load(pin_root=str(pin_root))
    assert not list(pin_root.iterdir())
    assert set(os.listdir("/tmp")) - before == set()


@pytest.mark.parametrize("pinned", [False, True])
def test_maps_are_pinned_only_when_asked(objdir: Path, pin_root: Path, pinned: bool) -> None:
    import coreframe

    pin = f"hard_pin_{secrets.token_hex(4)}"
    obj = hardkit.build(objdir, pin, pin=pin if pinned else None)
    with coreframe.open(str(obj)).load(pin_root=str(pin_root)) as loaded:
        assert sorted(os.listdir(pin_root)) == ([pin] if pinned else [])
        assert "hard_counts" in loaded.maps
    # pinning outlives the process on purpose; nothing else was left behind
    assert sorted(os.listdir(pin_root)) == ([pin] if pinned else [])


# ---- plugins -----------------------------------------------------------------------------


def _fake_dist(site: Path, name: str, entry_points: dict[str, str]) -> None:
    info = site / f"{name}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    lines = "".join(f"{k} = {v}\n" for k, v in entry_points.items())
    (info / "entry_points.txt").write_text(f"[coreframe.tools]\n{lines}")


def test_plugins_come_only_from_entry_points(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """A module on sys.path is not a tool; broken entry points never hide the others."""
    from coreframe.cli import registry

    site = tmp_path / "site"
    site.mkdir()
    (site / "hard_loose_tool.py").write_text(
        "from coreframe.tool import Tool\n\nclass Loose(Tool):\n    name = 'loose'\n")
    (site / "hard_raising.py").write_text("raise RuntimeError('plugin import exploded')\n")
    (site / "hard_notatool.py").write_text("class NotATool:\n    pass\n")
    (site / "hard_badready.py").write_text(
        "from coreframe.tool import Tool\n\nclass BadReady(Tool):\n    name = 'hard_badready'\n"
        "    @classmethod\n    def readiness(cls):\n        raise OSError('probe blew up')\n")
    _fake_dist(site, "hard_fake_plugins", {
        "hard_raising": "hard_raising:Tool",
        "hard_notatool": "hard_notatool:NotATool",
        "hard_missing": "hard_no_such_module:Tool",
        "hard_badready": "hard_badready:BadReady",
    })
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    registry.reset_cache()
    try:
        tools = registry.discover()
        assert "loose" not in tools and "hard_loose_tool" not in tools
        for broken in ("hard_raising", "hard_notatool", "hard_missing"):
            assert tools[broken].cls is None and tools[broken].error
            with pytest.raises(Exception, match="is broken"):
                registry.get_tool(broken)
        assert "plugin import exploded" in tools["hard_raising"].error
        ready = tools["hard_badready"].readiness()  # what `coreframe list` shows
        assert not ready.ready and "probe blew up" in ready.detail
        assert tools["execsnoop"].cls is not None  # first-party tools still load
        assert registry.get_tool("readhist").cls is not None
    finally:
        registry.reset_cache()
