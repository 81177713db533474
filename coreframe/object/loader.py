"""Loading an :class:`~coreframe.object.spec.ObjectSpec` into the kernel (libbpf's
bpf_object__load): create maps, load the object's BTF, resolve CO-RE, link
subprograms, apply relocations and load each program; :class:`Object` owns the
result (maps, programs, links) until it is closed.
"""

from __future__ import annotations

import builtins
import errno
import os
import struct
from itertools import chain

from .. import asm
from ..errors import ObjectError, RelocationError, VerifierError
from ..runtime.compat import zip_strict
from ..runtime.startup import allocate_lock, itemgetter, start_new_thread
from ..sys import consts as C
from ..sys import host
from ..sys.cint import s32
from .maptypes import NO_BTF_MAP_TYPES
from .parts import (
    KCONFIG_SEC,
    LIBBPF_PIN_BY_NAME,
    Extern,
    Func,
    MapDict,
    MapSpec,
    NamedDataSections,
    ProgramDict,
    ProgramSpec,
    Reloc,
    kernel_safe_name,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence
    from logging import Logger
    from typing import Any

    from ..btf.core import CoreRelocator
    from ..btf.ext import BTFExt, CoreRelo, LineInfo
    from ..btf.locate import Target
    from ..btf.relo import CoreResult
    from ..btf.replay import CachedRelocator
    from ..btf.types import BTF
    from ..link.base import Link
    from ..maps import Map
    from ..programs import Program
    from ..sys.fd import FD
    from .spec import ObjectSpec
    from .variables import DataSection


_KSYSCALL_WRAPPER_ARCHES = ("x86_64", "aarch64", "s390x", "riscv64", "arm64")


class Object(NamedDataSections):
    """A loaded BPF object: owns every map, program and BTF fd, and the links of attach()."""

    def __init__(self, spec: ObjectSpec) -> None:
        self.spec = spec
        self.name = spec.name
        self.btf = spec.btf
        self.btf_fd: FD | None = None
        self.maps: MapDict = MapDict()
        self.programs: ProgramDict = ProgramDict()
        self.links: list[Link] = []
        self.pinned: list[str] = []
        # What CO-RE relocated against (None: the object needed no CO-RE, or the
        # caller passed a parsed BTF) and every result it applied, in order:
        # (program, instruction index, CoreRelo, CoreResult)
        self.core_target: Target | None = None
        self.core_results: list[tuple[str, int, CoreRelo, CoreResult]] = []

    def datasec(self, section: str) -> DataSection:
        """Live typed variables of a global data map (``obj.bss.counter`` reads the kernel)."""
        from .variables import LiveDataSection

        self.spec.datasec(section)  # the spec's checks and error message for unknown names
        m = self.maps.get(section)
        if m is None:
            raise ObjectError(f"global data section {section!r} was not created")
        return LiveDataSection(self.spec, section, self.spec.maps[section], m)

    def attach(self, ifname: str | int | None = None) -> list[Link]:
        """Attach every loaded program whose SEC() says how (libbpf's auto-attach).

        Programs whose section names no target (``SEC("kprobe")``, ...) are skipped;
        attach those explicitly through ``coreframe.link``. XDP and tc programs
        (``SEC("xdp")``, ``"tc"``, ``"classifier"``, ``"tcx/ingress"``, ...) are
        attached to interface ``ifname`` when one is given (``link.netdev``), and
        skipped otherwise.
        """
        from ..link.auto import attach_program

        new = []
        tc_filters: dict[str, int] = {}
        try:
            for prog in self.programs.values():
                sd = prog.section_def
                if sd is None:
                    continue
                if ifname is not None and sd.attach_kind in ("xdp", "tc", "tcx"):
                    from ..link.netdev import attach_netdev, netdev_direction

                    where = netdev_direction(prog)
                    if where is not None:
                        # netlink tc filters of one direction need distinct priorities
                        tc_filters[where] = tc_filters.get(where, 0) + 1
                        new.append(attach_netdev(prog, ifname, priority=tc_filters[where]))
                    continue
                if not sd.auto_attach:
                    continue
                new.append(attach_program(prog))
        except BaseException:
            for link in new:
                link.close()
            raise
        self.links.extend(new)
        return new

    def detach(self) -> None:
        """Close every link made by :meth:`attach`.

        Closing a perf-event link waits for an RCU grace period in the kernel, one
        after the other when done in turn, so links that are plain fds are closed from
        threads at once and the waits overlap; links with undo steps (netlink
        XDP/tc) are closed first, one by one, newest first.
        """
        links, self.links = self.links[::-1], []
        plain = [link for link in links if link.fds_only]
        for link in links:
            if not link.fds_only:
                link.close()
        if len(plain) < 2:
            for link in plain:
                link.close()
            return
        jobs = [_Job(link.close) for link in plain[1:]]
        plain[0].close()
        for job in jobs:
            job.wait()

    def close(self) -> None:
        """Detach, then close every program, map and BTF fd (idempotent)."""
        self.detach()
        for p in self.programs.values():
            p.close()
        for m in self.maps.values():
            m.close()
        if self.btf_fd is not None:
            self.btf_fd.close()
            self.btf_fd = None

    def __enter__(self) -> Object:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"<Object {self.name!r}: {len(self.programs)} programs, {len(self.maps)} maps, "
                f"{len(self.links)} links>")


_col0, _col1, _col2, _col3 = (itemgetter(i) for i in range(4))
_CALL_BYTE = bytes([asm.CALL])
_LD_IMM64_BYTE = bytes([asm.LD_IMM64])


def _call_candidates(insns: bytearray, base: int, count: int) -> list[int]:
    """Indexes (from ``base``) of the call and ld_imm64 instructions among ``count``.

    The opcode bytes are sliced out in one step and searched with bytes.find,
    so linking does not decode every instruction in Python. The second half of
    an ld_imm64 is not an instruction: a match right after a run of an odd
    number of ld_imm64 opcodes is such a half and is skipped.
    """
    start = base * asm.INSN_SIZE
    codes = bytes(insns[start:start + count * asm.INSN_SIZE:asm.INSN_SIZE])
    found = []
    for needle in (_CALL_BYTE, _LD_IMM64_BYTE):
        i = codes.find(needle)
        while i >= 0:
            found.append(i)
            i = codes.find(needle, i + 1)
    found.sort()
    out = []
    for i in found:
        run = 0
        while i - run > 0 and codes[i - run - 1] == asm.LD_IMM64:
            run += 1
        if not run & 1:
            out.append(i)
    return out


class _SourceLines:
    """(insn, file, line text, line, col) of a linked program, built only if asked.

    Only a verifier rejection reads these (to name the C line), so the common,
    successful load does not pay for a tuple per line_info record.
    """

    def __init__(self, order: list[tuple[Func, int]], ext: BTFExt | None) -> None:
        self._order = order
        self._ext = ext
        self._rows: list[tuple[int, str, str, int, int]] | None = None

    def _build(self) -> list[tuple[int, str, str, int, int]]:
        if self._rows is None:
            rows = []
            if self._ext is not None:
                for func, base in self._order:
                    lo = func.sec_insn_off
                    for ln in self._ext.line_info.get(func.section, ()):
                        k = ln.insn_off // asm.INSN_SIZE
                        if lo <= k < lo + func.insn_cnt:
                            rows.append((base + k - lo, ln.file_name, ln.line_text, ln.line,
                                         ln.col))
            self._rows = rows
        return self._rows

    def __getitem__(self, i: Any) -> Any:
        return self._build()[i]

    def __len__(self) -> int:
        return len(self._build())

    def __iter__(self) -> Iterator[tuple[int, str, str, int, int]]:
        return iter(self._build())


class _Job:
    """A call running on its own thread; :meth:`wait` for it.

    Built on ``_thread`` (see :mod:`coreframe.runtime.startup`), not threading.
    (Program loads are not run this way: what the verifier's work overlapped did
    not make up for the threads handing the GIL back and forth; see bench/.)
    """

    __slots__ = ("_done",)

    def __init__(self, func: Callable[..., Any], *args: Any) -> None:
        self._done = allocate_lock()
        self._done.acquire()
        start_new_thread(self._run, (func, args))

    def _run(self, func: Callable[..., Any], args: tuple[Any, ...]) -> None:
        try:
            func(*args)
        finally:
            self._done.release()

    def wait(self) -> None:
        """Block until the call has returned or raised."""
        self._done.acquire()
        self._done.release()


class Loader:
    """The steps of bpf_object__load for one ObjectSpec."""

    def __init__(self, spec: ObjectSpec, target_btf: BTF | str | os.PathLike[str] | None,
                 pin_root: str | None) -> None:
        self.spec = spec
        self._target = target_btf
        self._target_loaded: BTF | None = None
        self._target_file: Target | None = None
        self.pin_root = pin_root if pin_root is not None else host.BPFFS_ROOT
        self.obj = Object(spec)
        self._kernel_btf: BTF | None = None
        self._strings: dict[str, int] | None = None
        self._relocator: CoreRelocator | CachedRelocator | None = None

    # ---- helpers -------------------------------------------------------------------------

    def target_btf(self) -> BTF:
        if self._target_loaded is None:
            from ..btf import kernel

            if self._target_file is not None:
                self._target_loaded = kernel.load_target(self._target_file.path)
            elif self._target is None or isinstance(self._target, (str, os.PathLike)):
                self._target_loaded = kernel.load_target(self._target)
            else:
                self._target_loaded = self._target
        return self._target_loaded

    def kernel_btf(self) -> BTF:
        if self._kernel_btf is None:
            from ..btf import kernel

            self._kernel_btf = kernel.vmlinux()
        return self._kernel_btf

    def run(self) -> Object:
        self._choose_core_target()
        try:
            self._load_btf()
            self._resolve_kconfig()
            self._create_maps()
            for p in self.spec.programs.values():
                if p.autoload:
                    self._load_program(p)
            self._init_slots()
            self._usdt_manager()
            save = getattr(self._relocator, "save", None)
            if save is not None:
                save()
        except BaseException:
            self.obj.close()
            for path in self.obj.pinned:
                _unlink_quiet(path)
            raise
        return self.obj

    # ---- BTF -----------------------------------------------------------------------------

    def _choose_core_target(self) -> None:
        """Find the file CO-RE will relocate against (btf.locate: the named one,
        COREFRAME_BTF, the kernel's, the BTF search path) before anything is created,
        so a kernel without BTF fails here with the one line that says how to get one.
        Only its path is found now; it is read when a relocation first needs it."""
        target = self._target
        if target is not None and not isinstance(target, (str, os.PathLike)):
            return  # a parsed BTF: the caller's choice
        ext = self.spec.btf_ext
        if ext is None or not any(ext.core_relos.values()):
            return
        from ..btf.locate import find

        self._target_file = self.obj.core_target = find(target)

    def _load_btf(self) -> None:
        """Sanitize the object's BTF for this kernel and load it (None if refused, like libbpf)."""
        btf = self.spec.btf
        if btf is None:
            return
        from ..features import btf_kinds
        from ..runtime.cache import cached_bytes, source_stamp

        raw = btf.to_bytes()
        sizes = self.spec.section_sizes
        kinds = btf_kinds()

        def fix() -> bytes:
            from ..btf.sanitize import sanitize

            return sanitize(raw, sizes, {}, kernel_kinds=kinds)

        # a pure function of these inputs: a warm start reads it back instead of walking
        # every type (and importing the sanitizer)
        stamp = source_stamp(1, __file__, "../btf/sanitize.py")
        if stamp is None:
            data = fix()
        else:
            key = (stamp, raw, tuple(sorted(sizes.items())), tuple(sorted(kinds.items())))
            data = cached_bytes("sanitized-btf", key, fix)
        lacking = [k for k, ok in kinds.items() if not ok]
        if lacking:
            self._note_sanitized(btf, lacking)
        self.obj.btf_fd = load_object_btf(data)

    def _note_sanitized(self, btf: BTF, lacking: list[str]) -> None:
        """Record (features.note_fallback) which BTF kinds this object uses that the
        kernel lacks, i.e. what the sanitizer rewrote for it."""
        from ..btf.kinds import Kind
        from ..features import note_fallback

        names = {"func": Kind.FUNC, "datasec": Kind.DATASEC, "float": Kind.FLOAT,
                 "decl_tag": Kind.DECL_TAG, "type_tag": Kind.TYPE_TAG, "enum64": Kind.ENUM64}
        used = [k for k in lacking if k in names and btf.ids_of_kinds(names[k])]
        if used:
            note_fallback(f"object BTF sanitized: {', '.join(used)} rewritten as older kinds",
                          "BPF_BTF_LOAD refuses these kinds (probe: features.btf_kinds)")

    # ---- USDT ----------------------------------------------------------------------------

    def _usdt_manager(self) -> None:
        """Give the programs of an object built with <bpf/usdt.bpf.h> the spec-id
        bookkeeping their USDT attachments share (libbpf's per-object usdt_manager).
        An object with no SEC("usdt") program needs none, nor the USDT module."""
        if not any(p.section_def is not None and p.section_def.usdt
                   for p in self.spec.programs.values()):
            return
        from ..link.usdt import SPECS_MAP, Manager

        if SPECS_MAP not in self.obj.maps:
            return
        man = Manager.for_object(self.spec, self.obj.maps)
        for p in self.obj.programs.values():
            p.usdt = man

    # ---- kconfig -------------------------------------------------------------------------

    def _resolve_kconfig(self) -> None:
        m = self.spec.maps.get(KCONFIG_SEC)
        kexts = [e for e in self.spec.externs.values() if e.kind == "kconfig"]
        if m is None or not kexts:
            return
        assert m.data is not None
        config = _kernel_config() if any(e.name.startswith("CONFIG_") for e in kexts) else {}
        release = os.uname().release
        btf = self.spec.btf
        assert btf is not None
        for e in kexts:
            if e.name == "LINUX_KERNEL_VERSION":
                value: Any = _linux_kernel_version()
            elif e.name == "LINUX_HAS_BPF_COOKIE":
                from ..features import has_bpf_cookie

                value = int(has_bpf_cookie())
            elif e.name == "LINUX_HAS_SYSCALL_WRAPPER":
                value = int(os.uname().machine in _KSYSCALL_WRAPPER_ARCHES)
            elif e.name.startswith("CONFIG_"):
                if config is None:
                    if e.weak:
                        continue
                    raise ObjectError(f"{self.spec.name}: extern {e.name!r} needs the kernel "
                                      f"config, but neither /proc/config.gz nor "
                                      f"/boot/config-{release} exists")
                value = config.get(e.name)
                if value is None:
                    if e.weak:
                        continue
                    raise ObjectError(f"{self.spec.name}: strong extern {e.name!r} is not "
                                      "set in the kernel config; declare it __weak")
            else:
                if e.weak:
                    continue
                raise ObjectError(f"{self.spec.name}: unknown .kconfig extern {e.name!r}")
            raw = _kconfig_bytes(btf, e, value)
            m.data[e.offset:e.offset + e.size] = raw

    # ---- maps ----------------------------------------------------------------------------

    def _create_maps(self) -> None:
        for key, ms in self.spec.maps.items():
            if not ms.autocreate:
                continue
            self.obj.maps[key] = self._create_map(ms)

    def _map_params(self, ms: MapSpec) -> dict[str, Any]:
        from ..sys.host import possible_cpus

        max_entries = ms.max_entries
        if ms.type == C.BPF_MAP_TYPE_PERF_EVENT_ARRAY and not max_entries:
            max_entries = possible_cpus()
        if ms.type in (C.BPF_MAP_TYPE_RINGBUF, C.BPF_MAP_TYPE_USER_RINGBUF):
            max_entries = _ringbuf_size(max_entries)
        return dict(type=ms.type, key_size=ms.key_size, value_size=ms.value_size,
                    max_entries=max_entries, flags=ms.map_flags, numa_node=ms.numa_node,
                    map_extra=ms.map_extra)

    def _create_map(self, ms: MapSpec) -> Map:
        from ..maps import Map, check_compatible

        params = self._map_params(ms)
        kname = ms.name[:C.BPF_OBJ_NAME_LEN - 1]
        pin_path = None
        if ms.pinning == LIBBPF_PIN_BY_NAME:
            pin_path = self._pin_path(ms.name)
            existing = self._open_pinned(pin_path)
            if existing is not None:
                m = Map.from_fd(existing, name=ms.name)
                try:
                    check_compatible(m.info(), ms.name, map_type=params["type"],
                                     key_size=params["key_size"],
                                     value_size=params["value_size"],
                                     max_entries=params["max_entries"],
                                     map_flags=params["flags"])
                except BaseException:
                    m.close()
                    raise
                m.use_btf(self.spec.btf, ms.key_type_id, ms.value_type_id)
                return m
        inner = None
        try:
            if ms.inner is not None:
                inner = Map.create(**self._map_params(ms.inner),
                                   name=ms.inner.name[:C.BPF_OBJ_NAME_LEN - 1])
            btf_ids = {}
            if (self.obj.btf_fd is not None and ms.type not in NO_BTF_MAP_TYPES
                    and (ms.key_type_id or ms.value_type_id)):
                btf_ids = dict(btf_fd=self.obj.btf_fd, btf_key_type_id=ms.key_type_id,
                               btf_value_type_id=ms.value_type_id)
            try:
                m = Map.create(**params, name=kname, inner_map=inner, **btf_ids)
            except Exception:
                if not btf_ids:
                    raise
                # Like libbpf: a kernel that rejects the BTF still gets the map.
                m = Map.create(**params, name=kname, inner_map=inner)
        finally:
            if inner is not None:
                inner.close()
        m.name = ms.name
        # keys/values typed from the object's BTF (codecs are built on first use)
        m.use_btf(self.spec.btf, ms.key_type_id, ms.value_type_id)
        try:
            if ms.data is not None:
                m.update(0, bytes(ms.data))
                if ms.map_flags & C.BPF_F_RDONLY_PROG:
                    m.freeze()
            if pin_path is not None:
                m.pin(pin_path)
                self.obj.pinned.append(pin_path)
        except BaseException:
            m.close()
            raise
        return m

    def _pin_path(self, name: str) -> str:
        root = os.path.realpath(self.pin_root)
        if "/" in name or name in (".", ".."):
            raise ObjectError(f"map {name!r}: name cannot be used as a pin path")
        path = os.path.join(root, name)
        if os.path.dirname(os.path.realpath(path)) != root:
            raise ObjectError(f"map {name!r}: pin path {path} escapes pin root {root}")
        return path

    def _open_pinned(self, path: str) -> FD | None:
        from ..sys import bpf as sysbpf

        try:
            return sysbpf.obj_get(path)
        except FileNotFoundError:
            return None
        except OSError as e:
            from ..sys.errors import raise_for

            raise_for(e, f"opening pinned map {path}")

    def _init_slots(self) -> None:
        for key, ms in self.spec.maps.items():
            if not ms.init_slots or key not in self.obj.maps:
                continue
            m = self.obj.maps[key]
            for idx, target in ms.init_slots.items():
                if ms.type == C.BPF_MAP_TYPE_PROG_ARRAY:
                    p = self.obj.programs.get(target)
                    if p is None:
                        continue
                    fd = p.fd
                else:
                    tm = self.obj.maps.get(target)
                    if tm is None:
                        raise ObjectError(f"map {key!r}: slot {idx} needs map {target!r}, "
                                          "which was not created")
                    fd = tm.fd
                m.update(idx, int(fd).to_bytes(4, "little"))

    # ---- programs ------------------------------------------------------------------------

    def _func_at(self, section: str, insn: int, where: str) -> Func:
        for f in self.spec.functions.get(section, []):
            if f.sec_insn_off <= insn < f.sec_insn_off + f.insn_cnt:
                return f
        raise RelocationError(f"{where}: no function at instruction {insn} of {section!r}")

    def link(self, prog: ProgramSpec) -> tuple[bytearray, list[tuple[Func, int]]]:
        """Append called subprograms (depth first, like libbpf) and fix call offsets."""
        out = bytearray(prog.insns)
        placed: dict[int, int] = {id(prog): 0}
        order: list[tuple[Func, int]] = [(prog, 0)]

        def visit(func: Func, base: int, depth: int) -> None:
            if depth > 64:
                raise RelocationError(f"program {prog.name!r}: call chain too deep")
            relmap = {r.insn_index: r for r in func.relocations}
            for i in _call_candidates(out, base, func.insn_cnt):
                code, _d, src, _o, imm = asm.decode(out, base + i)
                r = relmap.get(i)
                if r is not None and r.kind == "func_addr" and src != asm.BPF_PSEUDO_FUNC:
                    # clang leaves src_reg 0; libbpf marks it so the verifier sees a callback.
                    asm.patch(out, base + i, src=asm.BPF_PSEUDO_FUNC)
                    src = asm.BPF_PSEUDO_FUNC
                is_call = code == asm.CALL and src == asm.BPF_PSEUDO_CALL
                is_addr = code == asm.LD_IMM64 and src == asm.BPF_PSEUDO_FUNC
                if r is not None and r.kind in ("kfunc", "ksym"):
                    is_call = is_addr = False  # kernel functions, patched later
                if is_call or is_addr:
                    where = f"program {prog.name!r} ({func.name} insn {i})"
                    if r is not None and r.kind in ("call", "func_addr"):
                        sec, target = r.section, r.offset
                    elif r is None and is_call:
                        sec, target = func.section, func.sec_insn_off + i + imm + 1
                    else:
                        raise RelocationError(f"{where}: callback address without relocation")
                    callee = self._func_at(sec, target, where)
                    if id(callee) not in placed:
                        cbase = len(out) // asm.INSN_SIZE
                        out.extend(callee.insns)
                        placed[id(callee)] = cbase
                        order.append((callee, cbase))
                        visit(callee, cbase, depth + 1)
                    dest = placed[id(callee)] + target - callee.sec_insn_off
                    asm.patch(out, base + i, imm=dest - (base + i) - 1)

        visit(prog, 0, 0)
        return out, order

    def _load_program(self, prog: ProgramSpec) -> None:
        if not prog.prog_type:
            raise ObjectError(f"program {prog.name!r}: section {prog.section!r} is not a known "
                              "SEC() name; set prog_type before load")
        for func in [prog, *self.spec.subprograms.values()]:
            for r in func.relocations:
                if r.insn_index + 2 > func.insn_cnt and r.kind not in ("call", "kfunc"):
                    raise RelocationError(f"program {prog.name!r}: {func.name} has "
                                          f"{func.insn_cnt} instructions but a relocation "
                                          f"at insn {r.insn_index} (were its insns edited?)")
        insns, order = self.link(prog)
        for func, base in order:
            for r in func.relocations:
                self._apply_reloc(prog, insns, base + r.insn_index, r)
        poisoned = self._apply_core(prog, insns, order)
        func_info, line_info, lines = self._ext_info(order)
        attach = self._attach_target(prog)
        try:
            self.obj.programs[prog.name] = self._prog_load(prog, insns, func_info, line_info,
                                                           lines, attach)
        except VerifierError as e:
            raise _explain_poison(e, poisoned) from None

    def _apply_reloc(self, prog: ProgramSpec, insns: bytearray, idx: int, r: Reloc) -> None:
        where = f"program {prog.name!r} insn {idx}"
        if r.kind in ("call", "func_addr"):
            return
        if r.kind in ("map", "data", "kconfig"):
            key = KCONFIG_SEC if r.kind == "kconfig" else r.target
            m = self.obj.maps.get(key)
            if m is None:
                raise RelocationError(f"{where}: map {key!r} was not created (autocreate off?)")
            if r.kind == "map":
                asm.patch(insns, idx, src=asm.BPF_PSEUDO_MAP_FD, imm=m.fd)
                asm.patch(insns, idx + 1, imm=0)
            else:
                asm.patch(insns, idx, src=asm.BPF_PSEUDO_MAP_VALUE, imm=m.fd)
                asm.patch(insns, idx + 1, imm=r.offset)
            return
        ext = self.spec.externs[r.target]
        from ..btf.types import Kind

        kbtf = self.kernel_btf()
        if r.kind == "ksym" and ext.kind == "ksym" and self._typeless(ext):
            addr = _kallsyms().get(ext.name)
            if not addr and not ext.weak:
                raise RelocationError(f"{where}: kernel symbol {ext.name!r} not found in "
                                      f"{host.KALLSYMS} (or its address is hidden)")
            addr = addr or 0
            asm.patch(insns, idx, src=0, imm=s32(addr & 0xFFFFFFFF))
            asm.patch(insns, idx + 1, imm=s32(addr >> 32))
            return
        if r.kind == "ksym":
            ids = kbtf.find(ext.name, Kind.FUNC if ext.kind == "kfunc" else Kind.VAR)
            if not ids:
                if ext.weak:
                    asm.patch(insns, idx, src=0, imm=0)
                    asm.patch(insns, idx + 1, imm=0)
                    return
                raise RelocationError(f"{where}: kernel symbol {ext.name!r} not found in "
                                      "vmlinux BTF")
            asm.patch(insns, idx, src=asm.BPF_PSEUDO_BTF_ID, imm=ids[0])
            asm.patch(insns, idx + 1, imm=0)
            return
        if r.kind == "kfunc":
            ids = kbtf.find(ext.name, Kind.FUNC)
            if not ids:
                if ext.weak:
                    asm.patch(insns, idx, src=asm.BPF_PSEUDO_KFUNC_CALL, imm=0, off=0)
                    return
                raise RelocationError(f"{where}: kernel function {ext.name!r} not found in "
                                      "vmlinux BTF")
            asm.patch(insns, idx, src=asm.BPF_PSEUDO_KFUNC_CALL, imm=ids[0], off=0)
            return
        raise RelocationError(f"{where}: unknown relocation kind {r.kind!r}")

    def _typeless(self, ext: Extern) -> bool:
        """``extern const void sym __ksym``: an address from kallsyms, no BTF type."""
        assert self.spec.btf is not None
        return self.spec.btf.resolve(ext.type_id) == 0

    def core_relos(self, order: list[tuple[Func, int]]) -> list[tuple[int, CoreRelo]]:
        """(final insn index, CoreRelo) for every CO-RE relocation of the linked program."""
        ext = self.spec.btf_ext
        out: list[tuple[int, CoreRelo]] = []
        if ext is None:
            return out
        for func, base in order:
            for relo in ext.core_relos.get(func.section, ()):
                sec_idx = relo.insn_off // asm.INSN_SIZE
                if func.sec_insn_off <= sec_idx < func.sec_insn_off + func.insn_cnt:
                    out.append((base + sec_idx - func.sec_insn_off, relo))
        return out

    def _apply_core(self, prog: ProgramSpec, insns: bytearray,
                    order: list[tuple[Func, int]]) -> dict[int, str]:
        """Apply CO-RE relocations; return the poisoned instructions with the reason."""
        relos = self.core_relos(order)
        poisoned: dict[int, str] = {}
        if not relos:
            return poisoned
        if self._relocator is None:
            assert self.spec.btf is not None
            self._relocator = self._core_relocator(self.spec.btf)
        results = self.obj.core_results
        for idx, relo in relos:
            try:
                res = self._relocator.resolve(relo)
                self._relocator.apply(insns, idx, relo, res)
            except RelocationError as e:
                raise RelocationError(f"program {prog.name!r} insn {idx}: {e}") from None
            results.append((prog.name, idx, relo, res))
            if res.poison:
                poisoned[idx] = res.explanation
        return poisoned

    def _core_relocator(self, local: BTF) -> CoreRelocator | CachedRelocator:
        """The running kernel's results come through the on-disk result cache."""
        if self._target_file is not None and self._target_file.is_kernel:
            from ..btf.replay import CachedRelocator

            return CachedRelocator(local, self.target_btf)
        from ..btf.core import CoreRelocator

        return CoreRelocator(local, self.target_btf())

    def _string_offsets(self) -> dict[str, int]:
        """text -> offset in the object's .BTF strings (for a BTFExt built by hand)."""
        if self._strings is None:
            assert self.spec.btf is not None
            raw = self.spec.btf.to_bytes()
            hdr_len, _to, _tl, str_off, str_len = struct.unpack_from("<IIIII", raw, 4)
            table = raw[hdr_len + str_off:hdr_len + str_off + str_len]
            offsets: dict[str, int] = {}
            pos = 0
            for s in table.split(b"\0"):
                offsets.setdefault(s.decode("utf-8", "replace"), pos)
                pos += len(s) + 1
            self._strings = offsets
        return self._strings

    def _rows_from_records(self, records: Sequence[LineInfo]) -> list[tuple[int, int, int, int]]:
        """Raw line_info rows for records of a BTFExt built by hand (no raw words)."""
        strings = self._string_offsets()
        return [(ln.insn_off, strings.get(ln.file_name, 0), strings.get(ln.line_text, 0),
                 (ln.line << 10) | (ln.col & 0x3FF)) for ln in records]

    def _ext_info(self, order: list[tuple[Func, int]]) -> tuple[bytes, bytes, _SourceLines]:
        """func_info / line_info records for the linked program (insn offsets in insns).

        Records are flattened into one list of u32 and packed once; the strings keep
        the offsets they have in the object's .BTF, which is what the kernel loads.
        """
        ext = self.spec.btf_ext
        if ext is None or self.obj.btf_fd is None:
            return b"", b"", _SourceLines(order, None)
        rows_by_sec = ext.line_rows
        fi: list[int] = []
        li: list[int] = []
        for func, base in order:
            lo = func.sec_insn_off * asm.INSN_SIZE
            hi = lo + func.insn_cnt * asm.INSN_SIZE
            shift = base - func.sec_insn_off
            for rec in ext.func_info.get(func.section, ()):
                if lo <= rec.insn_off < hi:
                    fi += (rec.insn_off >> 3) + shift, rec.type_id
            rows = (rows_by_sec.get(func.section, ()) if rows_by_sec is not None
                    else self._rows_from_records(ext.line_info.get(func.section, ())))
            if rows and not (lo <= min(map(_col0, rows)) and max(map(_col0, rows)) < hi):
                rows = [r for r in rows if lo <= r[0] < hi]
            # new insn indexes computed in one pass; the other columns pass through
            offs = [(off >> 3) + shift for off in map(_col0, rows)]
            li.extend(chain.from_iterable(zip_strict(offs, map(_col1, rows), map(_col2, rows),
                                              map(_col3, rows))))
        return (struct.pack(f"={len(fi)}I", *fi), struct.pack(f"={len(li)}I", *li),
                _SourceLines(order, ext))

    def _attach_target(self, prog: ProgramSpec) -> dict[str, Any]:
        """attach_btf_id (and module BTF fd) for BTF-targeted programs."""
        sd = prog.section_def
        if prog.attach_btf_id is not None:
            return {"attach_btf_id": prog.attach_btf_id}
        if sd is None or not sd.attach_btf:
            return {}
        name = prog.attach_to
        if sd.attach_kind == "freplace":
            if prog.attach_prog_fd is None:
                raise ObjectError(f"program {prog.name!r}: freplace needs attach_prog_fd "
                                  "and attach_btf_id of the target program")
            return {}
        if not name:
            raise ObjectError(f"program {prog.name!r}: SEC({prog.section!r}) names no "
                              "attach target")
        from ..btf.types import Kind

        prefix = sd.btf_target_prefix or ""
        kbtf = self.kernel_btf()
        if sd.attach_kind == "tp_btf":
            ids = kbtf.find(prefix + name, Kind.TYPEDEF)
        else:
            ids = kbtf.find(prefix + name, Kind.FUNC)
        if not ids and sd.attach_kind in ("fentry", "fexit", "fmod_ret"):
            from ..btf.kernel import find_function

            mbtf, tid = find_function(name)
            if mbtf is not kbtf:
                raise ObjectError(f"program {prog.name!r}: attach target {name!r} is in a "
                                  "kernel module; module targets are not supported yet")
            ids = [tid]
        if not ids:
            from ..errors import AttachError

            raise AttachError(f"program {prog.name!r}: {prefix}{name} not found in kernel BTF")
        return {"attach_btf_id": ids[0]}

    def _prog_load(self, prog: ProgramSpec, insns: bytearray, func_info: bytes,
                   line_info: bytes, lines: Sequence[tuple[int, str, str, int, int]],
                   attach: dict[str, Any]) -> Program:
        from ..programs import load_program

        with_btf = bool(func_info) and self.obj.btf_fd is not None
        attach_type = _load_attach_type(prog)
        p = load_program(
            _prog_kernel_name(prog.name), prog.prog_type, bytes(insns), prog.license,
            expected_attach_type=attach_type,
            attach_prog_fd=prog.attach_prog_fd or 0, kern_version=prog.kern_version,
            prog_flags=prog.prog_flags, log_level=prog.log_level,
            prog_btf_fd=self.obj.btf_fd if with_btf else None,
            func_info=func_info if with_btf else b"", func_info_rec_size=8 if with_btf else 0,
            line_info=line_info if with_btf else b"",
            line_info_rec_size=16 if with_btf and line_info else 0,
            line_info_records=lines, **attach)
        p.name = prog.name
        p.section = prog.section
        self._bind_rodata(p)
        sd = prog.section_def
        if sd is not None and sd.attach_target != prog.attach_to:
            # attach() follows the (possibly edited) ProgramSpec.attach_to
            sd = sd._replace(attach_target=prog.attach_to)
        p.section_def = sd
        p.spec = prog
        return p


    def _bind_rodata(self, prog: Program) -> None:
        """Tie .rodata to every program (BPF_PROG_BIND_MAP), as libbpf does.

        The kernel then lists the map as used by the program even when its code
        never reads it, which keeps the metadata alive and visible to bpftool.
        Like libbpf, failure is not an error: the program works without it.
        """
        from ..sys import bpf as sysbpf

        rodata = self.obj.maps.get(".rodata")
        if rodata is None:
            return
        try:
            sysbpf.prog_bind_map(prog.fd, rodata.fd)
        except OSError:
            pass


def _explain_poison(err: VerifierError, poisoned: dict[int, str]) -> VerifierError:
    """Name the CO-RE relocation when the verifier reached a poisoned instruction.

    The kernel only says "invalid func unknown#195896080" (the poison helper id);
    the user needs to know which field or type this kernel lacks.
    """
    from ..btf.relo import POISON_HELPER

    if not poisoned or str(POISON_HELPER) not in err.log:
        return err
    why = poisoned.get(err.insn) if err.insn is not None else None
    if why is None:
        why = next(iter(poisoned.values())) if len(poisoned) == 1 else "; ".join(
            f"insn {i}: {w}" for i, w in sorted(poisoned.items()))
    return VerifierError(err.program, f"reached a CO-RE relocation this kernel cannot "
                         f"satisfy ({why})", err.log, err.insn, err.source_line)




def _prog_kernel_name(name: str) -> str:
    return kernel_safe_name(name)[:C.BPF_OBJ_NAME_LEN - 1]




_kallsyms_cache: dict[str, int] | None = None


def _kallsyms() -> dict[str, int]:
    """Kernel symbol addresses (first definition of each name), read once per process."""
    global _kallsyms_cache
    if _kallsyms_cache is None:
        table: dict[str, int] = {}
        try:
            with builtins.open(host.KALLSYMS) as f:
                for line in f:
                    parts = line.split()
                    if len(parts) >= 3:
                        table.setdefault(parts[2], int(parts[0], 16))
        except OSError as e:
            raise RelocationError(f"cannot read /proc/kallsyms: {e.strerror}") from None
        _kallsyms_cache = table
    return _kallsyms_cache


def _unlink_quiet(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _ringbuf_size(size: int) -> int:
    """libbpf's adjust_ringbuf_sz: a power-of-two multiple of the page size."""
    page = os.sysconf("SC_PAGE_SIZE")
    if not size:
        return page
    if size % page == 0 and (size // page) & (size // page - 1) == 0:
        return size
    mul = 1
    while page * mul < size:
        mul <<= 1
    return page * mul


def _linux_kernel_version() -> int:
    rel = os.uname().release
    runs = "".join(c if c.isascii() and c.isdigit() else " " for c in rel.split("-", 1)[0])
    nums = [int(x) for x in runs.split()[:3]]
    while len(nums) < 3:
        nums.append(0)
    return (nums[0] << 16) | (nums[1] << 8) | min(nums[2], 255)


def _kernel_config() -> dict[str, str] | None:
    """CONFIG_* values of the running kernel from /proc/config.gz or /boot/config-<release>."""
    import gzip

    text = None
    try:
        with gzip.open("/proc/config.gz", "rt") as f:
            text = f.read()
    except OSError:
        try:
            with builtins.open(f"/boot/config-{os.uname().release}") as f:
                text = f.read()
        except OSError:
            return None
    out: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("CONFIG_") and "=" in line:
            k, v = line.split("=", 1)
            out[k] = v.strip()
    return out


def _kconfig_bytes(btf: BTF, e: Extern, value: Any) -> bytes:
    """Encode one kconfig value the way libbpf's set_kcfg_value_* functions do."""
    from ..btf.types import Kind

    t = btf[btf.resolve(e.type_id)]
    where = f".kconfig extern {e.name!r}"
    if isinstance(value, int):
        return value.to_bytes(e.size, "little", signed=value < 0)
    v = str(value)
    if t.kind == Kind.INT and t.is_bool:
        if v not in ("y", "n"):
            raise ObjectError(f"{where} is bool but the kernel config says {v!r}")
        return (1 if v == "y" else 0).to_bytes(e.size, "little")
    if t.kind == Kind.ENUM and t.name == "libbpf_tristate":
        tri = {"y": 1, "n": 0, "m": 2}.get(v)
        if tri is None:
            raise ObjectError(f"{where} is a tristate but the kernel config says {v!r}")
        return tri.to_bytes(e.size, "little")
    if t.kind == Kind.INT and t.size == 1 and t.is_char and v in ("y", "n", "m"):
        return v.encode()
    if t.kind == Kind.ARRAY:
        if not (v.startswith('"') and v.endswith('"')):
            raise ObjectError(f"{where} is a char array but the value {v!r} is not a string")
        raw = v[1:-1].encode()[:e.size - 1]
        return raw + bytes(e.size - len(raw))
    if t.kind in (Kind.INT, Kind.ENUM, Kind.ENUM64):
        try:
            num = int(v, 0)
        except ValueError:
            raise ObjectError(f"{where}: kernel config value {v!r} is not a number") from None
        signed = bool(getattr(t, "signed", False))
        try:
            return num.to_bytes(e.size, "little", signed=signed)
        except OverflowError:
            raise ObjectError(f"{where}: value {num} does not fit in {e.size} bytes") from None
    raise ObjectError(f"{where}: unsupported extern type {btf.c_type_name(e.type_id)!r}")


def load_object_btf(data: bytes) -> FD | None:
    """BPF_BTF_LOAD of (already sanitized) object BTF; None, with a warning, on failure.

    Programs then load without func_info/line_info, as with libbpf.
    """
    from ..sys.bpf import btf_load

    try:
        return btf_load(data)
    except OSError as first:
        if first.errno in (errno.EPERM, errno.EACCES):
            _log().warning("kernel refused object BTF (%s); loading programs without BTF",
                        first.strerror)
            return None
    size = 1 << 20
    text = ""
    while size <= 16 << 20:
        try:
            return btf_load(data, log_level=1, log_size=size)
        except OSError as e:
            text = getattr(e, "log", "")
            if e.errno == errno.ENOSPC:
                size *= 4
                continue
            lines = [ln for ln in text.splitlines() if ln.strip()]
            reason = lines[-1] if lines else e.strerror
            _log().warning("kernel rejected object BTF: %s; loading programs without BTF", reason)
            _log().debug("BTF verifier log:\n%s", text)
            return None
    _log().warning("kernel rejected object BTF (log too large); loading programs without BTF")
    return None


def _log() -> Logger:
    """The module logger, imported on first use: the logging module (and the threading,
    re and traceback modules it imports) stays off the start-up path."""
    import logging

    return logging.getLogger(__name__)


def _load_attach_type(prog: ProgramSpec) -> int:
    """The expected_attach_type to load ``prog`` with. Programs that attach through a
    multi-target link where the kernel has one (uprobe_multi for USDT, uprobe.multi,
    kprobe.multi) and through perf events elsewhere are loaded for the one their
    link module will use: the kernel accepts each program only one way."""
    sd = prog.section_def
    if sd is None:
        return prog.expected_attach_type
    if sd.usdt and not prog.expected_attach_type:
        from ..link.usdt import load_attach_type

        return load_attach_type(sd)
    if prog.expected_attach_type != sd.expected_attach_type:
        return prog.expected_attach_type  # set by the caller: theirs to choose
    if sd.attach_kind == "kprobe_multi":
        from ..link import kprobe_multi

        return kprobe_multi.load_attach_type(sd)
    if sd.attach_kind == "uprobe_multi":
        from ..link import uprobe_multi

        return uprobe_multi.load_attach_type(sd)
    return prog.expected_attach_type
