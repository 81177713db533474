"""The running kernel's BTF, with an on-disk index cache.

Scanning vmlinux BTF (~130k records) and sorting its names is a Python loop
over every record; a warm start must not pay that. The index (record
offsets plus a name-sorted ``(name offset, type id)`` table) is stored in a
user-owned cache directory under a file named by the BTF's SHA-256, so a changed
kernel simply misses the cache and a stale file can never be applied.
"""

from __future__ import annotations

import os
import zlib

from ..errors import AttachError, BTFError, FeatureMissing, ObjectError
from ..runtime.cache import atomic_write as _atomic_write
from ..runtime.cache import cache_dir
from ..runtime.startup import gc_paused, memoize
from ..sys.host import VMLINUX_BTF
from .types import BTF, Kind

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

SYSFS_BTF = "/sys/kernel/btf"
VMLINUX_PATH = VMLINUX_BTF

_CACHE_MAGIC = b"CFBTFIDX"
_CACHE_VERSION = 1
# Little-endian header, 64 bytes: magic (8), version (u32), n_offsets (u32), n_names
# (u32), btf_len (u64), payload adler32 (u32), sha256 of the BTF (32). Read with
# int.from_bytes (a warm start imports no struct), written with struct.
_CACHE_HDR_FORMAT = "<8sIIIQI32s"
_CACHE_HDR_SIZE = 64


def _le(blob: Any, start: int, end: int) -> int:
    return int.from_bytes(blob[start:end], "little")


def _cache_file(directory: str, digest: bytes) -> str:
    return os.path.join(directory, f"btf-{digest.hex()[:40]}.idx")


def _read_cache(
    path: str, digest: bytes, btf_len: int
) -> tuple[Sequence[int], Sequence[int], Sequence[int]] | None:
    """Offsets and name index from a cache file, or None if absent/corrupt/foreign."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        size = os.fstat(fd).st_size
        if size < _CACHE_HDR_SIZE:
            return None
        # mapped, not read: the views below index the page cache directly
        import mmap  # here, not at the top: replaying CO-RE results never maps anything

        blob: Any = mmap.mmap(fd, size, flags=mmap.MAP_PRIVATE, prot=mmap.PROT_READ)
    except (OSError, ValueError):
        return None
    finally:
        os.close(fd)
    magic, file_digest = blob[:8], blob[32:64]
    version, n_off, n_names = _le(blob, 8, 12), _le(blob, 12, 16), _le(blob, 16, 20)
    length, check = _le(blob, 20, 28), _le(blob, 28, 32)
    if (magic != _CACHE_MAGIC or version != _CACHE_VERSION or file_digest != digest
            or length != btf_len
            or len(blob) != _CACHE_HDR_SIZE + 4 * (n_off + 2 * n_names)):
        return None
    payload = memoryview(blob)[_CACHE_HDR_SIZE:]
    if zlib.adler32(payload) != check:
        return None
    # Zero-copy u32 views over the file's bytes; they index like arrays.
    words = payload.cast("I")
    return (words[:n_off], words[n_off:n_off + n_names], words[n_off + n_names:])


def _write_cache(path: str, digest: bytes, btf_len: int, offsets: Sequence[int],
                 name_offs: Sequence[int], ids: Sequence[int]) -> None:
    """Write atomically (tmp file + rename); failure only costs the next start time."""
    import struct
    from array import array

    payload = b"".join(array("I", seq).tobytes() for seq in (offsets, name_offs, ids))
    hdr = struct.pack(_CACHE_HDR_FORMAT, _CACHE_MAGIC, _CACHE_VERSION, len(offsets),
                      len(name_offs), btf_len, zlib.adler32(payload), digest)
    _atomic_write(path, hdr, payload)


def content_hash(data: Any) -> bytes:
    """SHA-256 of the BTF bytes: the cache key, so a different kernel never matches."""
    import hashlib  # a warm start never hashes (see load_indexed): keep it off its imports

    return hashlib.sha256(data).digest()


_BOOT_ID = "/proc/sys/kernel/random/boot_id"
# magic (8), BTF length (u64, little-endian), sha256 of the BTF (32)
_STAMP_SIZE = 48
_STAMP_MAGIC = b"CFBTFSUM"


def _stamp_file(directory: str) -> str | None:
    """Where this boot's vmlinux digest is remembered; None without a boot id."""
    try:
        with open(_BOOT_ID, "rb") as f:
            boot = f.read(64).strip().decode("ascii", "replace")
    except OSError:
        return None
    if not boot or not boot.replace("-", "").isalnum():
        return None
    return os.path.join(directory, f"vmlinux-{boot}.sum")


def _read_stamp(path: str, btf_len: int) -> bytes | None:
    try:
        with open(path, "rb") as f:
            blob = f.read(_STAMP_SIZE + 1)
    except OSError:
        return None
    if len(blob) != _STAMP_SIZE:
        return None
    magic, length, digest = blob[:8], _le(blob, 8, 16), blob[16:48]
    return digest if magic == _STAMP_MAGIC and length == btf_len else None


def _write_stamp(path: str, btf_len: int, digest: bytes) -> None:
    """Remember this boot's digest; earlier boots' stamps are dropped (never valid again)."""
    directory, own = os.path.split(path)
    try:
        for name in os.listdir(directory):
            if name.startswith("vmlinux-") and name.endswith(".sum") and name != own:
                os.unlink(os.path.join(directory, name))
    except OSError:
        pass
    _atomic_write(path, _STAMP_MAGIC + btf_len.to_bytes(8, "little") + digest)


def vmlinux_digest() -> bytes | None:
    """SHA-256 of the running kernel's BTF if this boot already computed it, else None.

    Cheap (two small reads): caches keyed by the kernel's BTF use it to avoid
    loading that BTF at all when what they remember still applies.
    """
    directory = cache_dir()
    stamp = _stamp_file(directory) if directory else None
    if stamp is None:
        return None
    try:
        size = os.stat(VMLINUX_PATH).st_size
    except OSError:
        return None
    return _read_stamp(stamp, size)


def load_indexed(data: Any, *, boot_constant: bool = False) -> BTF:
    """A base (non-split) BTF whose index comes from / goes to the disk cache.

    ``boot_constant`` says ``data`` cannot change before the next reboot (the
    running kernel's vmlinux BTF): its SHA-256 is then remembered per boot id, so
    a warm start skips hashing 5 MB (about a third of its budget). The index
    itself stays keyed by the content hash.
    """
    directory = cache_dir()
    stamp = _stamp_file(directory) if directory and boot_constant else None
    digest = _read_stamp(stamp, len(data)) if stamp else None
    trusted = digest is None
    if digest is None:
        digest = content_hash(data)
        if stamp:
            _write_stamp(stamp, len(data), digest)
    path = _cache_file(directory, digest) if directory else None
    if path is not None:
        cached = _read_cache(path, digest, len(data))
        if cached is not None:
            offsets, name_offs, ids = cached
            try:
                return BTF(data, offsets=offsets, name_index=(name_offs, ids))
            except ObjectError:
                pass
    if not trusted:
        # a memoized digest that leads nowhere is re-checked before anything is
        # written under its name
        real = content_hash(data)
        if real != digest:
            digest = real
            path = _cache_file(directory, digest) if directory else None
            if stamp:
                _write_stamp(stamp, len(data), digest)
    btf = BTF(data)
    if path is not None:
        # Lookups work without the sorted index (see BTF._scan_find), so building
        # and writing it waits until the tool has started: at exit, or earlier
        # through save_pending_indexes().
        _pending.append((btf, path, digest, len(data)))
        if len(_pending) == 1:
            import atexit

            atexit.register(save_pending_indexes)
    return btf


_pending: list[tuple[BTF, str, bytes, int]] = []


def save_pending_indexes() -> None:
    """Build and cache the name index of every BTF loaded cold in this process."""
    while _pending:
        btf, path, digest, size = _pending.pop()
        try:
            name_offs, ids = btf.name_index()
            _write_cache(path, digest, size, btf.offsets, name_offs, ids)
        except (OSError, ObjectError):
            pass  # the cache is an optimisation: a later start just builds it again


def _read_sysfs(path: str) -> Any:
    """The file's bytes: a private read-only mmap when the kernel allows it (no copy),
    else a plain read."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        raise
    except OSError as e:
        raise BTFError(f"cannot open {path}: {e.strerror}") from e
    try:
        try:
            size = os.fstat(fd).st_size
            if size > 0:
                import mmap

                return mmap.mmap(fd, size, flags=mmap.MAP_PRIVATE, prot=mmap.PROT_READ)
        except (OSError, ValueError):
            pass
        chunks = []
        while True:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


@memoize
@gc_paused
def vmlinux() -> BTF:
    """The running kernel's BTF (memoized per process)."""
    try:
        data = _read_sysfs(VMLINUX_PATH)
    except FileNotFoundError:
        data = b""
    if not len(data):  # absent, or hidden under an empty file
        raise FeatureMissing(
            "kernel BTF (/sys/kernel/btf/vmlinux)",
            "needs CONFIG_DEBUG_INFO_BTF=y; for CO-RE alone, a target BTF file will do "
            "(--btf FILE, docs/no-btf.md)",
        ) from None
    return load_indexed(data, boot_constant=True)


def btf_from_path(path: str) -> BTF:
    """Parse a raw BTF file, or the ``.BTF`` section of an ELF object."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise BTFError(f"cannot read {path}: {e.strerror}") from e
    if data[:4] == b"\x7fELF":
        data = _elf_btf_section(data, path)
    elif data[:2] not in (b"\x9f\xeb", b"\xeb\x9f"):  # BTF magic, either byte order
        raise ObjectError(f"{path}: neither raw BTF (magic 0xeb9f) nor an ELF object with "
                          "a .BTF section")
    return BTF(data)


def _elf_btf_section(data: bytes, path: str) -> bytes:
    """Extract ``.BTF`` with pyelftools (imported here: it is slow to import)."""
    import io
    import struct

    from elftools.common.exceptions import ELFError
    from elftools.elf.elffile import ELFFile

    try:
        elf = ELFFile(io.BytesIO(data))
        sec = elf.get_section_by_name(".BTF")
        if sec is None:
            raise BTFError(f"{path}: ELF object has no .BTF section (build with clang -g)")
        return sec.data()
    except ELFError as e:
        raise BTFError(f"{path}: malformed ELF: {e}") from e
    except (ValueError, struct.error, OSError, OverflowError) as e:
        # pyelftools' own failures on hostile offsets (OverflowError: a string-table
        # offset past any seekable position); its code cannot take our bounds checks
        raise BTFError(f"{path}: malformed ELF: {e}") from e


def load_target(path: str | None = None) -> BTF:
    """Target BTF for CO-RE: a file (raw BTF, BTFHub's ``.btf.tar.xz``, or an ELF
    object's ``.BTF``), or with None the one :func:`coreframe.btf.locate.find` picks
    (``COREFRAME_BTF``, the running kernel's, the BTF search path)."""
    from . import locate

    target = locate.find(path)
    if target.is_kernel:
        return vmlinux()
    path = target.path
    try:
        with open(path, "rb") as f:
            head = f.read(6)
    except OSError as e:
        raise BTFError(f"cannot read {path}: {e.strerror}") from e
    if head == b"\xfd7zXZ\x00":  # xz: BTFHub's RELEASE.btf.tar.xz
        return load_indexed(locate.read(path))
    if head[:4] == b"\x7fELF":
        return btf_from_path(path)
    try:
        data = _read_sysfs(path)
    except FileNotFoundError:
        raise BTFError(f"cannot read {path}: no such file") from None
    if data[:2] not in (b"\x9f\xeb", b"\xeb\x9f"):  # BTF magic, either byte order
        raise BTFError(f"{path}: not BTF (neither raw BTF with magic 0xeb9f, BTFHub's "
                       ".btf.tar.xz, nor an ELF object with a .BTF section)")
    return load_indexed(data)


def module_names() -> list[str]:
    """Kernel modules that expose split BTF under /sys/kernel/btf."""
    try:
        return sorted(n for n in os.listdir(SYSFS_BTF) if n != "vmlinux")
    except OSError:
        return []


@memoize
def module_btf(name: str) -> BTF:
    """A loaded module's BTF, split on top of vmlinux (ids continue from it)."""
    if not name or "/" in name or name.startswith("."):
        raise BTFError(f"invalid kernel module name {name!r}")
    base = vmlinux()
    try:
        data = _read_sysfs(os.path.join(SYSFS_BTF, name))
    except FileNotFoundError:
        raise FeatureMissing(
            f"BTF for kernel module {name!r}",
            "module not loaded, or built without CONFIG_DEBUG_INFO_BTF_MODULES",
        ) from None
    return BTF(data, base)


def find_function(name: str) -> tuple[BTF, int]:
    """``(btf, type id)`` of kernel function ``name``: vmlinux first, then modules.

    This is what fentry/fexit/LSM attach needs for ``attach_btf_id`` (plus the
    module BTF's object fd when the function lives in a module).
    """
    base = vmlinux()
    ids = base.find(name, Kind.FUNC)
    if ids:
        return base, ids[0]
    for mod in module_names():
        try:
            btf = module_btf(mod)
        except (FeatureMissing, ObjectError):
            continue
        ids = [i for i in btf.find(name, Kind.FUNC) if i >= btf.start_id]
        if ids:
            return btf, ids[0]
    raise AttachError(f"kernel function {name!r} not found in vmlinux or module BTF")
