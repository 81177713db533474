"""Privileges: without capabilities, commands that need them name the missing one.

Commands run under ``setpriv`` as nobody with an empty bounding set (or with
only some capabilities kept as ambient ones); the objects and the cache live
in a world-readable scratch directory removed at the end.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import hardkit
import pytest

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root to drop privileges"),
    pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs setpriv"),
    pytest.mark.unprivileged,
    pytest.mark.skipif(not hardkit.have_clang(), reason="needs clang and bpf/vmlinux.h"),
]


@pytest.fixture(scope="module")
def scratch() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="coreframe-hard-privs-"))
    try:
        os.chmod(d, 0o755)
        hardkit.build(d, "good")
        for p in d.iterdir():
            os.chmod(p, 0o644)
        (d / "cache").mkdir(mode=0o777)
        os.chmod(d / "cache", 0o1777)
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def _caps(*caps: str) -> list[str]:
    keep = "".join(f",+{c}" for c in caps)
    return ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
            f"--inh-caps=-all{keep}", f"--ambient-caps=-all{keep}" if caps else
            "--ambient-caps=-all", f"--bounding-set=-all{keep}"]


def _run(scratch: Path, argv: list[str], caps: tuple[str, ...] = ()) -> tuple[int, str]:
    import subprocess

    env = dict(os.environ, XDG_CACHE_HOME=str(scratch / "cache"), HOME=str(scratch))
    res = subprocess.run([*_caps(*caps), str(hardkit.COREFRAME), *argv], capture_output=True,
                         text=True, env=env, cwd="/", timeout=120)
    return res.returncode, res.stdout + res.stderr


@pytest.mark.parametrize("argv", [
    ["list"],
    ["info", "execsnoop"],
    ["object", "inspect", "{obj}"],
    ["object", "inspect", "--json", "{obj}"],
    ["btf", "dump", "{obj}"],
], ids=["list", "info", "object-inspect", "object-inspect-json", "btf-dump"])
def test_read_only_commands_work_unprivileged(scratch: Path, argv: list[str]) -> None:
    args = [a.format(obj=scratch / "good.bpf.o") for a in argv]
    code, out = _run(scratch, args)
    assert code == 0, out
    assert "Traceback" not in out


def test_list_says_why_not_ready_unprivileged(scratch: Path) -> None:
    code, out = _run(scratch, ["list"])
    assert code == 0
    assert "needs CAP_BPF" in out


@pytest.mark.parametrize(("argv", "caps", "needed"), [
    (["object", "load", "{obj}"], (), "CAP_BPF"),
    (["object", "load", "{obj}", "--attach", "--duration", "0"], (), "CAP_BPF"),
    (["run", "execsnoop", "--duration", "0"], (), "CAP_BPF"),
    (["run", "readhist", "--duration", "0"], (), "CAP_BPF"),
    (["features"], (), "CAP_BPF"),
    # CAP_BPF alone is not enough for tracing programs: the kernel wants CAP_PERFMON too.
    (["object", "load", "{obj}"], ("bpf",), "CAP_PERFMON"),
    (["run", "execsnoop", "--duration", "0"], ("bpf",), "CAP_PERFMON"),
], ids=["load", "load-attach", "execsnoop", "readhist", "features", "load-bpf-only",
        "execsnoop-bpf-only"])
def test_privileged_commands_name_the_capability(scratch: Path, argv: list[str],
                                                 caps: tuple[str, ...], needed: str) -> None:
    args = [a.format(obj=scratch / "good.bpf.o") for a in argv]
    code, out = _run(scratch, args, caps)
    lines = [ln for ln in out.splitlines() if ln.strip()]
    assert code == 1, out
    assert "Traceback" not in out
    assert len(lines) == 1, out
    assert "permission denied" in lines[0] and needed in lines[0], out


def test_attach_with_bpf_and_perfmon_names_what_is_still_missing(scratch: Path) -> None:
    """Loading works; attaching a tracepoint then needs tracefs, which is root-only here."""
    code, out = _run(scratch, ["object", "load", str(scratch / "good.bpf.o"), "--attach",
                               "--duration", "0"], ("bpf", "perfmon"))
    if code == 0:
        pytest.skip("tracefs is readable by unprivileged users on this machine")
    assert "Traceback" not in out
    assert "permission denied (needs CAP_" in out, out


def test_unprivileged_cache_dir_is_private(scratch: Path) -> None:
    code, out = _run(scratch, ["object", "inspect", str(scratch / "good.bpf.o")])
    assert code == 0, out
    cache = scratch / "cache" / "coreframe"
    if not cache.exists():
        pytest.skip("inspect did not need the kernel BTF index")
    st = cache.stat()
    assert st.st_uid == 65534
    assert stat.S_IMODE(st.st_mode) == 0o700
    for f in cache.iterdir():
        assert f.stat().st_uid == 65534
        assert not stat.S_IMODE(f.stat().st_mode) & 0o077
