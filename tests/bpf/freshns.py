"""Run a command as a fresh Debian 12 machine would: with hand-made state hidden.

CI runs on the machine a developer worked on, so a file made there by hand can make a
build pass that fails everywhere else. That is how a missing ``/usr/include/asm`` went
unseen: Debian's linux-libc-dev keeps ``asm/`` only under the multiarch directory
(``/usr/include/x86_64-linux-gnu/asm``), which ``clang -target bpf`` does not search.

:func:`hiding` wraps a command so that it runs in a private mount namespace in which
each path of :data:`HIDDEN` does not exist, whatever this machine has there. An overlay
is mounted on ``/usr/include`` with ``/usr/include`` itself as its lower layer and the
paths are removed inside it: the removal is a whiteout in the overlay's upper layer and
never touches the real directory, and a symlink is removed as a link (a tmpfs mounted
on a symlink would land on its target instead). The namespace ends with the command.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

#: what a fresh Debian 12 does not have and this machine might
HIDDEN = ("/usr/include/asm",)

_SCRIPT = r"""
set -e
mount -t overlay overlay -o "lowerdir=/usr/include,upperdir=$1/upper,workdir=$1/work" /usr/include
shift
for p in %s; do
  rm -rf "$p"
  if [ -e "$p" ] || [ -L "$p" ]; then echo "freshns: $p still there" >&2; exit 97; fi
done
exec "$@"
"""


def require() -> None:
    """Skip unless mount namespaces and overlayfs can be used (root with unshare)."""
    if os.geteuid() != 0:
        pytest.skip("hiding machine state needs root (a private mount namespace)")
    if shutil.which("unshare") is None:
        pytest.skip("unshare (util-linux) is not installed")


def hiding(cmd: list[str], scratch: Path) -> list[str]:
    """``cmd`` wrapped to run where every path in HIDDEN is missing; scratch holds the overlay."""
    for d in ("upper", "work"):
        (scratch / d).mkdir(parents=True, exist_ok=True)
    script = _SCRIPT % " ".join(HIDDEN)
    return ["unshare", "-m", "--propagation", "private", "sh", "-c", script, "freshns",
            str(scratch), *cmd]
