"""What differs between the Pythons coreframe runs on (3.9 to 3.13), in one place.

Root-run tools use the system interpreter, and the machines that still run 5.10-era
kernels (Debian 11, RHEL 9, Amazon Linux 2023) carry Python 3.9. Code elsewhere
writes what 3.9 understands and takes from here the few things 3.9 spells
differently or lacks; each falls through to the built-in where there is one, so
a newer Python pays nothing for them.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator
    from importlib.metadata import Distribution, EntryPoint
    from typing import Any

__all__ = ["entry_points_in", "zip_strict", "zip_strict_39"]


def zip_strict_39(*iterables: Iterable[Any]) -> Iterator[tuple[Any, ...]]:
    """``zip(*iterables, strict=True)`` for 3.9: ValueError when the lengths differ.

    Sized arguments (lists, tuples, bytes, dicts) are compared up front and zipped
    by the C ``zip``; anything else goes item by item, as 3.10 does it, with 3.10's
    messages.
    """
    try:
        lengths = [len(it) for it in iterables]  # type: ignore[arg-type]
    except TypeError:
        return _zip_checked(iterables)
    if lengths and min(lengths) != max(lengths):
        # what 3.10 meets first: the first argument to run out, when one after the
        # first does, else the first that is longer than the first
        short = lengths.index(min(lengths))
        if short:
            raise ValueError(_zip_mismatch(short, "shorter"))
        raise ValueError(_zip_mismatch(next(i for i, n in enumerate(lengths) if n > lengths[0]),
                                       "longer"))
    return zip(*iterables)


if sys.version_info >= (3, 10):
    from _functools import partial

    zip_strict = partial(zip, strict=True)
else:
    zip_strict = zip_strict_39


def _zip_mismatch(i: int, which: str) -> str:
    """3.10's message: argument i+1 against those before it (1-based)."""
    return (f"zip() argument {i + 1} is {which} than argument"
            f"{' ' if i == 1 else 's 1-'}{i}")


def _zip_checked(iterables: tuple[Iterable[Any], ...]) -> Iterator[tuple[Any, ...]]:
    iterators = [iter(it) for it in iterables]
    if not iterators:
        return
    items: list[Any] = []
    try:
        while True:
            items = []
            for it in iterators:
                items.append(next(it))
            yield tuple(items)
    except StopIteration:
        pass
    if items:  # argument len(items) ran out while those before it had one more
        raise ValueError(_zip_mismatch(len(items), "shorter"))
    done = object()
    for i, it in enumerate(iterators[1:], 1):
        if next(it, done) is not done:
            raise ValueError(_zip_mismatch(i, "longer"))


def entry_points_in(group: str) -> list[tuple[EntryPoint, Distribution | None]]:
    """Every entry point of ``group`` with the distribution declaring it, as
    ``importlib.metadata.entry_points(group=...)`` lists them from 3.10 on: the
    first distribution of each name on ``sys.path``, in path order.

    3.9's ``entry_points()`` takes no ``group``, returns a dict, and its entry
    points do not know their distribution.
    """
    import importlib.metadata as md

    if sys.version_info >= (3, 10):
        return [(ep, getattr(ep, "dist", None)) for ep in md.entry_points(group=group)]
    out: list[tuple[EntryPoint, Distribution | None]] = []
    seen: set[str] = set()
    for dist in md.distributions():
        name = _normalized(dist.metadata["Name"] or "")
        if name in seen:
            continue
        seen.add(name)
        out.extend((ep, dist) for ep in dist.entry_points if ep.group == group)
    return out


def _normalized(name: str) -> str:
    """A distribution name as importlib.metadata compares them (PEP 503, then _ for -)."""
    import re

    return re.sub(r"[-_.]+", "-", name).lower().replace("-", "_")
