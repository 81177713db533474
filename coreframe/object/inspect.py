"""What ``coreframe object inspect`` shows: an object's programs, maps, variables and CO-RE.

``inspect_object`` returns plain data (JSON-ready) so the CLI can print it as a
table or as JSON; nothing here touches the kernel except reading its BTF to show
how each CO-RE relocation would resolve.
"""

from __future__ import annotations

from ..errors import Error
from ..sys import consts as C

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from ..btf.types import BTF
    from .spec import ObjectSpec

_FLAG_NAMES = [(v, k) for k, v in vars(C).items()
               if k.startswith("BPF_F_") and k in (
                   "BPF_F_NO_PREALLOC", "BPF_F_NO_COMMON_LRU", "BPF_F_NUMA_NODE", "BPF_F_RDONLY",
                   "BPF_F_WRONLY", "BPF_F_STACK_BUILD_ID", "BPF_F_ZERO_SEED",
                   "BPF_F_RDONLY_PROG", "BPF_F_WRONLY_PROG", "BPF_F_CLONE", "BPF_F_MMAPABLE",
                   "BPF_F_PRESERVE_ELEMS", "BPF_F_INNER_MAP", "BPF_F_SEGV_ON_FAULT",
                   "BPF_F_NO_USER_CONV")]


def map_flag_names(flags: int) -> list[str]:
    """BPF_F_* names of a map_flags value (unknown bits as hex)."""
    names = []
    rest = flags
    for bit, name in sorted(_FLAG_NAMES):
        if flags & bit:
            names.append(name)
            rest &= ~bit
    if rest:
        names.append(hex(rest))
    return names


def _jsonable(value: Any) -> Any:
    if hasattr(value, "to_dict"):  # a struct typed from BTF (coreframe.btf.values)
        return value.to_dict()
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


def inspect_object(spec: ObjectSpec, target_btf: BTF | None = None) -> dict[str, Any]:
    """Programs, maps, variables, externs and CO-RE relocations (with resolution) of ``spec``."""
    from .parts import KCONFIG_SEC, short_type_name

    programs = []
    for p in spec.programs.values():
        sd = p.section_def
        programs.append({
            "name": p.name, "section": p.section,
            "type": short_type_name("BPF_PROG_TYPE_", p.prog_type) if p.prog_type
            else "unknown",
            "attach_kind": sd.attach_kind if sd else None,
            "attach_target": p.attach_to or None,
            "auto_attach": bool(sd and sd.auto_attach),
            "insns": p.insn_cnt, "autoload": p.autoload,
        })
    maps = []
    for key, m in spec.maps.items():
        entry = {
            "name": key, "kernel_name": m.name, "type": short_type_name("BPF_MAP_TYPE_", m.type),
            "key_size": m.key_size, "value_size": m.value_size, "max_entries": m.max_entries,
            "flags": map_flag_names(m.map_flags), "pinning": "by_name" if m.pinning else None,
        }
        if spec.btf is not None and m.key_type_id:
            entry["key_type"] = spec.btf.c_type_name(m.key_type_id)
        if spec.btf is not None and m.value_type_id and m.data is None:
            entry["value_type"] = spec.btf.c_type_name(m.value_type_id)
        if m.inner is not None:
            entry["inner"] = {"type": short_type_name("BPF_MAP_TYPE_", m.inner.type),
                              "key_size": m.inner.key_size, "value_size": m.inner.value_size,
                              "max_entries": m.inner.max_entries}
        if m.init_slots:
            entry["initial_slots"] = {str(k): v for k, v in sorted(m.init_slots.items())}
        maps.append(entry)
    variables = []
    for key, m in spec.maps.items():
        if m.data is None or key == KCONFIG_SEC:
            continue
        ds = spec.datasec(key)
        for v in ds.variables:
            try:
                value = _jsonable(ds.get(v.name))
            except Error as e:
                value = f"<{e}>"
            variables.append({"section": key, "name": v.name, "type": v.c_type,
                              "offset": v.offset, "size": v.size, "value": value,
                              "static": v.static})
    externs = [{"name": e.name, "kind": e.kind, "weak": e.weak,
                "type": spec.btf.c_type_name(e.type_id) if spec.btf is not None else None}
               for e in spec.externs.values()]
    core, target_desc = _core(spec, target_btf)
    return {
        "object": spec.name, "file": spec.elf.name, "license": spec.license,
        "programs": programs, "maps": maps, "variables": variables, "externs": externs,
        "core_target": target_desc, "core_relocations": core,
    }


def _core(spec: ObjectSpec, target_btf: BTF | None) -> tuple[list[dict[str, Any]], str]:
    ext = spec.btf_ext
    if ext is None or spec.btf is None or not any(ext.core_relos.values()):
        return [], "none needed"
    desc = "given BTF"
    try:
        if target_btf is None:
            from ..btf.kernel import load_target
            from ..btf.locate import find

            target = find()
            target_btf = load_target(target.path)
            desc = ("running kernel (/sys/kernel/btf/vmlinux)" if target.is_kernel
                    else f"{target.path} ({target.origin})")
        from ..btf.core import KIND_NAMES, CoreRelocator

        relocator: Any = CoreRelocator(spec.btf, target_btf)
    except Error as e:
        relocator, desc = None, f"unavailable: {e}"
        from ..btf.core import KIND_NAMES
    out = []
    for section, relos in ext.core_relos.items():
        funcs = spec.functions.get(section, [])
        for relo in relos:
            idx = relo.insn_off // 8
            func = next((f for f in funcs
                         if f.sec_insn_off <= idx < f.sec_insn_off + f.insn_cnt), None)
            item: dict[str, Any] = {
                "section": section,
                "function": func.name if func else None,
                "insn": idx - func.sec_insn_off if func else idx,
                "kind": KIND_NAMES.get(relo.kind, str(relo.kind)),
                "type": spec.btf.c_type_name(relo.type_id) if relo.type_id else "void",
                "access": relo.access_str,
            }
            if relocator is not None:
                try:
                    res = relocator.resolve(relo)
                except Error as e:
                    item.update(status="error", explanation=str(e))
                except Exception as e:  # a malformed object must not abort the whole report
                    item.update(status="error",
                                explanation=f"cannot resolve ({type(e).__name__}: {e})")
                else:
                    item.update(
                        status="poisoned" if res.poison else "ok",
                        old=res.old_value, new=res.new_value, explanation=res.explanation,
                        target_type=res.target_type_name,
                    )
            else:
                item["status"] = "unresolved"
            out.append(item)
    return out, desc


def format_inspection(data: dict[str, Any]) -> str:
    """Human-readable text of :func:`inspect_object`'s result."""
    lines = [f"object {data['object']} ({data['file']}), license {data['license'] or '-'}", ""]
    lines.append(f"programs ({len(data['programs'])}):")
    for p in data["programs"]:
        target = f" -> {p['attach_target']}" if p["attach_target"] else ""
        flag = "" if p["autoload"] else " [autoload off]"
        lines.append(f"  {p['name']:<24} {p['type']:<16} {p['section']}{target} "
                     f"({p['insns']} insns){flag}")
    lines += ["", f"maps ({len(data['maps'])}):"]
    for m in data["maps"]:
        flags = ",".join(f.removeprefix("BPF_F_") for f in m["flags"]) or "-"
        extra = " pinned by name" if m["pinning"] else ""
        if "inner" in m:
            extra += f" inner {m['inner']['type']}"
        lines.append(f"  {m['name']:<24} {m['type']:<18} key {m['key_size']:<4} "
                     f"value {m['value_size']:<6} max {m['max_entries']:<8} flags {flags}{extra}")
    lines += ["", f"variables ({len(data['variables'])}):"]
    for v in data["variables"]:
        lines.append(f"  {v['section']:<14} {v['name']:<24} {v['type']:<32} = {v['value']!r}")
    if data["externs"]:
        lines += ["", f"externs ({len(data['externs'])}):"]
        for e in data["externs"]:
            weak = " (weak)" if e["weak"] else ""
            lines.append(f"  {e['kind']:<8} {e['name']:<32} {e['type'] or ''}{weak}")
    lines += ["", f"CO-RE relocations ({len(data['core_relocations'])}), target: "
              f"{data['core_target']}:"]
    for r in data["core_relocations"]:
        where = f"{r['function'] or r['section']}+{r['insn']}"
        res = r.get("explanation") or r["status"]
        lines.append(f"  {where:<28} {r['kind']:<24} {r['type']} {r['access']}: {res}")
    return "\n".join(lines)
