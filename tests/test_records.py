"""coreframe.runtime.startup: what the loader uses in place of namedtuple and functools.cache."""

from __future__ import annotations

import pickle

import pytest

from coreframe.runtime.startup import memoize, record


class Point(record("Point", "x y z", defaults=(0,))):
    __slots__ = ()

    @property
    def norm1(self) -> int:
        return abs(self.x) + abs(self.y) + abs(self.z)


def test_record_behaves_like_namedtuple() -> None:
    p = Point(1, 2, 3)
    assert p == (1, 2, 3) and p.x == 1 and p.z == 3 and p.norm1 == 6
    assert Point(1, 2) == (1, 2, 0)
    assert Point(y=5, x=4) == (4, 5, 0)
    assert Point(1, z=9, y=2) == (1, 2, 9)
    assert p._replace(y=7) == (1, 7, 3) and type(p._replace(y=7)) is Point
    assert p._asdict() == {"x": 1, "y": 2, "z": 3}
    assert Point._make([7, 8, 9]) == (7, 8, 9)
    assert repr(p) == "Point(x=1, y=2, z=3)"
    assert Point._fields == ("x", "y", "z") and Point._field_defaults == {"z": 0}
    assert pickle.loads(pickle.dumps(p)) == p
    x, y, z = p
    assert (x, y, z) == (1, 2, 3)
    with pytest.raises(AttributeError):
        p.x = 5  # type: ignore[misc]
    with pytest.raises(AttributeError):
        p.w = 5  # type: ignore[attr-defined]


@pytest.mark.parametrize("call", [
    lambda: Point(1),                     # y missing
    lambda: Point(1, 2, 3, 4),            # too many
    lambda: Point(1, 2, x=3),             # x twice
    lambda: Point(1, 2, w=3),             # no such field
    lambda: Point(1, 2, 3)._replace(w=1),
    lambda: Point._make([1, 2]),
])
def test_record_rejects_bad_arguments(call: object) -> None:
    with pytest.raises(TypeError):
        call()  # type: ignore[operator]


def test_memoize_caches_per_arguments() -> None:
    calls: list[tuple[int, ...]] = []

    @memoize
    def f(*args: int) -> int:
        """doc"""
        calls.append(args)
        return sum(args)

    assert f(1, 2) == 3 and f(1, 2) == 3 and f() == 0
    assert calls == [(1, 2), ()]
    assert f.cache_info().hits == 1 and f.cache_info().currsize == 2
    assert f.__doc__ == "doc" and f.__name__ == "f"
    f.cache_clear()
    assert f(1, 2) == 3 and calls[-1] == (1, 2)
    with pytest.raises(TypeError):
        f([1])  # type: ignore[arg-type]  # unhashable, as with functools.cache
