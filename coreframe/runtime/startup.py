"""Start-up measures, in one place: CPython's C modules in place of slower stdlib
ones, small stand-ins for namedtuple, functools.cache and IntEnum, and pausing the
cyclic GC while the loader allocates.

``coreframe run`` is benchmarked against C tools (bench/execsnoop_bench.py), and
what a tool's first event waits for is mostly Python importing and allocating.
Three measures earned their cost there; everything in coreframe gets them from
this module rather than spelling CPython's private modules itself:

- C modules instead of their Python wrappers, which import more (``threading``
  imports ``collections``, ``signal`` builds ``enum`` classes, ``json`` imports
  ``re``, ``operator.py`` is a Python module over ``_operator``, ``ctypes``
  builds some forty types and ``pythonapi``). The names below are the C
  functions themselves; ``_ctypes`` and ``_json`` are extension modules, loaded
  only by :func:`ctypes_core` and :func:`json_string_encoder`. A Python without
  them (not CPython) falls back to the stdlib module.
- :class:`Record`, :class:`memoize` and :class:`KernelEnum` in place of
  ``collections.namedtuple``, ``functools.cache`` and ``enum.IntEnum``, with the
  interfaces the code and tests use (positional or keyword construction with
  defaults, ``_replace``, ``_asdict``, ``_make``, ``cache_clear``, ``cache_info``,
  iteration and ``.name``): ``namedtuple`` compiles a ``__new__`` with ``exec`` for
  each class (the loader has a dozen), and importing ``collections``,
  ``functools`` or ``enum`` is a measurable part of a tool's start. They live here
  rather than in a module of their own because every path imports both: a module
  costs a tool's start its lookup and load even when it is small.
- The cyclic GC paused during bursts of allocation that create no garbage
  cycles (imports, decoding a cached spec or the kernel BTF index, CO-RE):
  :func:`gc_paused` for a call, :func:`pause_gc`/:func:`resume_gc` for the CLI,
  which pauses for a tool's whole start-up and resumes once it is attached.

``tests/cli/test_cli_options.py`` checks that ``coreframe run`` imports none of
the slow modules; bench/ measures what these save.
"""

from __future__ import annotations

import gc

try:
    from _operator import and_, getitem, index, itemgetter, rshift
    from _signal import SIGINT, SIGTERM
    from _signal import signal as set_signal_handler
    from _thread import allocate_lock, start_new_thread
except ImportError:  # not CPython: the public modules have the same functions
    from _thread import start_new_thread
    from operator import and_, getitem, index, itemgetter, rshift
    from signal import SIGINT, SIGTERM
    from signal import signal as set_signal_handler
    from threading import _allocate_lock as allocate_lock  # type: ignore[attr-defined]

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from types import ModuleType
    from typing import Any

__all__ = [
    "SIGINT", "SIGTERM", "CacheInfo", "KernelEnum", "Record", "allocate_lock", "and_",
    "ctypes_core", "gc_paused", "getitem", "index", "itemgetter", "json_string_encoder",
    "memoize", "pause_gc", "record", "resume_gc", "rshift", "set_signal_handler",
    "start_new_thread",
]


def ctypes_core() -> ModuleType:
    """``_ctypes``, the C half of ctypes (what :mod:`coreframe.sys.cdata` builds on)."""
    import _ctypes

    return _ctypes


def json_string_encoder() -> Callable[[str], str]:
    """The function ``json.dumps(ensure_ascii=False)`` quotes a str with, without
    importing json (and re)."""
    try:
        from _json import encode_basestring
    except ImportError:  # not CPython
        from json.encoder import py_encode_basestring as encode_basestring
    return encode_basestring


def pause_gc() -> bool:
    """Turn the cyclic GC off; returns whether it was on (pass that to :func:`resume_gc`)."""
    was_enabled = gc.isenabled()
    gc.disable()
    return was_enabled


def resume_gc(was_enabled: bool = True) -> None:
    """Turn the cyclic GC back on if it was on before :func:`pause_gc`."""
    if was_enabled:
        gc.enable()


def gc_paused(func: Callable[..., Any]) -> Callable[..., Any]:
    """Run ``func`` with the cyclic GC off, and turn it back on after if it was on.

    For the loader's bursts of allocation (imports, decoding a spec or the kernel
    BTF index, resolving CO-RE): tens of thousands of objects and no garbage
    cycles, yet the collections they trigger are a measurable part of a warm
    open. A caller that turned the GC off itself keeps it off.
    """

    def paused(*args: Any, **kwargs: Any) -> Any:
        if not gc.isenabled():
            return func(*args, **kwargs)
        gc.disable()
        try:
            return func(*args, **kwargs)
        finally:
            gc.enable()

    paused.__wrapped__ = func  # type: ignore[attr-defined]
    for name in ("__module__", "__name__", "__qualname__", "__doc__"):
        setattr(paused, name, getattr(func, name))
    return paused


# Records, memoize and kernel enums: namedtuple, functools.cache and enum.IntEnum without
# importing collections, functools or enum (see the module docstring).

_tuple_new = tuple.__new__


class _RecordBase(tuple):
    """Methods shared by every record class (see :func:`record`).

    A record has exactly one value per field (its constructors check), so the plain
    ``zip`` of fields and values below cannot drop one.
    """

    __slots__ = ()
    _fields: tuple[str, ...] = ()
    _field_defaults: dict[str, Any] = {}

    @classmethod
    def _make(cls, iterable: Iterable[Any]) -> Any:
        values = _tuple_new(cls, iterable)
        if len(values) != len(cls._fields):
            raise TypeError(f"{cls.__name__} takes {len(cls._fields)} values, "
                            f"got {len(values)}")
        return values

    def _replace(self, **changes: Any) -> Any:
        values = [changes.pop(name, value) for name, value in zip(self._fields, self)]
        if changes:
            raise TypeError(f"{type(self).__name__} has no field(s) {sorted(changes)}")
        return _tuple_new(type(self), values)

    def _asdict(self) -> dict[str, Any]:
        return dict(zip(self._fields, self))

    def __getnewargs__(self) -> tuple[Any, ...]:
        return tuple(self)

    def __repr__(self) -> str:
        pairs = zip(self._fields, self)
        body = ", ".join(f"{name}={value!r}" for name, value in pairs)
        return f"{type(self).__name__}({body})"


class Record(_RecordBase):
    """Base of a tuple subclass with named fields: ``namedtuple``'s interface.

    ``class Point(Record, fields="x y", defaults=(0,)): __slots__ = ()`` makes one
    class (a namedtuple subclass costs two: the generated class and the one that
    adds methods). ``defaults`` apply to the rightmost fields, as with namedtuple.
    """

    __slots__ = ()

    def __init_subclass__(cls, fields: str | None = None, defaults: tuple[Any, ...] = (),
                          **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if fields is not None:
            _install_fields(cls, tuple(fields.replace(",", " ").split()), defaults)


def _install_fields(cls: type, fields: tuple[str, ...], defaults: tuple[Any, ...]) -> None:
    n = len(fields)
    if len(defaults) > n:
        raise TypeError("more defaults than fields")
    field_defaults = dict(zip(fields[n - len(defaults):], defaults))
    positions = {name: i for i, name in enumerate(fields)}

    def _bind(cls: type, args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[Any]:
        if len(args) > n:
            raise TypeError(f"{cls.__name__} takes {n} values, got {len(args)}")
        values: list[Any] = [*args, *([_MISSING] * (n - len(args)))]
        for key, value in kwargs.items():
            i = positions.get(key)
            if i is None:
                raise TypeError(f"{cls.__name__} has no field {key!r}")
            if values[i] is not _MISSING:
                raise TypeError(f"{cls.__name__} got two values for {key!r}")
            values[i] = value
        for i, value in enumerate(values):
            if value is _MISSING:
                name = fields[i]
                if name not in field_defaults:
                    raise TypeError(f"{cls.__name__} is missing field {name!r}")
                values[i] = field_defaults[name]
        return values

    def __new__(cls: type, *args: Any, **kwargs: Any) -> Any:
        if kwargs or len(args) != n:
            args = _bind(cls, args, kwargs)  # type: ignore[assignment]
        return _tuple_new(cls, args)

    cls.__new__ = staticmethod(__new__)  # type: ignore[assignment]
    cls._fields = fields  # type: ignore[attr-defined]
    cls._field_defaults = field_defaults  # type: ignore[attr-defined]
    cls.__match_args__ = fields  # type: ignore[attr-defined]
    for i, name in enumerate(fields):
        setattr(cls, name, property(itemgetter(i), doc=f"Field {i}: {name}"))


def record(typename: str, field_names: str, defaults: tuple[Any, ...] = ()) -> type:
    """A record class made on the fly: ``namedtuple(typename, field_names, defaults=...)``."""
    return type(typename, (Record,), {"__slots__": ()}, fields=field_names,  # type: ignore[call-arg]
                defaults=defaults)


class _Missing:
    __slots__ = ()


_MISSING = _Missing()


class CacheInfo(Record, fields="hits misses maxsize currsize"):
    """What :meth:`memoize`'s ``cache_info()`` reports (as functools does)."""

    __slots__ = ()


class memoize:  # noqa: N801 - used as a decorator, like functools.cache
    """Remember a function's result for each set of positional arguments.

    ``functools.cache`` without functools: same ``cache_clear`` / ``cache_info``.
    """

    def __init__(self, func: Callable[..., Any]) -> None:
        self._func = func
        self._results: dict[Any, Any] = {}
        self._hits = 0
        self.__wrapped__ = func
        self.__doc__ = func.__doc__
        self.__name__ = func.__name__
        self.__qualname__ = func.__qualname__
        self.__module__ = func.__module__

    def __call__(self, *args: Any) -> Any:
        results = self._results
        if args in results:
            self._hits += 1
            return results[args]
        result = results[args] = self._func(*args)
        return result

    def cache_clear(self) -> None:
        self._results.clear()
        self._hits = 0

    def cache_info(self) -> CacheInfo:
        return CacheInfo(self._hits, len(self._results), None, len(self._results))


class _KernelEnumType(type):
    """Metaclass of :class:`KernelEnum`: int class attributes become named members."""

    def __new__(mcls, name: str, bases: tuple[type, ...], ns: dict[str, Any]) -> Any:
        values = {k: v for k, v in ns.items() if not k.startswith("_") and type(v) is int}
        for k in values:
            del ns[k]
        cls = super().__new__(mcls, name, bases, ns)
        cls._members = []
        cls._by_value = {}
        for k, v in values.items():
            member = int.__new__(cls, v)
            member.name = k
            setattr(cls, k, member)
            cls._members.append(member)
            cls._by_value.setdefault(v, member)
        return cls

    def __call__(cls, value: Any) -> Any:
        try:
            return cls._by_value[value]
        except (KeyError, TypeError):
            raise ValueError(f"{value!r} is not a valid {cls.__name__}") from None

    def __iter__(cls) -> Any:
        return iter(cls._members)

    def __len__(cls) -> int:
        return len(cls._members)

    def __getitem__(cls, name: str) -> Any:
        member = getattr(cls, name, None)
        if not isinstance(member, cls):
            raise KeyError(name)
        return member


class KernelEnum(int, metaclass=_KernelEnumType):
    """An int with a kernel name (``Kind.STRUCT.name == "STRUCT"``), like IntEnum.

    It behaves as IntEnum does where coreframe relies on it (iteration, ``Kind(4)``,
    ``.name``/``.value``, int equality and hashing, ``str()`` giving the number)
    without importing the enum module, which costs more at start-up than all of
    this package's BTF parsing of a small object.
    """

    name: str
    _members: list[Any]
    _by_value: dict[int, Any]

    @property
    def value(self) -> int:
        return int(self)

    def __repr__(self) -> str:
        return f"<{type(self).__name__}.{self.name}: {int(self)}>"

    __str__ = int.__repr__

    def __reduce__(self) -> Any:
        return type(self), (int(self),)
