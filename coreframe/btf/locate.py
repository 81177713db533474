"""Which BTF CO-RE relocates against when the caller names none.

A kernel built without ``CONFIG_DEBUG_INFO_BTF`` has no ``/sys/kernel/btf/vmlinux``,
yet CO-RE only needs the layout of the types a program touches. The target is,
first match wins (libbpf's order, ``btf_custom_path`` before the kernel's own,
with BTFHub's archive layout as the standard locations):

1. the BTF the program was told to use: ``coreframe run --btf PATH``,
   ``coreframe.open(path, btf=...)``, ``ObjectSpec.load(target_btf=...)``, or
   :func:`set_default` (what ``--btf`` calls);
2. ``$COREFRAME_BTF``;
3. the running kernel's ``/sys/kernel/btf/vmlinux`` (an empty one counts as absent:
   that is how a test hides it);
4. a per-kernel file on the search path, laid out like BTFHub's archive:
   ``DIR/ID/VERSION_ID/ARCH/RELEASE.btf`` or ``.btf.tar.xz`` (ID and VERSION_ID from
   os-release, ARCH BTFHub's name for ``uname -m``, RELEASE ``uname -r``), where the
   directories are ``$COREFRAME_BTF_PATH`` (``:``-separated, in order) and then the
   ``btf/`` directory of the running tool's package (:func:`add_search_dir`).

The kernel's own BTF beats a shipped file because it cannot be stale; a shipped file
only stands in where the kernel has none. Nothing here parses BTF: finding the target
costs a few ``stat`` calls, so it runs before the loader creates anything.
"""

from __future__ import annotations

import os

from ..errors import BTFError, FeatureMissing
from ..runtime.startup import Record
from ..sys.host import VMLINUX_BTF

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

ENV_BTF = "COREFRAME_BTF"
ENV_BTF_PATH = "COREFRAME_BTF_PATH"
# BTFHub's archive, where per-kernel BTFs of distributions' kernels without BTF live
BTFHUB_URL = "https://github.com/aquasecurity/btfhub-archive/raw/main"
# `uname -m` -> the architecture directory BTFHub uses
BTFHUB_ARCH = {"aarch64": "arm64"}
OS_RELEASE = ("/etc/os-release", "/usr/lib/os-release")
SUFFIXES = (".btf", ".btf.tar.xz")


class Target(Record, fields="path origin"):
    """The BTF file CO-RE relocates against and where the choice came from
    (``--btf``, ``COREFRAME_BTF``, ``kernel``, ``search path``, ...)."""

    __slots__ = ()

    path: str
    origin: str

    @property
    def is_kernel(self) -> bool:
        return self.origin == "kernel"


class KernelBTFMissing(FeatureMissing):
    """The kernel has no BTF and none was given or found: CO-RE cannot run.

    The command line exits 2 on it (before anything is loaded): the fix is an
    argument or a file, as for a usage error.
    """

    exit_code = 2

    def __init__(self, message: str) -> None:
        FeatureMissing.__init__(self, "kernel BTF")
        self.args = (message,)

    def __str__(self) -> str:
        return str(self.args[0])


_explicit: list[Target] = []
_package_dirs: list[str] = []


def set_default(path: str | None, origin: str = "--btf") -> None:
    """Make ``path`` the target of every later load in this process (None: undo)."""
    _explicit.clear()
    if path is not None:
        _explicit.append(Target(os.fspath(path), origin))


def add_search_dir(path: str) -> None:
    """Search ``path`` (a tool package's ``btf/`` directory) after ``$COREFRAME_BTF_PATH``."""
    if path not in _package_dirs:
        _package_dirs.append(path)


def search_dirs() -> list[str]:
    """The search path, in order: ``$COREFRAME_BTF_PATH``, then the tools' package dirs."""
    env = os.environ.get(ENV_BTF_PATH, "")
    dirs = [d for d in env.split(os.pathsep) if d]
    return dirs + [d for d in _package_dirs if d not in dirs]


def _os_release() -> dict[str, str]:
    for path in OS_RELEASE:
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                text = f.read()
        except OSError:
            continue
        out = {}
        for line in text.splitlines():
            key, sep, value = line.partition("=")
            if sep and key.strip() in ("ID", "VERSION_ID"):
                out[key.strip()] = value.strip().strip("\"'")
        return out
    return {}


def kernel_key() -> tuple[str, str, str, str]:
    """(ID, VERSION_ID, ARCH, RELEASE) naming this kernel's file in BTFHub's layout."""
    rel = _os_release()
    uname = os.uname()
    return (rel.get("ID", "linux"), rel.get("VERSION_ID", ""),
            BTFHUB_ARCH.get(uname.machine, uname.machine), uname.release)


def relative_paths() -> list[str]:
    """``ID/VERSION_ID/ARCH/RELEASE.btf`` and its ``.btf.tar.xz``, as searched."""
    os_id, version, arch, release = kernel_key()
    stem = os.path.join(os_id, version, arch, release) if version else os.path.join(
        os_id, arch, release)
    return [stem + suffix for suffix in SUFFIXES]


def kernel_has_btf() -> bool:
    """Whether ``/sys/kernel/btf/vmlinux`` exists with content."""
    try:
        return os.stat(VMLINUX_BTF).st_size > 0
    except OSError:
        return False


def find(explicit: Any = None) -> Target:
    """The target BTF by the precedence above; :class:`KernelBTFMissing` when none.

    ``explicit`` (a path) is what the caller named; a ``BTF`` object is the caller's
    business and never reaches here.
    """
    if explicit is not None:
        return _named(Target(os.fspath(explicit), "btf argument"))
    if _explicit:
        return _named(_explicit[0])
    env = os.environ.get(ENV_BTF)
    if env:
        return _named(Target(env, ENV_BTF))
    if kernel_has_btf():
        return Target(VMLINUX_BTF, "kernel")
    dirs = search_dirs()
    names = relative_paths()
    for directory in dirs:
        for name in names:
            path = os.path.join(directory, name)
            if os.path.isfile(path):
                return Target(path, "search path")
    raise KernelBTFMissing(missing_message(dirs, names))


def _named(target: Target) -> Target:
    """A named file that is the kernel's own BTF is the kernel target (its results are
    cached per kernel)."""
    if os.path.realpath(target.path) == VMLINUX_BTF and kernel_has_btf():
        return Target(VMLINUX_BTF, "kernel")
    return target


def missing_message(dirs: list[str], names: list[str]) -> str:
    """The one line that says the kernel has no BTF and how to get one."""
    os_id, version, arch, release = kernel_key()
    where = ", ".join(dirs) if dirs else f"none (set {ENV_BTF_PATH})"
    url = f"{BTFHUB_URL}/{os_id}/{version}/{arch}/{release}.btf.tar.xz"
    return (f"this kernel has no BTF ({VMLINUX_BTF} is missing or empty) and no {names[0]}"
            f"[.tar.xz] was found on the BTF search path ({where}): download {url} (BTFHub) "
            f"into a directory of {ENV_BTF_PATH}, or make one with `coreframe btf min OBJECT "
            f"--btf VMLINUX -o FILE` on a machine with this kernel's BTF, and pass "
            f"--btf FILE (or {ENV_BTF}=FILE)")


def read(path: str) -> bytes:
    """The BTF bytes of a BTFHub ``.tar.xz`` (it holds one ``RELEASE.btf``)."""
    import tarfile  # only for compressed archives: never on a plain start

    try:
        with tarfile.open(path, "r:xz") as tar:
            for member in tar:
                if member.isfile() and member.name.endswith(".btf"):
                    f = tar.extractfile(member)
                    if f is not None:
                        return f.read()
    except (OSError, tarfile.TarError, EOFError) as e:
        raise BTFError(f"{path}: cannot read the BTFHub archive: {e}") from e
    raise BTFError(f"{path}: the archive holds no *.btf file (BTFHub's hold RELEASE.btf)")
