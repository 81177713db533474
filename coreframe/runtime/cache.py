"""The user cache directory, and a codec that stores parsed objects in it.

Several start-up costs are pure functions of files that rarely change (the
kernel's BTF, a tool's object file, coreframe's own code): the kernel BTF index,
CO-RE results and parsed objects are kept here so a warm start only reads them
back. Everything here is a cache: files are private (0600 in a 0700 directory
owned by the user), written atomically, checked on read, and any failure only
costs time.
"""

from __future__ import annotations

import os
import stat
from itertools import repeat

from .compat import zip_strict

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import Any


def cache_dir() -> str | None:
    """The cache directory, created 0700; None when it is unusable or unsafe.

    ``COREFRAME_CACHE_DIR`` wins, then ``$XDG_CACHE_HOME/coreframe``, then
    ``~/.cache/coreframe``. A directory owned by someone else or writable by
    group/others is not trusted: its files could feed us forged data.
    """
    path = os.environ.get("COREFRAME_CACHE_DIR")
    if not path:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(
            os.path.expanduser("~"), ".cache")
        path = os.path.join(base, "coreframe")
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
        st = os.lstat(path)
    except OSError:
        return None
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o022:
        return None
    return path


def atomic_write(path: str, *chunks: bytes) -> None:
    """Write a private (0600) file via tmp + rename, so readers never see half of it.

    Failure is swallowed: everything written here is a cache that only saves time.
    """
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            for chunk in chunks:
                f.write(chunk)
        os.replace(tmp, path)
    except OSError:
        try:
            os.unlink(tmp)
        except OSError:
            pass


_stamps: dict[tuple[Any, ...], tuple[int, ...] | None] = {}


def source_stamp(version: int, anchor: str, *names: str) -> tuple[int, ...] | None:
    """Size and mtime of source files next to ``anchor`` (a module's ``__file__``).

    A cache keyed by it is never read by different code. None (do not cache)
    when a source is missing, e.g. a bytecode-only install. Taken once per
    process (the code a process runs does not change under it).
    """
    key = (version, anchor, names)
    if key not in _stamps:
        _stamps[key] = _source_stamp(version, anchor, names)
    return _stamps[key]


def _source_stamp(version: int, anchor: str, names: tuple[str, ...]) -> tuple[int, ...] | None:
    here = os.path.dirname(os.path.abspath(anchor))
    out: list[int] = [version]
    for name in names:
        try:
            st = os.stat(os.path.join(here, name))
        except OSError:
            return None
        out += (st.st_size, st.st_mtime_ns)
    return tuple(out)


def read_marshal(path: str) -> Any:
    """The value stored by :func:`write_marshal`, or None if absent or damaged."""
    import marshal
    import zlib

    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return None
    payload = memoryview(data)[4:]
    if len(data) < 4 or zlib.crc32(payload) != int.from_bytes(data[:4], "little"):
        return None
    try:
        return marshal.loads(payload)
    except (ValueError, EOFError, TypeError):
        return None


def write_marshal(path: str, value: Any) -> None:
    """Store ``value`` (marshal-able data only: no code runs when it is read back)."""
    import marshal
    import zlib

    try:
        payload = marshal.dumps(value)
    except ValueError:
        return
    atomic_write(path, zlib.crc32(payload).to_bytes(4, "little"), payload)


def prune(directory: str, prefix: str, suffix: str, keep: int) -> None:
    """Delete the oldest ``prefix*suffix`` files beyond the newest ``keep``."""
    try:
        found = []
        for entry in os.scandir(directory):
            if entry.name.startswith(prefix) and entry.name.endswith(suffix):
                found.append((entry.stat().st_mtime_ns, entry.path))
    except OSError:
        return
    found.sort(reverse=True)
    for _, path in found[keep:]:
        try:
            os.unlink(path)
        except OSError:
            pass


def cached_bytes(prefix: str, key: Any, compute: Callable[[], bytes], keep: int = 64) -> bytes:
    """``compute()``, or what it returned for an equal ``key`` in an earlier process.

    ``key`` (marshal-able: bytes, str, ints, tuples) holds every input of
    ``compute``, the source stamp of its code included; it is stored whole and
    compared exactly, so a file can only answer for its own key.
    """
    import marshal
    import zlib

    directory = cache_dir()
    try:
        blob = marshal.dumps(key)
    except ValueError:
        directory = None
    if directory is None:
        return compute()
    path = os.path.join(directory, f"{prefix}-{zlib.crc32(blob):08x}-{len(blob)}.bin")
    stored = read_marshal(path)
    if (type(stored) is tuple and len(stored) == 2 and stored[0] == blob
            and type(stored[1]) is bytes):
        return stored[1]
    value = compute()
    write_marshal(path, (blob, value))
    prune(directory, prefix + "-", ".bin", keep)
    return value


# Node tags of the codec (anything that is not a tuple is a plain value).
_LIST, _TUPLE, _DICT, _BYTEARRAY, _OBJECT, _REF, _RECORD, _MAPPING, _HOOKED, _RECORDS = range(10)
_PLAIN = frozenset((int, str, bytes, bool, float, type(None)))


class Codec:
    """Turns a graph of instances of known classes into marshal-able data and back.

    pickle would do, but importing it is a measurable part of a start, and reading a
    pickle can run code; this only ever builds instances of the classes it was
    given. Shared instances stay shared. ``hooks`` maps a class to (state of an
    instance, instance from that state) for objects whose attributes are not
    plain data (memoryviews, closures), e.g. a parsed BTF kept as its bytes.
    Attributes a class lists in ``_codec_transient`` are left out (the class
    rebuilds them on demand). Anything else raises TypeError while encoding, so
    a value it cannot restore exactly is never stored.
    """

    def __init__(self, classes: Sequence[type],
                 hooks: dict[type, tuple[Callable[[Any], Any], Callable[[Any], Any]]]
                 | None = None) -> None:
        self.classes = tuple(classes)
        self._index = {cls: i for i, cls in enumerate(self.classes)}
        self._hooks = hooks or {}

    # ---- encoding -----------------------------------------------------------------

    def encode(self, value: Any) -> Any:
        memo: dict[int, int] = {}
        alive: list[Any] = []  # keeps ids in ``memo`` from being reused

        def enc(x: Any) -> Any:
            t = type(x)
            if t in _PLAIN:
                return x
            if t is list:
                rows = plain_records(x)
                if rows is not None:
                    return rows
                return (_LIST, [enc(v) for v in x])
            if t is tuple:
                return (_TUPLE, tuple(enc(v) for v in x))
            if t is dict:
                return (_DICT, [enc(v) for kv in x.items() for v in kv])
            if t is bytearray:
                return (_BYTEARRAY, bytes(x))
            ref = memo.get(id(x))
            if ref is not None:
                return (_REF, ref)
            ci = self._index.get(t)
            if ci is None:
                raise TypeError(f"cannot cache a {t.__module__}.{t.__qualname__}")
            hook = self._hooks.get(t)
            if hook is not None:
                node: Any = (_HOOKED, ci, enc(hook[0](x)))
            elif isinstance(x, tuple):
                node = (_RECORD, ci, tuple(enc(v) for v in x))
            elif isinstance(x, dict):
                if getattr(x, "__dict__", None):
                    raise TypeError(f"cannot cache a {t.__qualname__} with attributes")
                node = (_MAPPING, ci, [enc(v) for kv in x.items() for v in kv])
            else:
                memo[id(x)] = len(alive)
                alive.append(x)
                return (_OBJECT, ci, [enc(v) for kv in _attributes(x) for v in kv])
            memo[id(x)] = len(alive)
            alive.append(x)
            return node

        def plain_records(x: list[Any]) -> Any:
            """A list of records of one class holding only plain values, as one node:
            decoding it is a single C-level map (a spec has hundreds of relocations)."""
            if len(x) < 2:
                return None
            cls = type(x[0])
            ci = self._index.get(cls)
            if (ci is None or cls in self._hooks or not issubclass(cls, tuple)
                    or any(type(v) is not cls for v in x)
                    or any(type(f) not in _PLAIN for v in x for f in v)):
                return None
            return (_RECORDS, ci, [tuple(v) for v in x])

        return enc(value)

    # ---- decoding -----------------------------------------------------------------

    def decode(self, data: Any) -> Any:
        """Rebuild a value; ValueError when the data was not made by :meth:`encode`."""
        try:
            return self._decode(data)
        except (IndexError, KeyError, TypeError, AttributeError) as e:
            raise ValueError(f"not an encoded value: {e}") from None

    def _decode(self, data: Any) -> Any:
        classes, hooks = self.classes, self._hooks
        made: list[Any] = []
        new = object.__new__
        setattr_ = object.__setattr__
        tuple_new = tuple.__new__

        # Plain values are tested inline (``type(v) is tuple``) rather than passed
        # through dec(): most of a spec is small ints and strings, and a call each
        # would be most of the time spent here.
        def dec(x: Any) -> Any:
            tag = x[0]
            if tag == _OBJECT:
                obj = new(classes[x[1]])
                made.append(obj)
                items = x[2]
                for i in range(0, len(items), 2):
                    v = items[i + 1]
                    setattr_(obj, items[i], dec(v) if type(v) is tuple else v)
                return obj
            if tag == _REF:
                return made[x[1]]
            if tag == _LIST:
                return [dec(v) if type(v) is tuple else v for v in x[1]]
            if tag == _RECORDS:
                return list(map(tuple_new, repeat(classes[x[1]]), x[2]))
            if tag == _RECORD:
                obj = tuple_new(classes[x[1]], [dec(v) if type(v) is tuple else v
                                                for v in x[2]])
            elif tag == _TUPLE:
                return tuple([dec(v) if type(v) is tuple else v for v in x[1]])
            elif tag == _DICT:
                items = [dec(v) if type(v) is tuple else v for v in x[1]]
                return dict(zip_strict(items[::2], items[1::2]))
            elif tag == _BYTEARRAY:
                return bytearray(x[1])
            elif tag == _MAPPING:
                items = [dec(v) if type(v) is tuple else v for v in x[2]]
                obj = classes[x[1]](zip_strict(items[::2], items[1::2]))
            elif tag == _HOOKED:
                cls = classes[x[1]]
                obj = hooks[cls][1](dec(x[2]) if type(x[2]) is tuple else x[2])
            else:
                raise ValueError(f"unknown node tag {tag!r}")
            made.append(obj)
            return obj

        return dec(data) if type(data) is tuple else data


def _attributes(x: Any) -> list[tuple[str, Any]]:
    """Instance attributes, from ``__dict__`` and every ``__slots__`` in the MRO, but
    not those the class names in ``_codec_transient`` (it rebuilds them on demand)."""
    skip = getattr(type(x), "_codec_transient", ())
    out = [kv for kv in getattr(x, "__dict__", {}).items() if kv[0] not in skip]
    for cls in type(x).__mro__:
        for name in cls.__dict__.get("__slots__", ()):
            if name in ("__dict__", "__weakref__"):
                continue
            try:
                out.append((name, getattr(x, name)))
            except AttributeError:
                pass
    return out
