"""BPF objects: ``open()`` parses an ELF into an :class:`ObjectSpec`; ``.load()`` makes it live.

An :class:`ObjectSpec` is what libbpf's bpf_object__open produces, without
touching the kernel: programs, maps, global data, relocations and BTF, all
editable until load. Reading it from the ELF is :mod:`coreframe.object.reader`
(skipped when the parsed spec is in the user cache); loading it is
:mod:`coreframe.object.loader`, whose :class:`~coreframe.object.loader.Object` owns what
the kernel holds.
"""

from __future__ import annotations

import builtins
import os

from ..errors import ObjectError
from ..runtime.startup import gc_paused, memoize
from .parts import KCONFIG_SEC, MapDict, NamedDataSections, ProgramDict

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from ..btf.ext import BTFExt
    from ..btf.types import BTF
    from .elf import ElfFile
    from .loader import Object
    from .parts import Extern, Func
    from .variables import DataSection

class ObjectSpec(NamedDataSections):
    """A parsed BPF object; nothing is in the kernel until :meth:`load`."""

    # rebuilt on first use rather than stored by the spec cache (see the elf property)
    _codec_transient = ("_elf",)

    def __init__(self, elf: ElfFile, name: str,
                 target_btf: BTF | str | os.PathLike[str] | None = None) -> None:
        self._elf: ElfFile | None = elf
        self.elf_data = elf.data
        self.elf_name = elf.name
        self.name = name
        self.target_btf = target_btf
        self.license = elf.license or ""
        self.kernel_version = elf.kernel_version
        self.programs: ProgramDict = ProgramDict()
        self.maps: MapDict = MapDict()
        self.subprograms: dict[tuple[str, int], Func] = {}
        self.functions: dict[str, list[Func]] = {}
        self.externs: dict[str, Extern] = {}
        self.btf: BTF | None = None
        self.btf_ext: BTFExt | None = None
        self._datasecs: dict[str, DataSection] = {}
        # what loading needs of the ELF (the BTF's DATASEC sizes), so a spec from the
        # cache never has to read the ELF's tables again
        self.section_sizes = {sec.name: sec.size for sec in elf.sections if sec.name}
        from .reader import ElfReader

        ElfReader(self).parse()

    @property
    def elf(self) -> ElfFile:
        """The ELF file; a spec read back from the cache makes it (unparsed) on first use,
        so a warm open does not import the ELF reader at all."""
        elf = self.__dict__.get("_elf")
        if elf is None:
            from .elf import ElfFile

            elf = self._elf = ElfFile.unparsed(self.elf_data, self.elf_name)
        return elf

    # ---- global variables -------------------------------------------------------------

    def datasec(self, section: str) -> DataSection:
        """Typed variables of one global data section (``.rodata``, ``.data.foo``, ...)."""
        ds = self._datasecs.get(section)
        if ds is not None:
            return ds
        m = self.maps.get(section)
        if m is None or m.data is None or section in (KCONFIG_SEC,):
            have = [k for k, v in self.maps.items() if v.data is not None and k != KCONFIG_SEC]
            raise ObjectError(f"object {self.name!r} has no global data section {section!r}"
                              f" (it has: {', '.join(have) or 'none'})")
        from .variables import DataSection

        ds = DataSection(self, section, m)
        self._datasecs[section] = ds
        return ds

    def data_sections(self) -> list[DataSection]:
        """Every global data section with variables (.rodata, .data, .bss, custom ones)."""
        return [self.datasec(k) for k, m in self.maps.items()
                if m.data is not None and k != KCONFIG_SEC]

    def set_variable(self, name: str, text: str) -> None:
        """CLI ``--set NAME=VALUE``: find NAME in the data sections, parse VALUE by its type.

        ``SECTION:NAME`` (e.g. ``.data:counter``) picks a section when a name is
        defined in more than one.
        """
        from .variables import UnknownVariable

        if ":" in name:
            section, _, var = name.partition(":")
            self.datasec(section).set_from_string(var, text)
            return
        found = [ds for ds in self.data_sections() if name in ds]
        if len(found) > 1:
            where = ", ".join(ds.section for ds in found)
            raise ObjectError(f"variable {name!r} is defined in {where}; "
                              f"use SECTION:{name}=VALUE")
        if not found:
            every = [v for ds in self.data_sections() for v in ds.names()]
            import difflib  # error path only: keep it off the start-up imports

            close = difflib.get_close_matches(name, every, n=3, cutoff=0.5)
            hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            raise UnknownVariable(f"object {self.name!r} has no global variable {name!r}"
                                  f"{hint} (variables: {', '.join(every) or 'none'})")
        found[0].set_from_string(name, text)

    @gc_paused
    def load(self, target_btf: BTF | str | os.PathLike[str] | None = None,
             pin_root: str | None = None) -> Object:
        """Create maps, relocate and load every autoload program (libbpf's bpf_object__load).

        ``target_btf`` (a BTF, or a path to raw BTF, BTFHub's ``.btf.tar.xz`` or an ELF
        with ``.BTF``) is what CO-RE relocates against; by default the one given to
        :func:`open`, else ``$COREFRAME_BTF``, the running kernel's, or a file on the
        BTF search path (:mod:`coreframe.btf.locate`, docs/no-btf.md), and with none
        of them ``FeatureMissing`` before anything is created; ``pin_root`` is where
        LIBBPF_PIN_BY_NAME maps live (default /sys/fs/bpf). On any failure everything
        created so far is closed.
        """
        from .loader import Loader

        loader = Loader(self, target_btf if target_btf is not None else self.target_btf,
                        pin_root)
        return loader.run()

    def __repr__(self) -> str:
        return (f"<ObjectSpec {self.name!r}: {len(self.programs)} programs, "
                f"{len(self.maps)} maps>")


def object_name(path: str) -> str:
    """libbpf's object name: the file's base name up to its first dot."""
    base = os.path.basename(path)
    return base.split(".", 1)[0] or base


@gc_paused
def open(source: Any, btf: BTF | str | os.PathLike[str] | None = None, *,  # noqa: A001
         name: str | None = None) -> ObjectSpec:
    """Parse a BPF ELF object (path or bytes) into an :class:`ObjectSpec`.

    ``btf`` is the target BTF used later for CO-RE, parsed or a file (see
    :meth:`ObjectSpec.load`; default: ``$COREFRAME_BTF``, the running kernel's, the
    BTF search path); ``name`` overrides the object name used for data map names.
    An object opened by path is parsed once: later opens of the same bytes at
    the same path rebuild the spec from the user cache (see :class:`SpecCache`).
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        from .elf import ElfFile

        return ObjectSpec(ElfFile(source, name=name), name or "obj", btf)
    path = os.fspath(source)
    try:
        with builtins.open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise ObjectError(f"{path}: cannot read: {e.strerror or e}") from e
    obj_name = name or object_name(path)
    cache = SpecCache(path, obj_name, data)
    spec = cache.read()
    if spec is None:
        from .elf import ElfFile  # a cache hit never needs the ELF reader

        spec = ObjectSpec(ElfFile(data, name=path), obj_name)
        cache.write(spec)
    spec.target_btf = btf
    return spec


_PACKAGE_FILE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                             "__init__.py")


class SpecCache:
    """Parsed objects kept in the user cache directory, one file per object path.

    Parsing an object is a large part of every tool's start-up, for a
    result that changes only with the file or with coreframe's parsing code. The
    stored spec is plain data rebuilt by :class:`~coreframe.runtime.cache.Codec` (no code
    runs on reading it) and is used only when the whole file, its path, the object
    name and the parser's source stamps all match; each open gets its own copy.
    """

    VERSION = 1
    KEEP = 64  # files kept; tests and builds open many short-lived objects
    # every module whose code shapes a parsed spec: a change to any of them misses
    # (paths under the coreframe package)
    SOURCES = ("object/__init__.py", "object/spec.py", "object/parts.py", "object/reader.py",
               "object/elf.py", "object/sections.py", "object/maptypes.py", "asm.py",
               "runtime/__init__.py", "runtime/startup.py", "runtime/compat.py",
               "runtime/cache.py", "btf/types.py", "btf/kinds.py",
               "btf/ext.py", "sys/consts.py", "sys/uapi_elf.py", "sys/cint.py")

    def __init__(self, path: str, obj_name: str, data: bytes) -> None:
        self.key = (os.path.abspath(path), path, obj_name)
        self.data = data
        self.file: str | None = None
        self.stamp: tuple[int, ...] | None = None
        from ..runtime.cache import cache_dir, source_stamp

        directory = cache_dir()
        if directory is None:
            return
        self.stamp = source_stamp(self.VERSION, _PACKAGE_FILE, *self.SOURCES)
        if self.stamp is None:
            return
        import zlib

        tag = zlib.crc32("\0".join(self.key).encode("utf-8", "surrogateescape"))
        self.file = os.path.join(directory, f"spec-{tag:08x}.obj")

    def read(self) -> ObjectSpec | None:
        if self.file is None:
            return None
        from ..runtime.cache import read_marshal

        blob = read_marshal(self.file)
        try:
            stamp, key, data, encoded = blob
        except (TypeError, ValueError):
            return None
        if stamp != self.stamp or key != self.key or data != self.data:
            return None
        try:
            spec = _spec_codec().decode(encoded)
        except (ValueError, ObjectError):
            return None
        return spec if type(spec) is ObjectSpec else None

    def write(self, spec: ObjectSpec) -> None:
        if self.file is None:
            return
        from ..runtime.cache import prune, write_marshal
        from .sections import find_section_def

        for prog in spec.programs.values():
            sd = prog.section_def
            if sd is not None and find_section_def(sd.name) != sd:
                return  # not what the table gives for its name: could not be rebuilt

        try:
            encoded = _spec_codec().encode(spec)
        except TypeError:  # something only a fresh parse can build: do not cache it
            return
        write_marshal(self.file, (self.stamp, self.key, self.data, encoded))
        prune(os.path.dirname(self.file), "spec-", ".obj", self.KEEP)


def _btf_state(btf: BTF) -> tuple[bytes, list[int]]:
    if btf.base is not None:
        raise TypeError("split BTF is not cached")
    return btf.to_bytes(), list(btf.offsets)


def _btf_from_state(state: tuple[bytes, list[int]]) -> BTF:
    from ..btf.types import BTF

    return BTF(state[0], offsets=state[1])


def _ext_state(ext: BTFExt) -> tuple[Any, ...]:
    """The section, its func_info and CO-RE records, and its line_info rows already
    checked (a load needs them), marshalled as one blob so the codec does not walk
    thousands of rows: a warm open parses nothing."""
    import marshal

    source = ext.source
    if source is None:
        raise TypeError("a BTFExt built from records is not cached")
    return (*source, ext.func_info, ext.core_relos, ext.version, ext.flags,
            marshal.dumps(ext.line_rows))


def _ext_from_state(state: tuple[Any, ...]) -> BTFExt:
    import marshal

    from ..btf.ext import BTFExt

    raw, btf, func_info, core_relos, version, flags, rows = state
    return BTFExt.restored(raw, btf, func_info, core_relos, version, flags,
                           lambda: marshal.loads(rows))


@memoize
def _spec_codec() -> Any:
    from ..btf.ext import BTFExt, CoreRelo, FuncInfo
    from ..btf.types import BTF
    from ..runtime.cache import Codec
    from . import parts

    classes = (ObjectSpec, ProgramDict, MapDict, parts.ProgramSpec, parts.Func, parts.MapSpec,
               parts.Reloc, parts.Extern, BTF,
               BTFExt, FuncInfo, CoreRelo)
    return Codec(classes, {BTF: (_btf_state, _btf_from_state),
                           BTFExt: (_ext_state, _ext_from_state)})
