"""Reading a BPF ELF object into an :class:`~coreframe.object.spec.ObjectSpec`.

This is libbpf's bpf_object__open without the kernel: find programs (one per
global function of each executable section) and subprograms (functions of
``.text``), record every relocation, read BTF-defined maps from ``.maps``, turn
each global data section into an array map with its initial image, and fix up
the object's BTF (DATASEC sizes and variable offsets come from the ELF, as the
compiler leaves them zero). A spec read back from the cache skips all of it.
"""

from __future__ import annotations

import struct

from .. import asm
from ..errors import ObjectError, RelocationError
from ..sys import consts as C
from .elf import (
    R_BPF_64_32,
    R_BPF_64_64,
    SHF_ALLOC,
    SHN_UNDEF,
    SHT_NOBITS,
    SHT_PROGBITS,
    STB_GLOBAL,
    STB_LOCAL,
    STB_WEAK,
    STT_FUNC,
    STT_OBJECT,
    STT_SECTION,
    STV_HIDDEN,
    Section,
    Symbol,
)
from .maptypes import FD_ARRAYS, MAP_IN_MAP, NO_BTF_MAP_TYPES
from .parts import (
    KCONFIG_SEC,
    KSYMS_SEC,
    LIBBPF_PIN_BY_NAME,
    LIBBPF_PIN_NONE,
    Extern,
    Func,
    MapSpec,
    ProgramSpec,
    Reloc,
    internal_map_name,
)
from .sections import find_section_def

# Largest global data section we build a map image for (far above what programs use).
_MAX_DATA_SECTION = 256 << 20

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from ..btf.types import BTF
    from .spec import ObjectSpec


class ElfReader:
    """One pass over the ELF filling an ObjectSpec (a cached spec never imports it)."""

    def __init__(self, spec: ObjectSpec) -> None:
        self.spec = spec
        self.elf = spec.elf
        self.fname = spec.elf.name
        self.text_index = -1

    def err(self, msg: str) -> ObjectError:
        return ObjectError(f"{self.fname}: {msg}")

    def parse(self) -> None:
        self._load_btf()
        if self.elf.section("maps") is not None:
            raise self.err("legacy 'maps' section (struct bpf_map_def) is not supported; "
                           "define maps in SEC(\".maps\") with __uint/__type")
        text = self.elf.section(".text")
        self.text_index = text.index if text is not None else -1
        if self.spec.btf is None:
            self._collect_externs()
        self._collect_btf_maps()
        self._collect_data_maps()
        self._add_kconfig_map()
        self._collect_functions()
        self._collect_map_slots()

    # ---- BTF -----------------------------------------------------------------------------

    def _load_btf(self) -> None:
        sec = self.elf.section(".BTF")
        if sec is None:
            return
        from ..btf.types import BTF

        try:
            raw = BTF.from_bytes(sec.data)
        except ObjectError as e:
            raise self.err(f".BTF: {e}") from None
        self.spec.btf = raw
        self._collect_externs()
        # DATASEC sizes and variable offsets are u32 in BTF: elf.py refuses sections
        # of 4 GiB or more and _fixup_btf variables outside their section, so they fit
        try:
            self.spec.btf = raw.patched(self._fixup_btf(raw))
        except ObjectError as e:
            raise self.err(f".BTF: {e}") from None
        ext = self.elf.section(".BTF.ext")
        if ext is not None:
            from ..btf.ext import BTFExt

            try:
                self.spec.btf_ext = BTFExt.from_bytes(ext.data, self.spec.btf)
            except ObjectError as e:
                raise self.err(f"{e}") from None

    def _fixup_btf(self, btf: BTF) -> bytes:
        """Fill DATASEC sizes and variable offsets from the ELF, as libbpf's btf_fixup_datasec.

        The compiler leaves them zero; the kernel (and our variable accessors)
        need the real layout. Hidden global variables and functions are marked
        static so the verifier treats them like libbpf does.
        """
        from ..btf.kinds import BTF_FUNC_STATIC, BTF_VAR_GLOBAL_EXTERN, BTF_VAR_STATIC, Kind

        data = bytearray(btf.to_bytes())
        var_syms: dict[str, Symbol] = {}
        func_syms: dict[str, Symbol] = {}
        for s in self.elf.symbols:
            if s.type == STT_OBJECT and s.shndx != SHN_UNDEF and s.name:
                var_syms.setdefault(s.name, s)
            elif s.type == STT_FUNC and s.bind != STB_LOCAL and s.name:
                func_syms.setdefault(s.name, s)
        for tid in btf.ids_of_kinds(Kind.FUNC, Kind.DATASEC):
            kind = btf.kind_of(tid)
            if kind == Kind.FUNC:
                fs = func_syms.get(btf.name_of(tid))
                if fs is not None and fs.visibility == STV_HIDDEN:
                    off = btf.type_offset(tid)
                    info = struct.unpack_from("<I", data, off + 4)[0]
                    struct.pack_into("<I", data, off + 4, (info & ~0xFFFF) | BTF_FUNC_STATIC)
                continue
            if kind != Kind.DATASEC:
                continue
            ds = btf[tid]
            off = btf.type_offset(tid)
            sec_name = ds.name
            if sec_name == KCONFIG_SEC:
                self._fixup_kconfig_datasec(btf, data, tid)
                continue
            if sec_name == KSYMS_SEC:
                self._fixup_ksyms_datasec(btf, data, tid)
                continue
            if ds.size == 0:
                elf_sec = self.elf.section(sec_name)
                if elf_sec is None:
                    raise self.err(f".BTF: DATASEC {sec_name!r} has no ELF section")
                struct.pack_into("<I", data, off + 8, elf_sec.size)
            entries = []
            for i, vsi in enumerate(ds.vars):
                var = btf[vsi.type]
                offset = vsi.offset
                if var.kind == Kind.VAR and var.linkage not in (BTF_VAR_STATIC,
                                                                BTF_VAR_GLOBAL_EXTERN):
                    sym = var_syms.get(var.name)
                    if sym is None:
                        raise self.err(f".BTF: no ELF symbol for variable {var.name!r} "
                                       f"of section {sec_name!r}")
                    offset = sym.value
                    sec_size = self.elf.sections[sym.shndx].size \
                        if sym.shndx < len(self.elf.sections) else 0
                    if offset + vsi.size > sec_size:
                        raise self.err(f".BTF: variable {var.name!r} (offset {offset}, size "
                                       f"{vsi.size}) lies outside its section")
                    if sym.visibility == STV_HIDDEN:
                        struct.pack_into("<I", data, btf.type_offset(vsi.type) + 12,
                                         BTF_VAR_STATIC)
                entries.append((vsi.type, offset, vsi.size, i))
            entries.sort(key=lambda e: (e[1], e[3]))
            for i, (t, o, s, _) in enumerate(entries):
                struct.pack_into("<III", data, off + 12 + 12 * i, t, o, s)
        return bytes(data)

    def _fixup_kconfig_datasec(self, btf: BTF, data: bytearray, tid: int) -> None:
        """Give .kconfig the layout of the map we build for it (libbpf does the same)."""
        from ..btf.kinds import BTF_VAR_GLOBAL_ALLOCATED

        off = btf.type_offset(tid)
        struct.pack_into("<I", data, off + 8, getattr(self, "kconfig_size", 0))
        for i, vsi in enumerate(btf[tid].vars):
            name = btf.name_of(vsi.type)
            ext = self.spec.externs.get(name)
            if ext is None or ext.kind != "kconfig":
                raise self.err(f".kconfig variable {name!r} is not an extern")
            struct.pack_into("<III", data, off + 12 + 12 * i, vsi.type, ext.offset, vsi.size)
            struct.pack_into("<I", data, btf.type_offset(vsi.type) + 12,
                             BTF_VAR_GLOBAL_ALLOCATED)

    def _fixup_ksyms_datasec(self, btf: BTF, data: bytearray, tid: int) -> None:
        """Lay .ksyms out as 4-byte slots and make its VARs plain ints, as libbpf does.

        The kernel has no storage for these externs; it only needs a DATASEC it
        accepts. Extern FUNCs are swapped for a VAR by the BTF sanitizer.
        """
        from ..btf.kinds import BTF_VAR_GLOBAL_ALLOCATED, Kind

        int_id = next((i for i in range(btf.start_id, len(btf))
                       if btf.kind_of(i) == Kind.INT and btf[i].size == 4
                       and btf[i].bits == 32), 0)
        off = btf.type_offset(tid)
        entries = btf[tid].vars
        for i, vsi in enumerate(entries):
            if btf.kind_of(vsi.type) == Kind.VAR:
                voff = btf.type_offset(vsi.type)
                struct.pack_into("<I", data, voff + 12, BTF_VAR_GLOBAL_ALLOCATED)
                if int_id:
                    struct.pack_into("<I", data, voff + 8, int_id)
            elif btf.kind_of(vsi.type) == Kind.FUNC:
                # Extern prototypes carry no parameter names; the kernel wants them.
                name_off, _info, proto = btf.raw(vsi.type)
                poff = btf.type_offset(proto)
                for j in range(btf.raw(proto)[1] & 0xFFFF):
                    at = poff + 12 + 8 * j
                    pname, ptype = struct.unpack_from("<II", data, at)
                    if ptype and not pname:
                        struct.pack_into("<I", data, at, name_off)
            struct.pack_into("<III", data, off + 12 + 12 * i, vsi.type, 4 * i, 4)
        struct.pack_into("<I", data, off + 8, 4 * len(entries))

    def _datasec_id(self, name: str) -> int:
        btf = self.spec.btf
        if btf is None:
            return 0
        from ..btf.types import Kind

        ids = btf.find(name, Kind.DATASEC)
        return ids[0] if ids else 0

    # ---- externs ------------------------------------------------------------------------

    def _collect_externs(self) -> None:
        """Find .kconfig/.ksyms externs and lay out the .kconfig map like libbpf."""
        externs = [s for s in self.elf.symbols
                   if s.shndx == SHN_UNDEF and s.bind in (STB_GLOBAL, STB_WEAK) and s.name]
        if not externs:
            return
        btf = self.spec.btf
        if btf is None:
            raise self.err(f"extern {externs[0].name!r} needs BTF (compile with -g)")
        from ..btf.types import Kind

        where: dict[int, str] = {}
        for sec in (KCONFIG_SEC, KSYMS_SEC):
            for dsid in btf.find(sec, Kind.DATASEC):
                for vsi in btf[dsid].vars:
                    where[vsi.type] = sec
        out: list[Extern] = []
        for s in externs:
            ids = [i for i in btf.find(s.name) if btf.kind_of(i) in (Kind.VAR, Kind.FUNC)]
            ids = [i for i in ids if btf[i].linkage == 2]  # BTF_VAR_GLOBAL_EXTERN/BTF_FUNC_EXTERN
            if not ids:
                raise self.err(f"extern {s.name!r} has no BTF VAR/FUNC describing it")
            tid = ids[0]
            weak = s.bind == STB_WEAK
            if btf.kind_of(tid) == Kind.FUNC:
                out.append(Extern(s.name, "kfunc", weak, tid, btf[tid].type, sym_index=s.index))
                continue
            sec = where.get(tid)
            vtype = btf[tid].type
            if sec == KCONFIG_SEC:
                size = self._kconfig_size(s.name, vtype)
                out.append(Extern(s.name, "kconfig", weak, tid, vtype, size,
                                  _btf_align(btf, vtype), sym_index=s.index))
            elif sec == KSYMS_SEC:
                out.append(Extern(s.name, "ksym", weak, tid, vtype, sym_index=s.index))
            else:
                raise self.err(f"extern {s.name!r} is neither in .kconfig nor .ksyms")
        # libbpf's order: kconfig first, larger alignment first, then by name.
        out.sort(key=lambda e: (e.kind != "kconfig", -e.align, e.name))
        off = 0
        for e in out:
            if e.kind == "kconfig":
                e.offset = (off + e.align - 1) // e.align * e.align
                off = e.offset + e.size
            self.spec.externs[e.name] = e
        self.kconfig_size = off

    def _kconfig_size(self, name: str, type_id: int) -> int:
        """Size of a .kconfig extern whose type libbpf accepts (ints, enums, bool, char[N])."""
        from ..btf.types import Kind

        btf = self.spec.btf
        assert btf is not None
        t = btf[btf.resolve(type_id)]
        size = btf.size_of(type_id)
        if t.kind in (Kind.INT, Kind.ENUM, Kind.ENUM64) and size <= 8:
            return size
        if t.kind == Kind.ARRAY and btf.size_of(t.elem_type) == 1 and 0 < size <= 4096:
            return size
        raise self.err(f".kconfig extern {name!r} has unsupported type "
                       f"{btf.c_type_name(type_id)!r} (use an integer, bool, enum or char[N])")

    def _add_kconfig_map(self) -> None:
        size = getattr(self, "kconfig_size", 0)
        if not size:
            return
        ds_id = self._datasec_id(KCONFIG_SEC)
        self.spec.maps[KCONFIG_SEC] = MapSpec(
            internal_map_name(self.spec.name, KCONFIG_SEC), C.BPF_MAP_TYPE_ARRAY, key_size=4,
            value_size=size, max_entries=1, map_flags=C.BPF_F_RDONLY_PROG | C.BPF_F_MMAPABLE,
            value_type_id=ds_id, section=KCONFIG_SEC, data=bytearray(size))

    # ---- global data ---------------------------------------------------------------------

    def _collect_data_maps(self) -> None:
        from ..btf.kinds import BTF_VAR_STATIC, Kind

        btf = self.spec.btf
        for sec in self.elf.sections:
            kind = _data_kind(sec)
            if kind is None or sec.size == 0:
                continue
            if sec.size > _MAX_DATA_SECTION:
                raise self.err(f"global data section {sec.name!r} is {sec.size} bytes; more "
                               f"than the {_MAX_DATA_SECTION >> 20} MiB an array value can be")
            flags = C.BPF_F_RDONLY_PROG if kind == "rodata" else 0
            ds_id = self._datasec_id(sec.name)
            # libbpf's map_is_mmapable: only when some variable is not static.
            if ds_id and btf is not None and any(
                    btf[v.type].kind == Kind.VAR and btf[v.type].linkage != BTF_VAR_STATIC
                    for v in btf[ds_id].vars):
                flags |= C.BPF_F_MMAPABLE
            data = bytearray(sec.size) if sec.type == SHT_NOBITS else bytearray(sec.data)
            self.spec.maps[sec.name] = MapSpec(
                internal_map_name(self.spec.name, sec.name), C.BPF_MAP_TYPE_ARRAY, key_size=4,
                value_size=sec.size, max_entries=1, map_flags=flags, value_type_id=ds_id,
                section=sec.name, sec_offset=0, data=data)

    # ---- BTF-defined maps ---------------------------------------------------------------

    def _collect_btf_maps(self) -> None:
        sec = self.elf.section(".maps")
        self.map_extents: dict[str, tuple[int, int]] = {}
        if sec is None:
            return
        btf = self.spec.btf
        if btf is None:
            raise self.err("'.maps' section needs BTF (compile with -g)")
        ds_id = self._datasec_id(".maps")
        if not ds_id:
            raise self.err("'.maps' section has no BTF DATASEC")
        from ..btf.types import Kind

        for vsi in btf[ds_id].vars:
            var = btf[vsi.type]
            if var.kind != Kind.VAR:
                raise self.err(f".maps: entry [{vsi.type}] is not a variable")
            if var.linkage not in (0, 1):
                raise self.err(f"map {var.name!r}: unsupported linkage {var.linkage}")
            m = self._parse_map_def(var.name, var.type, inner_ok=True)
            m.btf_var_id = vsi.type
            m.sec_offset = vsi.offset
            m.section = ".maps"
            self.map_extents[var.name] = (vsi.offset, vsi.size)
            self.spec.maps[var.name] = m

    def _parse_map_def(self, name: str, type_id: int, inner_ok: bool) -> MapSpec:
        from ..btf.types import Kind

        btf = self.spec.btf
        assert btf is not None
        st = btf[btf.resolve(type_id)]
        if st.kind != Kind.STRUCT:
            raise self.err(f"map {name!r}: definition is {btf.c_type_name(type_id)!r}, "
                           "not a struct")
        m = MapSpec(name, 0)
        values_member: Any = None
        for i, mem in enumerate(st.members):
            mname = mem.name
            if mname in ("type", "max_entries", "map_flags", "numa_node", "pinning",
                         "key_size", "value_size", "map_extra"):
                val = self._map_field_int(name, mname, mem.type)
                if mname == "type":
                    m.type = val
                elif mname in ("key_size", "value_size"):
                    cur = getattr(m, mname)
                    if cur and cur != val:
                        raise self.err(f"map {name!r}: conflicting {mname} {cur} != {val}")
                    setattr(m, mname, val)
                else:
                    setattr(m, mname, val)
            elif mname in ("key", "value"):
                ptr = btf[btf.resolve(mem.type)]
                if ptr.kind != Kind.PTR:
                    raise self.err(f"map {name!r}: {mname} must be declared with __type()")
                size = btf.size_of(ptr.type)
                attr = f"{mname}_size"
                cur = getattr(m, attr)
                if cur and cur != size:
                    raise self.err(f"map {name!r}: conflicting {attr} {cur} != {size}")
                setattr(m, attr, size)
                setattr(m, f"{mname}_type_id", ptr.type)
            elif mname == "values":
                values_member = (i, mem)
            else:
                raise self.err(f"map {name!r}: unknown field {mname!r} in map definition")
        if m.pinning not in (LIBBPF_PIN_NONE, LIBBPF_PIN_BY_NAME):
            raise self.err(f"map {name!r}: invalid pinning value {m.pinning}")
        if values_member is not None:
            self._parse_values(m, st, *values_member, inner_ok=inner_ok)
        if m.type in FD_ARRAYS or m.type == C.BPF_MAP_TYPE_HASH_OF_MAPS:
            if not m.key_size and m.type != C.BPF_MAP_TYPE_HASH_OF_MAPS:
                m.key_size = 4
            if not m.value_size:
                m.value_size = 4
        if m.type in NO_BTF_MAP_TYPES:
            m.key_type_id = m.value_type_id = 0
        return m

    def _parse_values(self, m: MapSpec, st: Any, i: int, mem: Any, *, inner_ok: bool) -> None:
        """``__array(values, ...)``: inner map definition or prog array value type."""
        from ..btf.types import Kind

        btf = self.spec.btf
        assert btf is not None
        name = m.name
        if i != len(st.members) - 1:
            raise self.err(f"map {name!r}: 'values' member must be last")
        is_mim = m.type in MAP_IN_MAP
        if not is_mim and m.type != C.BPF_MAP_TYPE_PROG_ARRAY:
            raise self.err(f"map {name!r}: 'values' needs a map-in-map or prog array")
        if not inner_ok:
            raise self.err(f"map {name!r}: multi-level inner maps are not supported")
        if m.value_size and m.value_size != 4:
            raise self.err(f"map {name!r}: value_size must be 4 with 'values'")
        m.value_size = 4
        arr = btf[btf.resolve(mem.type)]
        if arr.kind != Kind.ARRAY or arr.nelems:
            raise self.err(f"map {name!r}: 'values' is not a zero-sized array")
        ptr = btf[btf.resolve(arr.elem_type)]
        if ptr.kind != Kind.PTR:
            raise self.err(f"map {name!r}: 'values' must be an array of pointers")
        target = btf[btf.resolve(ptr.type)]
        if is_mim:
            if target.kind != Kind.STRUCT:
                raise self.err(f"map {name!r}: inner map definition is not a struct")
            m.inner = self._parse_map_def(f"{name}.inner", target.id, inner_ok=False)
        elif target.kind != Kind.FUNC_PROTO:
            raise self.err(f"map {name!r}: prog array values must be function pointers")

    def _map_field_int(self, map_name: str, field_name: str, type_id: int) -> int:
        """Decode ``__uint(field, N)`` (pointer to an N-element array) or an enum constant."""
        from ..btf.types import Kind

        btf = self.spec.btf
        assert btf is not None
        t = btf[btf.resolve(type_id)]
        if t.kind == Kind.PTR:
            arr = btf[t.type]
            if arr.kind == Kind.ARRAY:
                return arr.nelems
        if t.kind in (Kind.ENUM, Kind.ENUM64) and t.values:
            return t.values[0][1]
        raise self.err(f"map {map_name!r}: field {field_name!r} is "
                       f"{btf.c_type_name(type_id)!r}, expected __uint({field_name}, N)")

    # ---- programs -----------------------------------------------------------------------

    def _collect_functions(self) -> None:
        elf = self.elf
        for sec in elf.sections:
            if not sec.executable or sec.size == 0:
                continue
            if sec.size % asm.INSN_SIZE:
                raise self.err(f"section {sec.name!r}: size {sec.size} is not a multiple of 8")
            syms = sorted((s for s in elf.symbols_in(sec.index) if s.type == STT_FUNC),
                          key=lambda s: s.value)
            relocs = self._section_relocs(sec)
            funcs: list[Func] = []
            is_text = sec.index == self.text_index
            # SEC("?name"): libbpf's "do not load unless asked" marker.
            optional = sec.name.startswith("?")
            sdef = None if is_text else find_section_def(sec.name[1:] if optional else sec.name)
            for s in syms:
                if s.value % 8 or s.size % 8 or s.value + s.size > sec.size or not s.size:
                    raise self.err(f"function {s.name!r} in {sec.name!r} has bad bounds "
                                   f"(offset {s.value}, size {s.size})")
                start, n = s.value // 8, s.size // 8
                insns = bytearray(sec.data[s.value:s.value + s.size])
                frel = [Reloc(r.insn_index - start, r.kind, r.target, r.offset, r.section)
                        for r in relocs if start <= r.insn_index < start + n]
                entry = not is_text and s.bind in (STB_GLOBAL, STB_WEAK)
                hidden = s.visibility == STV_HIDDEN
                f: Func
                if entry:
                    if s.name in self.spec.programs:
                        raise self.err(f"duplicate program name {s.name!r}")
                    p = ProgramSpec(s.name, sec.name, start, insns, frel, True, hidden,
                                    license=self.spec.license,
                                    kern_version=self.spec.kernel_version,
                                    autoload=not optional)
                    if sdef is not None:
                        p.section_def = sdef
                        p.prog_type = sdef.prog_type
                        p.expected_attach_type = sdef.expected_attach_type
                        p.attach_to = sdef.attach_target
                        p.prog_flags = sdef.prog_flags
                    self.spec.programs[s.name] = p
                    f = p
                else:
                    f = Func(s.name, sec.name, start, insns, frel, False, hidden)
                    self.spec.subprograms[(sec.name, start)] = f
                funcs.append(f)
            self.spec.functions[sec.name] = funcs

    def _section_relocs(self, sec: Section) -> list[Reloc]:
        """Classify each relocation of an executable section, as libbpf's record_reloc."""
        out: list[Reloc] = []
        for r in self.elf.relocations.get(sec.index, []):
            if r.offset % 8 or r.offset + 8 > sec.size:
                raise RelocationError(f"{self.fname}: section {sec.name!r}: relocation at "
                                      f"byte {r.offset} is not on an instruction")
            out.append(self._classify(sec, r.offset // 8, self.elf.symbols[r.symbol], r.type))
        return out

    def _classify(self, sec: Section, idx: int, sym: Symbol, rtype: int) -> Reloc:
        code, _dst, src, _off, imm = asm.decode(sec.data, idx)

        def where() -> str:  # only errors need it, and it walks the symbol table
            return (f"{self.fname}: function {self._func_name(sec, idx)!r} "
                    f"(section {sec.name!r}) insn {idx}")

        sym_desc = sym.name or f"section #{sym.shndx}"
        if rtype not in (R_BPF_64_64, R_BPF_64_32):
            raise RelocationError(f"{where()}: unsupported relocation type {rtype} "
                                  f"against {sym_desc!r}")
        if sym.shndx == SHN_UNDEF and sym.name:
            ext = self.spec.externs.get(sym.name)
            if ext is None:
                raise RelocationError(f"{where()}: unknown extern {sym.name!r}")
            if code == asm.CALL:
                return Reloc(idx, "kfunc", sym.name)
            if code == asm.LD_IMM64:
                return Reloc(idx, "ksym" if ext.kind == "kfunc" else ext.kind, sym.name,
                             ext.offset)
            raise RelocationError(f"{where()}: extern {sym.name!r} used by opcode {code:#x}")
        if sym.shndx == 0 or sym.shndx >= len(self.elf.sections):
            raise RelocationError(f"{where()}: relocation against {sym_desc!r} in no section")
        tsec = self.elf.sections[sym.shndx]
        if code == asm.CALL:
            if src != asm.BPF_PSEUDO_CALL:
                raise RelocationError(f"{where()}: call relocation on a non bpf-to-bpf call")
            if not tsec.executable:
                raise RelocationError(f"{where()}: call into non-code section {tsec.name!r}")
            if sym.value % 8:
                raise RelocationError(f"{where()}: misaligned call target {sym_desc!r}")
            target = sym.value // 8 + imm + 1
            return Reloc(idx, "call", self._func_name(tsec, target), target, tsec.name)
        if code != asm.LD_IMM64:
            raise RelocationError(f"{where()}: relocation against {sym_desc!r} on opcode "
                                  f"{code:#x} (expected ld_imm64 or call)")
        if idx + 1 >= sec.size // 8:
            raise RelocationError(f"{where()}: ld_imm64 is truncated")
        if tsec.executable:
            if (sym.value + imm) % 8:
                raise RelocationError(f"{where()}: misaligned function address")
            target = (sym.value + imm) // 8
            return Reloc(idx, "func_addr", self._func_name(tsec, target), target, tsec.name)
        if tsec.name == ".maps":
            mname = self._map_at(sym.value)
            if mname is None:
                raise RelocationError(f"{where()}: no map at .maps offset {sym.value} "
                                      f"(symbol {sym_desc!r})")
            return Reloc(idx, "map", mname)
        m = self.spec.maps.get(tsec.name)
        if m is not None and m.data is not None:
            if sym.type not in (STT_OBJECT, STT_SECTION) and sym.name:
                raise RelocationError(f"{where()}: bad data relocation against {sym_desc!r}")
            return Reloc(idx, "data", tsec.name, sym.value + imm)
        raise RelocationError(f"{where()}: relocation against {sym_desc!r} in section "
                              f"{tsec.name!r}, which is neither a map nor global data")

    def _func_name(self, sec: Section, insn: int) -> str:
        off = insn * 8
        for s in self.elf.symbols_in(sec.index):
            if s.type == STT_FUNC and s.value <= off < s.value + max(s.size, 1):
                return s.name
        return f"{sec.name}+{insn}"

    def _map_at(self, offset: int) -> str | None:
        for name, m in self.spec.maps.items():
            if m.section == ".maps" and m.sec_offset == offset:
                return name
        return None

    def _collect_map_slots(self) -> None:
        """Read ``.rel.maps``: initial prog_array / map-in-map slots (``.values = {...}``)."""
        sec = self.elf.section(".maps")
        if sec is None:
            return
        rels = self.elf.relocations.get(sec.index, [])
        btf = self.spec.btf
        for r in rels:
            assert btf is not None
            sym = self.elf.symbols[r.symbol]
            owner = next((n for n, (o, s) in self.map_extents.items() if o <= r.offset < o + s),
                         None)
            if owner is None:
                raise RelocationError(f"{self.fname}: .maps relocation at {r.offset} is "
                                      "outside every map")
            m = self.spec.maps[owner]
            st = btf[btf.resolve(btf[m.btf_var_id].type)]
            last = st.members[-1] if st.members else None
            if last is None or last.name != "values":
                raise RelocationError(f"{self.fname}: map {owner!r} has initial values but "
                                      "no 'values' member")
            moff = r.offset - m.sec_offset - last.bit_offset // 8
            if moff < 0 or moff % 8:
                raise RelocationError(f"{self.fname}: map {owner!r}: bad 'values' slot offset")
            idx = moff // 8
            if m.type == C.BPF_MAP_TYPE_PROG_ARRAY:
                if sym.type != STT_FUNC or sym.name not in self.spec.programs:
                    raise RelocationError(f"{self.fname}: map {owner!r} slot {idx}: "
                                          f"{sym.name!r} is not a program")
            elif sym.name not in self.map_extents:
                raise RelocationError(f"{self.fname}: map {owner!r} slot {idx}: "
                                      f"{sym.name!r} is not a map")
            if idx >= m.max_entries:
                raise RelocationError(f"{self.fname}: map {owner!r}: slot {idx} is beyond "
                                      f"max_entries {m.max_entries}")
            m.init_slots[idx] = sym.name


def _data_kind(sec: Section) -> str | None:
    """'rodata', 'data' or 'bss' for a global data section libbpf would turn into a map."""
    n = sec.name
    if not sec.flags & SHF_ALLOC:
        return None
    if sec.type == SHT_PROGBITS and (n == ".rodata" or n.startswith(".rodata.")):
        return "rodata"
    if sec.type == SHT_PROGBITS and (n == ".data" or n.startswith(".data.")):
        return "data"
    if sec.type == SHT_NOBITS and (n == ".bss" or n.startswith(".bss.")):
        return "bss"
    return None


def _btf_align(btf: BTF, type_id: int) -> int:
    """Natural alignment of a BTF type (what libbpf's btf__align_of gives for externs)."""
    from ..btf.types import Kind

    t = btf[btf.resolve(type_id)]
    if t.kind in (Kind.INT, Kind.ENUM, Kind.ENUM64, Kind.FLOAT):
        return min(max(t.size, 1), 8)
    if t.kind == Kind.PTR:
        return 8
    if t.kind == Kind.ARRAY:
        return _btf_align(btf, t.elem_type)
    if t.kind in (Kind.STRUCT, Kind.UNION):
        return max((_btf_align(btf, m.type) for m in t.members), default=1)
    return 1
