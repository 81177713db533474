"""libbpf through ctypes, as an independent oracle for the committed BPF objects.

The tests use it to prove the objects themselves are right (they load, attach and
produce the documented records under the reference loader), separately from
whether coreframe's own loader handles them.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
from collections.abc import Callable, Iterable
from types import TracebackType

from elftools.elf.elffile import ELFFile

RING_SAMPLE_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t)
PERF_SAMPLE_FN = ctypes.CFUNCTYPE(
    None, ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_uint32
)
PERF_LOST_FN = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int, ctypes.c_uint64)


def _load_libbpf() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("bpf")
    if not name:
        return None
    lib = ctypes.CDLL(name, use_errno=True)
    vp = ctypes.c_void_p
    sigs: dict[str, tuple[object, list[object]]] = {
        "bpf_object__open_file": (vp, [ctypes.c_char_p, vp]),
        "bpf_object__load": (ctypes.c_int, [vp]),
        "bpf_object__close": (None, [vp]),
        "bpf_object__find_program_by_name": (vp, [vp, ctypes.c_char_p]),
        "bpf_object__find_map_by_name": (vp, [vp, ctypes.c_char_p]),
        "bpf_object__next_program": (vp, [vp, vp]),
        "bpf_program__name": (ctypes.c_char_p, [vp]),
        "bpf_program__set_autoload": (ctypes.c_int, [vp, ctypes.c_bool]),
        "bpf_program__autoload": (ctypes.c_bool, [vp]),
        "bpf_program__attach": (vp, [vp]),
        "bpf_link__destroy": (ctypes.c_int, [vp]),
        "bpf_map__name": (ctypes.c_char_p, [vp]),
        "bpf_map__fd": (ctypes.c_int, [vp]),
        "bpf_map__initial_value": (vp, [vp, ctypes.POINTER(ctypes.c_size_t)]),
        "bpf_map__set_max_entries": (ctypes.c_int, [vp, ctypes.c_uint32]),
        "bpf_object__next_map": (vp, [vp, vp]),
        "bpf_map_get_next_key": (ctypes.c_int, [ctypes.c_int, vp, vp]),
        "bpf_map_lookup_elem": (ctypes.c_int, [ctypes.c_int, vp, vp]),
        "bpf_map_update_elem": (ctypes.c_int, [ctypes.c_int, vp, vp, ctypes.c_uint64]),
        "ring_buffer__new": (vp, [ctypes.c_int, RING_SAMPLE_FN, vp, vp]),
        "ring_buffer__poll": (ctypes.c_int, [vp, ctypes.c_int]),
        "ring_buffer__consume": (ctypes.c_int, [vp]),
        "ring_buffer__free": (None, [vp]),
        "perf_buffer__new": (
            vp, [ctypes.c_int, ctypes.c_size_t, PERF_SAMPLE_FN, PERF_LOST_FN, vp, vp]
        ),
        "perf_buffer__poll": (ctypes.c_int, [vp, ctypes.c_int]),
        "perf_buffer__consume": (ctypes.c_int, [vp]),
        "perf_buffer__free": (None, [vp]),
        "libbpf_num_possible_cpus": (ctypes.c_int, []),
    }
    for fn, (restype, argtypes) in sigs.items():
        f = getattr(lib, fn)
        f.restype = restype
        f.argtypes = argtypes
    return lib


LIBBPF = _load_libbpf()


def _errno_error(what: str) -> OSError:
    err = ctypes.get_errno() or errno.EINVAL
    return OSError(err, f"libbpf: {what}: {os.strerror(err)}")


def rodata_layout(path: str) -> dict[str, tuple[int, int]]:
    """Offsets and sizes of the global variables in .rodata, from the ELF symbols."""
    with open(path, "rb") as f:
        elf = ELFFile(f)
        rodata_index = next(
            i for i, s in enumerate(elf.iter_sections()) if s.name == ".rodata"
        )
        symtab = elf.get_section_by_name(".symtab")
        return {
            sym.name: (sym["st_value"], sym["st_size"])
            for sym in symtab.iter_symbols()
            if sym["st_shndx"] == rodata_index and sym["st_info"]["type"] == "STT_OBJECT"
        }


class LibbpfObject:
    """A BPF object opened and loaded by libbpf; closing detaches and frees everything."""

    def __init__(
        self,
        path: str,
        rodata: dict[str, int | bool] | None = None,
        disable: Iterable[str] = (),
        max_entries: dict[str, int] | None = None,
    ) -> None:
        if LIBBPF is None:
            raise RuntimeError("libbpf shared library not found")
        self.lib = LIBBPF
        self.links: list[int] = []
        self.obj = self.lib.bpf_object__open_file(path.encode(), None)
        if not self.obj:
            raise _errno_error(f"open {path}")
        try:
            self._set_rodata(path, rodata or {})
            for name in disable:
                self.lib.bpf_program__set_autoload(self._prog(name), False)
            for name, n in (max_entries or {}).items():
                if self.lib.bpf_map__set_max_entries(self._map(name), n):
                    raise _errno_error(f"resize {name}")
            if self.lib.bpf_object__load(self.obj):
                raise _errno_error(f"load {path}")
        except BaseException:
            self.close()
            raise

    def _prog(self, name: str) -> int:
        prog = self.lib.bpf_object__find_program_by_name(self.obj, name.encode())
        if not prog:
            raise KeyError(f"no program {name!r}")
        return prog

    def _map(self, name: str) -> int:
        m = self.lib.bpf_object__find_map_by_name(self.obj, name.encode())
        if not m:
            raise KeyError(f"no map {name!r}")
        return m

    def _set_rodata(self, path: str, values: dict[str, int | bool]) -> None:
        if not values:
            return
        layout = rodata_layout(path)
        rodata = None
        m = None
        while True:
            m = self.lib.bpf_object__next_map(self.obj, m)
            if not m:
                break
            if self.lib.bpf_map__name(m).endswith(b".rodata"):
                rodata = m
                break
        if rodata is None:
            raise KeyError("object has no .rodata")
        size = ctypes.c_size_t()
        base = self.lib.bpf_map__initial_value(rodata, ctypes.byref(size))
        for name, value in values.items():
            off, width = layout[name]
            raw = int(value).to_bytes(width, "little", signed=int(value) < 0)
            ctypes.memmove(base + off, raw, width)

    def map_fd(self, name: str) -> int:
        return self.lib.bpf_map__fd(self._map(name))

    def attach(self) -> None:
        """Attach every program that is going to be loaded, the way a skeleton would."""
        prog = None
        while True:
            prog = self.lib.bpf_object__next_program(self.obj, prog)
            if not prog:
                break
            if not self.lib.bpf_program__autoload(prog):
                continue
            link = self.lib.bpf_program__attach(prog)
            if not link:
                name = self.lib.bpf_program__name(prog).decode()
                raise _errno_error(f"attach {name}")
            self.links.append(link)

    def items(self, name: str, key_size: int, value_size: int) -> list[tuple[bytes, bytes]]:
        """Every (key, value) of a hash/array map, values raw (per-CPU values concatenated)."""
        fd = self.map_fd(name)
        out = []
        key = ctypes.create_string_buffer(key_size)
        nxt = ctypes.create_string_buffer(key_size)
        value = ctypes.create_string_buffer(value_size)
        prev = None
        while self.lib.bpf_map_get_next_key(fd, prev, nxt) == 0:
            ctypes.memmove(key, nxt, key_size)
            prev = key
            if self.lib.bpf_map_lookup_elem(fd, key, value) == 0:
                out.append((key.raw, value.raw))
        return out

    def close(self) -> None:
        for link in self.links:
            self.lib.bpf_link__destroy(link)
        self.links.clear()
        if self.obj:
            self.lib.bpf_object__close(self.obj)
            self.obj = None

    def __enter__(self) -> LibbpfObject:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class RingReader:
    """libbpf ring_buffer over one ringbuf map; collects raw records."""

    def __init__(self, obj: LibbpfObject, map_name: str) -> None:
        self.lib = obj.lib
        self.records: list[bytes] = []
        self._cb = RING_SAMPLE_FN(self._sample)
        self.rb = self.lib.ring_buffer__new(obj.map_fd(map_name), self._cb, None, None)
        if not self.rb:
            raise _errno_error(f"ring_buffer__new {map_name}")

    def _sample(self, _ctx: int | None, data: int, size: int) -> int:
        self.records.append(ctypes.string_at(data, size))
        return 0

    def poll(self, timeout_ms: int = 100) -> int:
        return self.lib.ring_buffer__poll(self.rb, timeout_ms)

    def close(self) -> None:
        if self.rb:
            self.lib.ring_buffer__free(self.rb)
            self.rb = None


class PerfReader:
    """libbpf perf_buffer over one perf event array map; collects raw records."""

    def __init__(self, obj: LibbpfObject, map_name: str, pages: int = 64) -> None:
        self.lib = obj.lib
        self.records: list[bytes] = []
        self.lost = 0
        self._sample_cb = PERF_SAMPLE_FN(self._sample)
        self._lost_cb = PERF_LOST_FN(self._lost)
        self.pb = self.lib.perf_buffer__new(
            obj.map_fd(map_name), pages, self._sample_cb, self._lost_cb, None, None
        )
        if not self.pb:
            raise _errno_error(f"perf_buffer__new {map_name}")

    def _sample(self, _ctx: int | None, _cpu: int, data: int, size: int) -> None:
        self.records.append(ctypes.string_at(data, size))

    def _lost(self, _ctx: int | None, _cpu: int, count: int) -> None:
        self.lost += count

    def poll(self, timeout_ms: int = 100) -> int:
        return self.lib.perf_buffer__poll(self.pb, timeout_ms)

    def close(self) -> None:
        if self.pb:
            self.lib.perf_buffer__free(self.pb)
            self.pb = None


def drain(reader: RingReader | PerfReader, until: Callable[[], bool], polls: int = 50) -> None:
    """Poll until a condition holds or the attempts run out (no wall-clock asserts)."""
    for _ in range(polls):
        reader.poll(100)
        if until():
            return
