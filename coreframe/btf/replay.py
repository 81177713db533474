"""Replaying CO-RE results recorded by an earlier load (:class:`CachedRelocator`).

The loader's relocator for the running kernel: it hands out the results an
earlier load of the same object on the same kernel recorded in the user cache
directory, and resolves for real (:class:`~coreframe.btf.core.CoreRelocator`)
only when a request departs from the record.
"""

from __future__ import annotations

from coreframe.btf.relo import CoreResult, apply_result, relo_name
from coreframe.errors import RelocationError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from coreframe.btf.core import CoreRelocator
    from coreframe.btf.ext import CoreRelo
    from coreframe.btf.types import BTF


_CACHE_MAGIC = "coreframe CO-RE results"
_CACHE_VERSION = 1
_CACHE_KEEP = 128  # result files kept, newest first (one per object BTF and kernel)


def _cache_stamp() -> tuple[int, ...] | None:
    """Changes whenever the CO-RE code (matcher, replay, type decoding) does, so results
    of older code are never reused."""
    from ..runtime.cache import source_stamp

    return source_stamp(_CACHE_VERSION, __file__, "core.py", "relo.py", "replay.py", "types.py",
                        "kinds.py")


class CachedRelocator:
    """Resolves like :class:`~coreframe.btf.core.CoreRelocator` for the running
    kernel, replaying the results an earlier load recorded.

    Resolving needs the kernel's BTF (its index loaded, types decoded) and the
    matcher at every tool's start-up, for answers that change only
    with the object, the kernel or the CO-RE code. So the results of a load are
    written to the user cache directory (next to the kernel BTF index), keyed by
    the object's .BTF bytes, the kernel BTF's SHA-256 and the code's file stamps,
    and a later load replays them.

    Candidate pruning makes libbpf's results depend on the order relocations are
    resolved in, so a replay must request them in the recorded order; at the first
    request that departs from it, the ones already handed out are resolved again
    for real, in the order they were requested, and all later ones normally.
    """

    def __init__(self, local: BTF, load_target: Callable[[], BTF]) -> None:
        self.local = local
        self._load_target = load_target
        self._local_bytes = local.to_bytes()
        self._stamp = _cache_stamp()
        self._order: list[tuple[int, str, int]] = []
        self._results: dict[tuple[int, str, int], tuple[Any, ...]] = {}
        self._requested: list[CoreRelo] = []
        self._replayed: dict[tuple[int, str, int], CoreResult] = {}
        self._real: CoreRelocator | None = None
        self._read()

    @staticmethod
    def _key(relo: CoreRelo) -> tuple[int, str, int]:
        return relo.type_id, relo.access_str, relo.kind

    def _file(self, digest: bytes) -> str | None:
        import zlib

        from ..runtime.cache import cache_dir

        directory = cache_dir()
        if directory is None or self._stamp is None:
            return None
        crc = zlib.crc32(self._local_bytes)
        return f"{directory}/core-{crc:08x}-{len(self._local_bytes)}-{digest.hex()[:32]}.res"

    def _read(self) -> None:
        from ..runtime.cache import read_marshal
        from .kernel import vmlinux_digest

        digest = vmlinux_digest()
        path = self._file(digest) if digest is not None else None
        blob = read_marshal(path) if path is not None else None
        try:
            magic, stamp, file_digest, local, order, results = blob  # type: ignore[misc]
        except (TypeError, ValueError):
            return  # absent or damaged: resolve normally and rewrite it
        try:
            if (magic != _CACHE_MAGIC or stamp != self._stamp or file_digest != digest
                    or local != self._local_bytes or not isinstance(order, list)
                    or not isinstance(results, dict) or set(order) != set(results)
                    or not all(type(v) is tuple and len(v) == 13 for v in results.values())):
                return
        except TypeError:  # unhashable keys: not something save() wrote
            return
        self._order, self._results = order, results

    def resolve(self, relo: CoreRelo) -> CoreResult:
        """The result of ``relo``: replayed while requests follow the record, else computed."""
        if self._real is not None:
            return self._real.resolve(relo)
        key = self._key(relo)
        done = self._replayed.get(key)
        if done is not None:
            return done
        n = len(self._replayed)
        if n < len(self._order) and self._order[n] == key:
            res = self._replayed[key] = CoreResult(*self._results[key])
            self._requested.append(relo)
            return res
        # off the recorded path (or nothing recorded): resolve for real from the start
        from .core import CoreRelocator

        real = self._real = CoreRelocator(self.local, self._load_target())
        for earlier in self._requested:
            real.resolve(earlier)
        return real.resolve(relo)

    def apply(self, insns: bytearray, insn_index: int, relo: CoreRelo,
              result: CoreResult) -> None:
        """Patch instruction ``insn_index`` with ``result`` (see :func:`apply_result`)."""
        try:
            apply_result(insns, insn_index, result)
        except RelocationError as e:  # named only when it fails: naming reads the BTF
            prefix = "CO-RE relocation: "
            text = str(e).removeprefix(prefix)
            raise RelocationError(f"{relo_name(self.local, relo)}: {text}") from None

    def save(self) -> None:
        """Record what this load resolved for real (a replay leaves the file as it is)."""
        if self._real is None:
            return
        import os

        from ..runtime.cache import prune, write_marshal
        from .kernel import vmlinux_digest

        digest = vmlinux_digest()
        path = self._file(digest) if digest is not None else None
        if path is None:
            return
        order: list[tuple[int, str, int]] = []
        results: dict[tuple[int, str, int], tuple[Any, ...]] = {}
        for relo, res in self._real.outcomes().items():
            key = self._key(relo)
            if isinstance(res, CoreResult) and key not in results:
                order.append(key)
                results[key] = res.values()
        blob = (_CACHE_MAGIC, self._stamp, digest, self._local_bytes, order, results)
        write_marshal(path, blob)
        prune(os.path.dirname(path), "core-", ".res", _CACHE_KEEP)
