"""BPF maps from user space.

``Map`` owns the map's fd and knows its definition, so it can check sizes before
the kernel sees them and turn Python values (int, bytes, ctypes instances) into
the exact key/value bytes, with one-line ``MapError``s naming the map.
"""

from __future__ import annotations

import errno
import mmap as _mmap
import os

from .errors import Error, FeatureMissing, MapError
from .runtime.startup import Record, memoize
from .sys import bpf as _bpf
from .sys import cdata
from .sys.consts import (
    BPF_ANY,
    BPF_EXIST,
    BPF_F_MMAPABLE,
    BPF_F_RDONLY,
    BPF_MAP_TYPE_ARRAY,
    BPF_MAP_TYPE_ARRAY_OF_MAPS,
    BPF_MAP_TYPE_CGROUP_ARRAY,
    BPF_MAP_TYPE_DEVMAP,
    BPF_MAP_TYPE_HASH_OF_MAPS,
    BPF_MAP_TYPE_LRU_PERCPU_HASH,
    BPF_MAP_TYPE_PERCPU_ARRAY,
    BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE,
    BPF_MAP_TYPE_PERCPU_HASH,
    BPF_MAP_TYPE_PERF_EVENT_ARRAY,
    BPF_MAP_TYPE_PROG_ARRAY,
    BPF_MAP_TYPE_QUEUE,
    BPF_MAP_TYPE_RINGBUF,
    BPF_MAP_TYPE_STACK,
    BPF_NOEXIST,
)
from .sys.errors import ENOTSUPP, describe, raise_for
from .sys.fd import FD, FDOwner
from .sys.host import possible_cpus

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

    # What a key or value can be given as: raw bytes, an int (little-endian), a value
    # typed from BTF (a StructValue, or a dict/tuple of its fields, a str for a char
    # array, a list for an array), a ctypes instance, or for fd arrays a Map/Program.
    from ctypes import _CData
    from typing import Any, NoReturn, TypeAlias

    from .btf.types import BTF
    from .btf.values import Codec, StructValue, Value
    from .perf import PerfBuffer
    from .programs import Program
    from .ringbuf import RecordType, RingBuffer

    Input: TypeAlias = ("int | bytes | bytearray | memoryview | str | StructValue "
                        "| dict[str, object] | tuple[object, ...] | list[object] | _CData "
                        "| Map | Program")
    # What comes back: a value typed from BTF (or bytes), a list of them per CPU
    Output: TypeAlias = "Value | list[Value]"

PERCPU_TYPES = frozenset({
    BPF_MAP_TYPE_PERCPU_HASH, BPF_MAP_TYPE_PERCPU_ARRAY, BPF_MAP_TYPE_LRU_PERCPU_HASH,
    BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE,
})
ARRAY_TYPES = frozenset({
    BPF_MAP_TYPE_ARRAY, BPF_MAP_TYPE_PERCPU_ARRAY, BPF_MAP_TYPE_PROG_ARRAY,
    BPF_MAP_TYPE_PERF_EVENT_ARRAY, BPF_MAP_TYPE_CGROUP_ARRAY, BPF_MAP_TYPE_ARRAY_OF_MAPS,
    BPF_MAP_TYPE_DEVMAP,
})
PLAIN_ARRAY_TYPES = frozenset({BPF_MAP_TYPE_ARRAY, BPF_MAP_TYPE_PERCPU_ARRAY})
FD_VALUE_TYPES = frozenset({
    BPF_MAP_TYPE_PROG_ARRAY, BPF_MAP_TYPE_ARRAY_OF_MAPS, BPF_MAP_TYPE_HASH_OF_MAPS,
    BPF_MAP_TYPE_PERF_EVENT_ARRAY, BPF_MAP_TYPE_CGROUP_ARRAY,
})
KEYLESS_TYPES = frozenset({BPF_MAP_TYPE_QUEUE, BPF_MAP_TYPE_STACK})
_BATCH_UNSUPPORTED = {errno.EINVAL, errno.EOPNOTSUPP, errno.ENOTSUP, ENOTSUPP}


@memoize
def map_type_name(map_type: int) -> str:
    from .sys import consts

    return consts.MAP_TYPE_NAMES.get(map_type, f"map type {map_type}")


class MapInfo(
        Record,
        fields=("id type name key_size value_size max_entries map_flags btf_id "
                "btf_key_type_id btf_value_type_id map_extra")):
    """What the kernel reports about a map (BPF_OBJ_GET_INFO_BY_FD)."""

    __slots__ = ()

    id: int
    type: int
    name: str
    key_size: int
    value_size: int
    max_entries: int
    map_flags: int
    btf_id: int
    btf_key_type_id: int
    btf_value_type_id: int
    map_extra: int


def _info(fd: FD | int) -> MapInfo:
    i = _bpf.map_info(fd)
    return MapInfo(
        id=i.id, type=i.type, name=i.name.decode(errors="replace"), key_size=i.key_size,
        value_size=i.value_size, max_entries=i.max_entries, map_flags=i.map_flags,
        btf_id=i.btf_id, btf_key_type_id=i.btf_key_type_id,
        btf_value_type_id=i.btf_value_type_id, map_extra=i.map_extra,
    )


def check_compatible(
    info: MapInfo,
    name: str,
    *,
    map_type: int,
    key_size: int,
    value_size: int,
    max_entries: int,
    map_flags: int,
) -> None:
    """Raise MapError unless a (pinned) map matches the definition we would create.

    Used before reusing a pinned map, like libbpf's map_is_reuse_compat().
    """
    wanted = {
        "type": (map_type, info.type),
        "key_size": (key_size, info.key_size),
        "value_size": (value_size, info.value_size),
        "max_entries": (max_entries, info.max_entries),
        "map_flags": (map_flags, info.map_flags),
    }
    for field, (want, have) in wanted.items():
        if want != have:
            if field == "type":
                want_s, have_s = map_type_name(want), map_type_name(have)
            else:
                want_s, have_s = str(want), str(have)
            raise MapError(
                f"map {name!r}: pinned map is incompatible: {field} is {have_s}, "
                f"definition says {want_s}"
            )


def _round8(n: int) -> int:
    return (n + 7) & ~7


class Map(FDOwner):
    """A BPF map: an owned fd plus its definition.

    Keys and values come back typed from BTF when the map has BTF key/value types
    (every map of a loaded object whose definition names them): ints, ``str`` for
    char arrays, ``bytes`` for ``__u8`` arrays, lists, and structs as
    :class:`coreframe.btf.values.StructValue` instances (see docs/typed-data.md).
    They go in as int, bytes-like, ctypes instances, or the typed forms (an
    instance, a dict or tuple of fields, a str, a list). ``key_type``/``value_type``
    (a ctypes type, or ``int`` for little-endian unsigned integers) override the
    BTF types when set. Without types values are bytes and keys bytes (int for
    array-like maps); ``m.raw`` is that untyped view of any map. Per-CPU maps take
    and return a list with one value per possible CPU.
    """

    what = "map"
    error = MapError

    def __init__(
        self,
        fd: FD,
        *,
        name: str,
        type: int,  # noqa: A002 - kernel field name
        key_size: int,
        value_size: int,
        max_entries: int,
        flags: int = 0,
        btf_key_type_id: int = 0,
        btf_value_type_id: int = 0,
        map_extra: int = 0,
        key_type: type | None = None,
        value_type: type | None = None,
    ) -> None:
        self._fd = fd
        self.name = name
        self.type = type
        self.key_size = key_size
        self.value_size = value_size
        self.max_entries = max_entries
        self.flags = flags
        self.btf_key_type_id = btf_key_type_id
        self.btf_value_type_id = btf_value_type_id
        self.map_extra = map_extra
        self.key_type = key_type
        self.value_type = value_type
        self._mmap: _mmap.mmap | None = None
        self._ncpus = possible_cpus() if type in PERCPU_TYPES else 1
        self._slot = _round8(value_size) if type in PERCPU_TYPES else value_size
        # BTF types of keys/values (use_btf), their codecs built on first use
        self.btf: BTF | None = None
        self._btf_key_id = 0
        self._btf_value_id = 0
        self._typed = True
        self._codecs: tuple[Codec | None, Codec | None] | None = None
        self._kernel_btf_id = 0  # from_fd: the map's BTF in the kernel, not yet read

    # --- construction -------------------------------------------------------------

    @classmethod
    def create(
        cls,
        type: int,  # noqa: A002 - kernel field name
        key_size: int,
        value_size: int,
        max_entries: int,
        *,
        name: str = "",
        flags: int = 0,
        inner_map: Map | FD | int | None = None,
        numa_node: int = 0,
        btf_fd: FD | int = 0,
        btf_key_type_id: int = 0,
        btf_value_type_id: int = 0,
        btf_vmlinux_value_type_id: int = 0,
        map_extra: int = 0,
        key_type: type | None = None,
        value_type: type | None = None,
    ) -> Map:
        """BPF_MAP_CREATE; FeatureMissing if the kernel lacks the map type."""
        inner_fd = 0
        if inner_map is not None:
            inner_fd = inner_map.fd if isinstance(inner_map, Map) else int(inner_map)
        label = name or map_type_name(type).lower()
        try:
            fd = _bpf.map_create(
                type, key_size, value_size, max_entries, name=name, flags=flags,
                inner_map_fd=inner_fd, numa_node=numa_node, btf_fd=btf_fd,
                btf_key_type_id=btf_key_type_id, btf_value_type_id=btf_value_type_id,
                btf_vmlinux_value_type_id=btf_vmlinux_value_type_id, map_extra=map_extra,
            )
        except OSError as e:
            _create_error(e, label, type)
        return cls(
            fd, name=name, type=type, key_size=key_size, value_size=value_size,
            max_entries=max_entries, flags=flags, btf_key_type_id=btf_key_type_id,
            btf_value_type_id=btf_value_type_id, map_extra=map_extra, key_type=key_type,
            value_type=value_type,
        )

    @classmethod
    def from_fd(cls, fd: FD, name: str | None = None) -> Map:
        """Wrap an existing map fd (taking ownership), reading its definition from the kernel."""
        try:
            info = _info(fd)
        except OSError as e:
            fd.close()
            raise MapError(f"fd is not a BPF map: {describe(e)}") from e
        m = cls(
            fd, name=name if name is not None else info.name, type=info.type,
            key_size=info.key_size, value_size=info.value_size, max_entries=info.max_entries,
            flags=info.map_flags, btf_key_type_id=info.btf_key_type_id,
            btf_value_type_id=info.btf_value_type_id, map_extra=info.map_extra,
        )
        # typed from the BTF the kernel keeps for it, fetched on the first typed use
        m._kernel_btf_id = info.btf_id if (info.btf_key_type_id
                                           or info.btf_value_type_id) else 0
        return m

    @classmethod
    def from_pinned(cls, path: str | os.PathLike[str], *, read_only: bool = False) -> Map:
        """Open a map pinned on bpffs."""
        fd = cls.get_fd(lambda: _bpf.obj_get(path, BPF_F_RDONLY if read_only else 0),
                        f"open pinned map {os.fspath(path)!r}",
                        f"no pinned map at {os.fspath(path)!r}")
        return cls.from_fd(fd)

    @classmethod
    def from_id(cls, map_id: int) -> Map:
        """Open a loaded map by its kernel id."""
        fd = cls.get_fd(lambda: _bpf.map_get_fd_by_id(map_id), f"open map id {map_id}",
                        f"no map with id {map_id}", capability="CAP_SYS_ADMIN")
        return cls.from_fd(fd)

    # --- fd / lifetime ------------------------------------------------------------

    def close(self) -> None:
        if self._mmap is not None:
            try:
                self._mmap.close()
            except BufferError:
                pass  # a memoryview is still exported; the mapping dies with it
            self._mmap = None
        self._fd.close()

    def __repr__(self) -> str:
        return (f"<Map {self.name!r} {map_type_name(self.type)} key={self.key_size} "
                f"value={self.value_size} max_entries={self.max_entries}>")

    def info(self) -> MapInfo:
        try:
            return _info(self.fd)
        except OSError as e:
            raise MapError(f"map {self.name!r}: cannot read info: {describe(e)}") from e

    def check_compatible(self, *, map_type: int, key_size: int, value_size: int,
                         max_entries: int, map_flags: int) -> None:
        """MapError unless this (e.g. pinned) map matches the given definition."""
        check_compatible(self.info(), self.name, map_type=map_type, key_size=key_size,
                         value_size=value_size, max_entries=max_entries, map_flags=map_flags)

    @property
    def is_percpu(self) -> bool:
        return self.type in PERCPU_TYPES

    @property
    def ncpus(self) -> int:
        return self._ncpus

    # --- typed values (coreframe.btf.values) ------------------------------------------

    def use_btf(self, btf: BTF | None, key_type_id: int = 0, value_type_id: int = 0) -> None:
        """Type keys and values from these BTF types (the loader calls this per map)."""
        self.btf = btf
        self._btf_key_id = key_type_id if btf is not None else 0
        self._btf_value_id = value_type_id if btf is not None else 0
        self._codecs = None

    @property
    def typed(self) -> bool:
        """Whether keys/values are decoded from BTF (True by default; see ``raw``)."""
        return self._typed

    @typed.setter
    def typed(self, on: bool) -> None:
        self._typed = bool(on)
        self._codecs = None

    @property
    def raw(self) -> Map:
        """This map without types: values as bytes, keys as bytes (int for arrays).

        A view sharing this map's fd (closing either closes the map).
        """
        view = object.__new__(Map)
        view.__dict__.update(self.__dict__)
        view._typed = False
        view._codecs = None
        view.key_type = view.value_type = None
        return view

    def _typed_codecs(self) -> tuple[Codec | None, Codec | None]:
        codecs = self._codecs
        if codecs is None:
            if self._kernel_btf_id and self.btf is None and self._typed:
                btf_id, self._kernel_btf_id = self._kernel_btf_id, 0
                btf = _kernel_btf(btf_id)
                if btf is not None:
                    self.use_btf(btf, self.btf_key_type_id, self.btf_value_type_id)
            kc = vc = None
            if self._typed and self.btf is not None:
                from .btf.types import Kind
                from .btf.values import codec

                if self._btf_key_id and self.type not in KEYLESS_TYPES:
                    kc = codec(self.btf, self._btf_key_id)
                # A global data map's value (a DATASEC) stays its section image:
                # obj.bss.X / obj.data.X are the typed views of its variables.
                if (self._btf_value_id and self.type not in FD_VALUE_TYPES
                        and self.btf.kind_of(self.btf.resolve(self._btf_value_id))
                        != Kind.DATASEC):
                    vc = codec(self.btf, self._btf_value_id)
            codecs = self._codecs = (kc, vc)
        return codecs

    # --- encoding -------------------------------------------------------------------

    def _encode(self, what: str, obj: Input, size: int) -> bytes:
        if isinstance(obj, (bool, int)):
            try:
                return int(obj).to_bytes(size, "little", signed=obj < 0)
            except OverflowError:
                raise MapError(
                    f"map {self.name!r}: {what} {obj} does not fit in {size} bytes"
                ) from None
        if isinstance(obj, (bytes, bytearray, memoryview)):
            data = bytes(obj)
        elif isinstance(obj, (cdata.SimpleCData, cdata.Structure, cdata.Union, cdata.Array)):
            data = bytes(obj)
        elif hasattr(obj, "fd") and self.type in FD_VALUE_TYPES and what == "value":
            return int(obj.fd).to_bytes(4, "little")
        elif (c := self._typed_codecs()[what == "value"]) is not None:
            from .btf.values import EncodeError

            try:
                return c.encode(obj)
            except EncodeError as e:
                raise MapError(f"map {self.name!r}: {what} as {c.name}: {e}") from None
        else:
            raise MapError(
                f"map {self.name!r}: {what} must be int, bytes or a ctypes instance "
                f"(this map has no BTF {what} type), got {type(obj).__name__}"
            )
        if len(data) != size:
            raise MapError(f"map {self.name!r}: {what} is {len(data)} bytes, expected {size}")
        return data

    def _key(self, key: Input) -> bytes:
        return self._encode("key", key, self.key_size)

    def _value(self, value: Input) -> bytes:
        if self.type not in PERCPU_TYPES:
            return self._encode("value", value, self.value_size)
        pad = b"\0" * (self._slot - self.value_size)
        if isinstance(value, (list, tuple)):
            if len(value) != self._ncpus:
                raise MapError(
                    f"map {self.name!r}: per-CPU value needs {self._ncpus} entries, "
                    f"got {len(value)}"
                )
            return b"".join(self._encode("value", v, self.value_size)  # type: ignore[arg-type]
                            + pad for v in value)
        return (self._encode("value", value, self.value_size) + pad) * self._ncpus

    def _decode_key(self, raw: bytes) -> Value:
        kt = self.key_type
        if kt is None:
            kc = self._typed_codecs()[0]
            if kc is not None:
                return kc.decode(raw)
            if self.type in ARRAY_TYPES:
                return int.from_bytes(raw, "little")
            return raw
        return _decode(kt, raw)

    def _decode_value(self, raw: bytes) -> Value | list[Value]:
        if self.type in PERCPU_TYPES:
            s, n = self._slot, self.value_size
            if self.value_type is None:
                vc = self._typed_codecs()[1]
                if vc is not None:
                    dec = vc.decode
                    return [dec(raw, i * s) for i in range(self._ncpus)]
            return [self._decode_one(raw[i * s:i * s + n]) for i in range(self._ncpus)]
        return self._decode_one(raw)

    def _decode_one(self, raw: bytes) -> Value:
        vt = self.value_type
        if vt is None:
            vc = self._typed_codecs()[1]
            return raw if vc is None else vc.decode(raw)
        return _decode(vt, raw)

    @property
    def _value_buf_size(self) -> int:
        return self._slot * self._ncpus

    def _fail(self, e: OSError, op: str) -> NoReturn:
        raise_for(e, f"map {self.name!r}: {op}", error=MapError)

    # --- element operations ---------------------------------------------------------

    def lookup(self, key: Input, default: Output = None, *, flags: int = 0) -> Output:
        """Value for ``key``, or ``default`` (None) when absent."""
        kb = self._key(key)
        try:
            raw = _bpf.map_lookup_elem(self.fd, kb, self._value_buf_size, flags)
        except OSError as e:
            self._fail(e, "lookup")
        return default if raw is None else self._decode_value(raw)

    def percpu_sum(self, key: Input) -> int:
        """A per-CPU counter summed over every CPU (the first 8 bytes of each CPU's value,
        a u64), 0 when ``key`` is absent: how tools read the drop counts their
        programs keep in a BPF_MAP_TYPE_PERCPU_ARRAY."""
        return sum(int.from_bytes(bytes(v)[:8], "little")
                   for v in self.raw.lookup(key) or ())  # bytes per CPU, untyped

    def get(self, key: Input, default: Output = None) -> Output:
        """Value for ``key``, or ``default`` (None) when absent (like dict.get)."""
        return self.lookup(key, default)

    def __getitem__(self, key: Input) -> Output:
        kb = self._key(key)
        try:
            raw = _bpf.map_lookup_elem(self.fd, kb, self._value_buf_size)
        except OSError as e:
            self._fail(e, "lookup")
        if raw is None:
            raise KeyError(key)
        return self._decode_value(raw)

    def __contains__(self, key: Input) -> bool:
        return self.lookup(key) is not None

    def update(self, key: Input, value: Input, flags: int = BPF_ANY) -> None:
        """Insert or replace (BPF_ANY), insert only (BPF_NOEXIST), replace only (BPF_EXIST)."""
        kb, vb = self._key(key), self._value(value)
        try:
            _bpf.map_update_elem(self.fd, kb, vb, flags)
        except OSError as e:
            if e.errno == errno.ENOENT and flags & BPF_EXIST:
                raise KeyError(key) from None
            if e.errno == errno.EEXIST and flags & BPF_NOEXIST:
                raise MapError(f"map {self.name!r}: key already exists").with_cause(
                    e.errno, f"map {self.name!r}: update") from None
            if e.errno == errno.E2BIG:
                raise MapError(
                    f"map {self.name!r}: full (max_entries {self.max_entries})"
                    if self.type not in ARRAY_TYPES
                    else f"map {self.name!r}: index {key!r} out of range "
                         f"(max_entries {self.max_entries})"
                ).with_cause(e.errno, f"map {self.name!r}: update") from None
            if e.errno == errno.EPERM and self._is_frozen():
                raise MapError(f"map {self.name!r}: frozen, read-only from user space"
                               ).with_cause(e.errno, f"map {self.name!r}: update") from None
            self._fail(e, "update")

    def __setitem__(self, key: Input, value: Input) -> None:
        self.update(key, value)

    def delete(self, key: Input) -> bool:
        """Remove ``key``; False when it was absent."""
        kb = self._key(key)
        try:
            return _bpf.map_delete_elem(self.fd, kb)
        except OSError as e:
            if e.errno == errno.EINVAL and self.type in PLAIN_ARRAY_TYPES:
                raise MapError(f"map {self.name!r}: array map elements cannot be deleted"
                               ) from None
            self._fail(e, "delete")

    def lookup_and_delete(self, key: Input, default: Output = None) -> Output:
        """Atomically read and remove ``key`` (hash maps, 5.14+); ``default`` when absent."""
        kb = self._key(key)
        try:
            raw = _bpf.map_lookup_and_delete_elem(self.fd, kb, self._value_buf_size)
        except OSError as e:
            if e.errno in (errno.EINVAL, errno.EOPNOTSUPP, ENOTSUPP):
                raise FeatureMissing(
                    f"lookup-and-delete on {map_type_name(self.type)}") from e
            self._fail(e, "lookup and delete")
        return default if raw is None else self._decode_value(raw)

    def take_all(self, batch_size: int = 256) -> list[tuple[Value, Output]]:
        """Read and remove every entry, each read and removed in one step: an update
        that lands meanwhile is either returned or left for the next call, never lost.

        Per key with BPF_MAP_LOOKUP_AND_DELETE_ELEM where the kernel has it for this
        map type (hash maps: 5.14+); else in batches with BPF_MAP_LOOKUP_AND_DELETE_BATCH
        (5.6+; the kernel copies and deletes each bucket's entries under its lock),
        recorded as a fallback; else FeatureMissing. Both are chosen by probing
        (:func:`coreframe.features.has_lookup_and_delete`, ``has_batch_ops``).
        """
        from .features import has_batch_ops, has_lookup_and_delete, note_fallback

        if has_lookup_and_delete(self.type):
            out = []
            for raw in list(self._raw_keys()):
                value = self.lookup_and_delete(raw)
                if value is not None:
                    out.append((self._decode_key(raw), value))
            return out
        if not has_batch_ops():
            raise FeatureMissing(
                f"read-and-delete on {map_type_name(self.type)}",
                "needs BPF_MAP_LOOKUP_AND_DELETE_ELEM (hash maps: Linux 5.14+) or "
                "BPF_MAP_LOOKUP_AND_DELETE_BATCH (Linux 5.6+)")
        note_fallback(f"read-and-delete of {map_type_name(self.type)} entries by "
                      "BPF_MAP_LOOKUP_AND_DELETE_BATCH",
                      "no BPF_MAP_LOOKUP_AND_DELETE_ELEM for this map type (hash maps: "
                      "Linux 5.14+; probe: features.has_lookup_and_delete)")
        entries: list[tuple[Value, Output]] = []
        token: bytes | None = None
        while True:
            batch, token = self.lookup_batch(batch_size, token, delete=True)
            entries += batch
            if token is None:
                return entries

    def __delitem__(self, key: Input) -> None:
        if not self.delete(key):
            raise KeyError(key)

    def _is_frozen(self) -> bool:
        try:
            with open(f"/proc/self/fdinfo/{self.fd}") as f:
                return any(line.startswith("frozen:") and line.split()[1] == "1" for line in f)
        except OSError:
            return False

    def _raw_keys(self) -> Iterator[bytes]:
        """Keys via GET_NEXT_KEY; survives deletions (the kernel then restarts at the top)."""
        prev: bytes | None = None
        seen: set[bytes] = set()
        while True:
            try:
                nxt = _bpf.map_get_next_key(self.fd, prev, self.key_size)
            except OSError as e:
                self._fail(e, "iterate keys")
            if nxt is None:
                return
            prev = nxt
            if nxt in seen:
                continue
            seen.add(nxt)
            yield nxt

    def keys(self) -> Iterator[Value]:
        for raw in self._raw_keys():
            yield self._decode_key(raw)

    __iter__ = keys

    def items(self) -> Iterator[tuple[Value, Output]]:
        """(key, value) pairs; entries deleted while iterating are skipped."""
        size = self._value_buf_size
        for raw in self._raw_keys():
            try:
                val = _bpf.map_lookup_elem(self.fd, raw, size)
            except OSError as e:
                self._fail(e, "lookup")
            if val is not None:
                yield self._decode_key(raw), self._decode_value(val)

    def values(self) -> Iterator[Output]:
        for _, v in self.items():
            yield v

    def __len__(self) -> int:
        """Entries: max_entries for arrays (every slot exists), else the keys counted now."""
        if self.type in ARRAY_TYPES:
            return self.max_entries
        if self.type in KEYLESS_TYPES or self.type == BPF_MAP_TYPE_RINGBUF:
            raise TypeError(f"map {self.name!r}: a {map_type_name(self.type)} cannot count "
                            "its entries without consuming them")
        return sum(1 for _ in self._raw_keys())

    def __bool__(self) -> bool:
        # a Map is an object, not a container to test for emptiness (len() may walk it)
        return True

    def clear(self) -> None:
        """Delete every key (not possible for array maps: the kernel keeps their slots)."""
        if self.type in PLAIN_ARRAY_TYPES:
            raise MapError(f"map {self.name!r}: array map elements cannot be deleted")
        for raw in list(self._raw_keys()):
            self.delete(raw)

    # --- batch operations -------------------------------------------------------------

    def lookup_batch(self, count: int = 256, in_batch: bytes | None = None, *,
                     delete: bool = False) -> tuple[list[tuple[Value, Output]], bytes | None]:
        """One BPF_MAP_LOOKUP(_AND_DELETE)_BATCH call: (entries, token for the next call).

        The token is None when the map is exhausted. FeatureMissing when the kernel
        or this map type has no batch operations.
        """
        vsize = self._value_buf_size
        while True:
            try:
                res = _bpf.map_lookup_batch(self.fd, self.key_size, vsize, count, in_batch,
                                            delete=delete)
                break
            except OSError as e:
                if e.errno == errno.ENOSPC and count < (1 << 20):
                    count *= 4  # a hash bucket holds more entries than fit in one batch
                    continue
                if e.errno in _BATCH_UNSUPPORTED:
                    raise FeatureMissing(
                        f"batch operations on {map_type_name(self.type)}",
                        "use items() instead",
                    ) from e
                self._fail(e, "lookup batch")
        ks, n = self.key_size, res.count
        entries = [
            (self._decode_key(res.keys[i * ks:(i + 1) * ks]),
             self._decode_value(res.values[i * vsize:(i + 1) * vsize]))
            for i in range(n)
        ]
        return entries, res.next_batch

    def items_batch(self, batch_size: int = 256) -> Iterator[tuple[Value, Output]]:
        """All entries, fetched with batch lookups where supported, else via items()."""
        token: bytes | None = None
        first = True
        while True:
            try:
                entries, token = self.lookup_batch(batch_size, token)
            except FeatureMissing:
                if not first:
                    raise
                yield from self.items()
                return
            first = False
            yield from entries
            if token is None:
                return

    def update_batch(self, items: Iterable[tuple[Input, Input]], flags: int = BPF_ANY) -> int:
        """Write many entries in one BPF_MAP_UPDATE_BATCH; returns the number written."""
        pairs = list(items)
        if not pairs:
            return 0
        keys = b"".join(self._key(k) for k, _ in pairs)
        values = b"".join(self._value(v) for _, v in pairs)
        try:
            return _bpf.map_update_batch(self.fd, keys, values, len(pairs), elem_flags=flags)
        except OSError as e:
            if e.errno in _BATCH_UNSUPPORTED - {errno.EINVAL}:
                raise FeatureMissing(f"batch operations on {map_type_name(self.type)}") from e
            self._fail(e, "update batch")

    def delete_batch(self, keys: Iterable[Input]) -> int:
        """Delete many keys in one BPF_MAP_DELETE_BATCH; returns how many were deleted."""
        ks = [self._key(k) for k in keys]
        if not ks:
            return 0
        try:
            return _bpf.map_delete_batch(self.fd, b"".join(ks), len(ks))
        except OSError as e:
            self._fail(e, "delete batch")

    # --- queue / stack ------------------------------------------------------------------

    def _need_keyless(self, op: str) -> None:
        if self.type not in KEYLESS_TYPES:
            raise MapError(f"map {self.name!r}: {op} needs a queue or stack map, "
                           f"not {map_type_name(self.type)}")

    def push(self, value: Input, flags: int = BPF_ANY) -> None:
        """Queue/stack push; with BPF_EXIST the oldest element is dropped when full."""
        self._need_keyless("push")
        try:
            _bpf.map_update_elem(self.fd, None, self._value(value), flags)
        except OSError as e:
            if e.errno == errno.E2BIG:
                raise MapError(f"map {self.name!r}: full (max_entries {self.max_entries})"
                               ) from None
            self._fail(e, "push")

    def pop(self) -> Value:
        """Queue/stack pop; None when empty."""
        self._need_keyless("pop")
        try:
            raw = _bpf.map_lookup_and_delete_elem(self.fd, None, self.value_size)
        except OSError as e:
            self._fail(e, "pop")
        return None if raw is None else self._decode_one(raw)

    def peek(self) -> Value:
        """Queue/stack peek; None when empty."""
        self._need_keyless("peek")
        try:
            raw = _bpf.map_lookup_elem(self.fd, None, self.value_size)
        except OSError as e:
            self._fail(e, "peek")
        return None if raw is None else self._decode_one(raw)

    # --- whole-map operations -------------------------------------------------------------

    def freeze(self) -> None:
        """Make the map read-only from user space (as libbpf does for .rodata)."""
        try:
            _bpf.map_freeze(self.fd)
        except OSError as e:
            if e.errno == errno.EBUSY:
                raise MapError(f"map {self.name!r}: cannot freeze while a writable mmap() of "
                               "it exists") from None
            self._fail(e, "freeze")

    def mmap(self) -> memoryview:
        """Shared mapping of a BPF_F_MMAPABLE array (global .data/.bss/.rodata after load).

        Writable unless the map is frozen/read-only, in which case the view is read-only.
        """
        if self.type != BPF_MAP_TYPE_ARRAY or not self.flags & BPF_F_MMAPABLE:
            raise MapError(f"map {self.name!r}: only BPF_F_MMAPABLE array maps can be mmap()ed")
        if self._mmap is None:
            size = self.value_size * self.max_entries
            length = (size + _mmap.PAGESIZE - 1) // _mmap.PAGESIZE * _mmap.PAGESIZE
            try:
                self._mmap = _mmap.mmap(self.fd, length, _mmap.MAP_SHARED,
                                        _mmap.PROT_READ | _mmap.PROT_WRITE)
            except PermissionError:
                try:
                    self._mmap = _mmap.mmap(self.fd, length, _mmap.MAP_SHARED, _mmap.PROT_READ)
                except OSError as e:
                    raise MapError(f"map {self.name!r}: mmap failed: {describe(e)}") from e
            except OSError as e:
                raise MapError(f"map {self.name!r}: mmap failed: {describe(e)}") from e
        view = memoryview(self._mmap)
        return view[: self.value_size * self.max_entries]

    def pin(self, path: str | os.PathLike[str]) -> None:
        """Pin on bpffs so the map outlives this process."""
        try:
            _bpf.obj_pin(self.fd, path)
        except OSError as e:
            if e.errno == errno.EEXIST:
                raise MapError(f"map {self.name!r}: pin path {os.fspath(path)!r} exists") from e
            if e.errno in (errno.EPERM, errno.EINVAL) and _bpf_fs_missing(path):
                raise MapError(
                    f"map {self.name!r}: {os.fspath(path)!r} is not on a bpf filesystem "
                    "(mount -t bpf bpf /sys/fs/bpf)"
                ) from e
            self._fail(e, f"pin at {os.fspath(path)!r}")

    def reader(self, ctype: RecordType | None = None,
               callback: Callable[..., object] | None = None,
               **kwargs: Any) -> RingBuffer | PerfBuffer:
        """A RingBuffer (ringbuf maps) or PerfBuffer (perf event arrays) reading this map.

        ``ctype`` types the records: a struct named in this map's object's BTF
        (``"struct event"``), a ctypes type, or a Codec/StructValue class.
        """
        if self.type == BPF_MAP_TYPE_RINGBUF:
            from .ringbuf import RingBuffer

            return RingBuffer(self, callback, ctype=ctype, **kwargs)
        if self.type == BPF_MAP_TYPE_PERF_EVENT_ARRAY:
            from .perf import PerfBuffer

            return PerfBuffer(self, callback=callback, ctype=ctype, **kwargs)
        raise MapError(f"map {self.name!r}: {map_type_name(self.type)} has no reader")


def _kernel_btf(btf_id: int) -> BTF | None:
    """The BTF object ``btf_id`` as the kernel holds it (the loader's sanitized copy of
    an object's BTF), or None when it cannot be read (then the map stays untyped)."""
    from .btf.types import BTF
    from .sys import attr as A

    try:
        with _bpf.btf_get_fd_by_id(btf_id) as fd:
            size = _bpf.btf_info(fd).btf_size
            buf = cdata.create_string_buffer(size)
            info = A.BpfBtfInfo(btf=A.addr(buf), btf_size=size)
            _bpf.obj_get_info_by_fd(fd, info)
            if info.kernel_btf:  # vmlinux or a module: not a map's own types
                return None
            return BTF.from_bytes(buf.raw[:info.btf_size])
    except (OSError, Error):
        return None


def _decode(tp: Any, raw: bytes) -> Any:
    if tp is int:
        return int.from_bytes(raw, "little")
    if tp is bytes:
        return raw
    return tp.from_buffer_copy(raw)


def _bpf_fs_missing(path: str | os.PathLike[str]) -> bool:
    """True if the parent directory of ``path`` is not on bpffs."""
    return not _is_bpffs(os.path.dirname(os.path.abspath(os.fspath(path))))


def _is_bpffs(directory: str) -> bool:
    try:
        with open("/proc/self/mounts") as f:
            mounts = [line.split() for line in f]
    except OSError:
        return False
    best = ""
    fstype = ""
    for m in mounts:
        if len(m) >= 3 and (directory == m[1] or directory.startswith(m[1].rstrip("/") + "/")):
            if len(m[1]) >= len(best):
                best, fstype = m[1], m[2]
    return fstype == "bpf"


def _create_error(e: OSError, label: str, map_type: int) -> NoReturn:
    """Explain a failed BPF_MAP_CREATE: missing map type, privileges, or bad definition."""
    if e.errno in (errno.EINVAL, errno.E2BIG, errno.EOPNOTSUPP, ENOTSUPP):
        from .features import has_map_type

        try:
            known = has_map_type(map_type)
        except Error:
            known = True
        if not known:
            raise FeatureMissing(
                f"map type {map_type_name(map_type)}",
                "the running kernel does not support it",
            ) from e
    if e.errno == errno.EINVAL:
        raise MapError(
            f"map {label!r}: kernel rejected the definition ({map_type_name(map_type)}): "
            f"{describe(e)}"
        ).with_cause(e.errno, f"create map {label!r}") from e
    raise_for(e, f"create map {label!r}", capability="CAP_BPF", error=MapError)


__all__ = [
    "Map", "MapInfo", "check_compatible", "possible_cpus", "map_type_name", "PERCPU_TYPES",
    "ARRAY_TYPES", "PLAIN_ARRAY_TYPES",
]
