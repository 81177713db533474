"""The tree stays runnable on Python 3.9 (requires-python), checked under any Python.

The matrix (``make test-matrix``, noxfile.py) runs the suite under 3.9 itself; this
finds the usual 3.10+ constructs on lines no test reaches, and on machines without
a 3.9 interpreter."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import py39check  # noqa: E402


def test_tree_has_nothing_39_cannot_run() -> None:
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "py39check.py")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout == "", proc.stdout + proc.stderr


BAD = '''\
from __future__ import annotations
import tomllib
from typing import Self, Any
from dataclasses import dataclass
Buf = bytes | bytearray
def f(a: int | None, xs: list[int] | None) -> str | None:
    y: int | None = None
    if isinstance(a, int | float):
        return dict(zip(xs, xs, strict=True))
    return (5).bit_count()
@dataclass(slots=True)
class C:
    x: int | None = None
'''

GOOD = '''\
from __future__ import annotations
try:
    import tomllib
except ImportError:
    import tomli as tomllib
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Self
    Buf = bytes | bytearray
FLAGS = 1 | 2
MASK = C.BPF_F_RDONLY | C.BPF_F_WRONLY
def f(a: int | None, xs: set[int]) -> str | None:
    y: int | None = None
    return isinstance(a, (int, float)) and xs | {1} and zip(xs, xs)
'''


def test_the_check_finds_each_construct(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(BAD)
    found = py39check.check_file(str(bad))
    lines = {line for line, _ in found}
    assert lines == {2, 3, 5, 8, 9, 10, 11}, found
    good = tmp_path / "good.py"
    good.write_text(GOOD)
    assert py39check.check_file(str(good)) == []


def test_match_is_found(tmp_path: Path) -> None:
    src = tmp_path / "match.py"
    src.write_text("x = 1\nmatch x:\n    case 1:\n        pass\n")
    # 3.9's own parser stops at it; a newer one parses it and names it
    assert [line for line, _ in py39check.check_file(str(src))] == [2]


def test_annotations_count_without_the_future_import(tmp_path: Path) -> None:
    src = tmp_path / "eager.py"
    src.write_text("def f(a: int | None) -> None:\n    x: str | None = None\n")
    assert [line for line, _ in py39check.check_file(str(src))] == [1, 2]
