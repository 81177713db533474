"""coreframe.runtime.compat: 3.9's stand-ins behave as the 3.10+ built-ins they replace.

Under 3.10+ the built-in is the oracle (same values, same error, same message); under
3.9 the expected values are spelled out."""

from __future__ import annotations

import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from coreframe.runtime.compat import entry_points_in, zip_strict, zip_strict_39

HAVE_STRICT = sys.version_info >= (3, 10)


def _outcome(make: object, args: list[list[int]], lazy: bool) -> tuple[object, str]:
    """(values, error message) of zipping ``args`` (as iterators when ``lazy``)."""
    its = [iter(a) for a in args] if lazy else [list(a) for a in args]
    got: list[tuple[int, ...]] = []
    try:
        for t in make(*its):  # type: ignore[operator]
            got.append(t)
    except ValueError as exc:
        # sized arguments fail before the first tuple; 3.10 yields the common part first
        return (None if not lazy else got), str(exc)
    return got, ""


@given(st.lists(st.lists(st.integers(0, 9), max_size=4), min_size=1, max_size=4),
       st.booleans())
def test_zip_strict_39_matches_the_builtin(args: list[list[int]], lazy: bool) -> None:
    mine_vals, mine_err = _outcome(zip_strict_39, args, lazy)
    if HAVE_STRICT:
        def builtin(*its: object) -> object:
            return zip(*its, strict=True)  # type: ignore[call-overload]  # py39: ok

        want_vals, want_err = _outcome(builtin, args, True)
        assert mine_err == want_err
        if lazy or not want_err:
            assert mine_vals == want_vals
    else:
        same = len({len(a) for a in args}) == 1
        assert (mine_err == "") is same
        if same:
            assert mine_vals == list(zip(*args))


def test_zip_strict_checks_lengths() -> None:
    assert list(zip_strict([1, 2], "ab")) == [(1, "a"), (2, "b")]
    with pytest.raises(ValueError, match="argument 2 is shorter than argument 1"):
        list(zip_strict([1, 2], [1]))
    with pytest.raises(ValueError, match="argument 3 is longer than arguments 1-2"):
        list(zip_strict(iter([1]), iter([1]), iter([1, 2])))
    it = iter(range(6))  # the same iterator twice pairs its items (btf/dump.py does this)
    assert list(zip_strict(it, it)) == [(0, 1), (2, 3), (4, 5)]
    it = iter(range(5))
    with pytest.raises(ValueError, match="argument 2 is shorter"):
        list(zip_strict(it, it))


def test_entry_points_in_names_the_distribution() -> None:
    found = {ep.name: dist for ep, dist in entry_points_in("console_scripts")}
    assert "coreframe" in found
    assert found["coreframe"] is not None and found["coreframe"].metadata["Name"] == "coreframe"
    tools = {ep.name: ep.value for ep, _ in entry_points_in("coreframe.tools")}
    assert tools["execsnoop"] == "coreframe_plugins.execsnoop:ExecSnoop"
    if HAVE_STRICT:
        import importlib.metadata as md

        assert sorted((ep.name, ep.value) for ep, _ in entry_points_in("coreframe.tools")) == \
            sorted((ep.name, ep.value) for ep in md.entry_points(group="coreframe.tools"))
