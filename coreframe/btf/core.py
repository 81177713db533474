"""CO-RE relocation: resolve each .BTF.ext core_relo against a target BTF and patch.

This follows libbpf's relo_core.c semantics so an object relocates to the same
instructions under coreframe as under libbpf:

* a relocation names a local root type and an access string ("0:1:2"); it is
  parsed into a *spec*: the raw indexes, the semantically meaningful accessors
  (named fields and array indexes, skipping anonymous struct/union members)
  and the resulting bit offset;
* candidates are target types with the same *essential* name (the name up to
  its last ``___flavor`` suffix) and a compatible kind; each candidate is
  matched field by field, looking through anonymous members of the target;
* all matching candidates must yield the same value, else the relocation is
  ambiguous; no match poisons field relocations (the instruction becomes a
  call to the bogus helper 0xbad2310, so the verifier only objects if it is
  reachable) while existence and type kinds simply yield 0.

Candidate lists are cached per local type id and pruned to the candidates that
matched, exactly like libbpf, which matters when several flavors exist.
"""

from __future__ import annotations

from coreframe.btf.kinds import (
    BTF_INT_SIGNED,
    BTF_KIND_ARRAY,
    BTF_KIND_ENUM,
    BTF_KIND_ENUM64,
    BTF_KIND_FLOAT,
    BTF_KIND_FUNC_PROTO,
    BTF_KIND_FWD,
    BTF_KIND_INT,
    BTF_KIND_PTR,
    BTF_KIND_STRUCT,
    BTF_KIND_TYPEDEF,
    BTF_KIND_UNION,
    BTF_KIND_UNKN,
    KIND_STR,
)
from coreframe.btf.relo import (  # noqa: F401 - re-exported: core is where callers look
    BPF_CORE_ENUMVAL_EXISTS,
    BPF_CORE_ENUMVAL_VALUE,
    BPF_CORE_FIELD_BYTE_OFFSET,
    BPF_CORE_FIELD_BYTE_SIZE,
    BPF_CORE_FIELD_EXISTS,
    BPF_CORE_FIELD_LSHIFT_U64,
    BPF_CORE_FIELD_RSHIFT_U64,
    BPF_CORE_FIELD_SIGNED,
    BPF_CORE_TYPE_EXISTS,
    BPF_CORE_TYPE_ID_LOCAL,
    BPF_CORE_TYPE_ID_TARGET,
    BPF_CORE_TYPE_MATCHES,
    BPF_CORE_TYPE_SIZE,
    KIND_NAMES,
    POISON_HELPER,
    CoreReloKind,
    CoreResult,
    apply_result,
    relo_name,
    type_name,
)
from coreframe.errors import ObjectError, RelocationError
from coreframe.runtime.compat import zip_strict
from coreframe.runtime.startup import Record, gc_paused
from coreframe.sys.cint import U64_MAX

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from typing import Any

    from coreframe.btf.ext import CoreRelo
    from coreframe.btf.types import BTF


_FIELD_KINDS = frozenset(range(0, 6))
_TYPE_KINDS = frozenset({6, 7, 8, 9, 12})
_ENUMVAL_KINDS = frozenset({10, 11})

BPF_CORE_SPEC_MAX_LEN = 64
_MAX_DEPTH = 32

# BTF kinds are compared as ints (linux/btf.h, through btf.kinds), so any spelling works.


def _is_access_string(access: str) -> bool:
    """Whether ``access`` is a CO-RE access string: decimal indexes joined by ':'."""
    return all(part.isascii() and part.isdigit() for part in access.split(":"))


def essential_name(name: str) -> str:
    """Strip a ``___flavor`` suffix: the part after the last ``X___Y`` separator.

    As in libbpf, the separator needs a non-underscore on both sides, so names
    like ``a____b`` or ``___x`` are kept whole where libbpf keeps them.
    """
    for i in range(len(name) - 5, -1, -1):
        if (
            name[i] != "_"
            and name[i + 1 : i + 4] == "___"
            and name[i + 4] != "_"
        ):
            return name[: i + 1]
    return name


def _is_any_enum(kind: int) -> bool:
    return kind in (BTF_KIND_ENUM, BTF_KIND_ENUM64)


def _is_composite(kind: int) -> bool:
    return kind in (BTF_KIND_STRUCT, BTF_KIND_UNION)


def _kind_core_compat(k1: int, k2: int) -> bool:
    return k1 == k2 or (_is_any_enum(k1) and _is_any_enum(k2))


class _Accessor(Record, fields="type_id idx name"):
    __slots__ = ()

    type_id: int
    idx: int
    name: str | None


class _Spec:
    """libbpf's bpf_core_spec: raw indexes, high-level accessors, bit offset."""

    __slots__ = ("btf", "root_type_id", "kind", "raw", "acc", "bit_offset")

    def __init__(self, btf: Any, root_type_id: int, kind: int) -> None:
        self.btf = btf
        self.root_type_id = root_type_id
        self.kind = kind
        self.raw: list[int] = []
        self.acc: list[_Accessor] = []
        self.bit_offset = 0


class _Mismatch(Exception):
    """Raised inside matching to abort with a libbpf -EINVAL-style error."""


class _Poison(Exception):
    """libbpf's -EUCLEAN: the instruction must be poisoned."""


class CoreRelocator:
    """Resolves CO-RE relocations of one object (``local`` BTF) against ``target``.

    Keep one instance per object load: candidate lists are cached (and pruned)
    per local type id across relocations, as libbpf does. ``modules`` are
    kernel module BTFs (split over ``target``); like libbpf, they are searched
    only for local types that have no candidate in ``target`` itself.
    """

    def __init__(self, local: BTF, target: BTF, modules: Sequence[BTF] = (), *,
                 on_match: Callable[[CoreRelo, BTF, int, tuple[int, ...]], None] | None = None
                 ) -> None:
        self.local = local
        self.target = target
        self.modules = tuple(modules)
        # told (relo, target BTF, candidate root type id, its raw access indexes) for
        # every candidate that matches: what btf.minimize keeps of the target
        self.on_match = on_match
        self._cands: dict[int, list[tuple[Any, int]]] = {}
        self._done: dict[CoreRelo, CoreResult | RelocationError] = {}

    @gc_paused  # decoding kernel types allocates in bursts
    def resolve_all(
        self, core_relos: Mapping[str, Sequence[CoreRelo]]
    ) -> dict[CoreRelo, CoreResult | RelocationError]:
        """Resolve every relocation once, in .BTF.ext order, and remember the outcomes.

        libbpf prunes each local type's candidate list as relocations are
        resolved, so with several target flavors the outcome can depend on the
        order. Calling this first (with ``BTFExt.core_relos``) pins libbpf's
        order; later ``resolve()`` calls, in any order and once per program
        copy of a subprogram, return the remembered result or raise the
        remembered error.
        """
        for relos in core_relos.values():
            for relo in relos:
                if relo not in self._done:
                    try:
                        self.resolve(relo)
                    except RelocationError as e:
                        self._done[relo] = e
        return dict(self._done)

    def outcomes(self) -> dict[CoreRelo, CoreResult | RelocationError]:
        """Every relocation resolved so far and its result or error, in resolution order."""
        return dict(self._done)

    # ------------------------------------------------------------------ resolve

    def resolve(self, relo: CoreRelo) -> CoreResult:
        """Compute the old/new value (or poison) of ``relo`` for the target BTF."""
        done = self._done.get(relo)
        if isinstance(done, RelocationError):
            raise done
        if done is not None:
            return done
        try:
            res = self._resolve(relo)
        except ObjectError as e:
            raise RelocationError(f"{self._relo_name(relo)}: {e}") from None
        self._done[relo] = res
        return res

    def _resolve(self, relo: CoreRelo) -> CoreResult:
        kind = relo.kind
        if kind not in KIND_NAMES:
            raise RelocationError(
                f"{self._relo_name(relo)}: unknown CO-RE relocation kind {kind}"
            )
        local_name = self.local.name_of(relo.type_id)
        local_spec = self._parse_spec(relo)

        if kind == BPF_CORE_TYPE_ID_LOCAL:
            def describe() -> tuple[str, None, str, None]:
                local_str = _format_spec(local_spec)
                return (f"local_type_id of {local_str}: {relo.type_id} (unchanged)", None,
                        local_str, None)

            return CoreResult(kind, relo.type_id, relo.type_id, False, validate=False,
                              describe=describe)

        if not local_name:
            raise RelocationError(
                f"{self._relo_name(relo)}: CO-RE relocations on anonymous types are not supported"
            )

        cands = self._candidates(relo.type_id)
        best: CoreResult | None = None
        best_spec: _Spec | None = None
        kept: list[int] = []
        reasons: list[str] = []
        for cand in cands:
            tb, cand_id = cand
            try:
                ok, cand_spec, why = self._spec_match(local_spec, tb, cand_id)
            except _Mismatch as e:
                raise RelocationError(
                    f"{self._relo_name(relo)}: error matching candidate "
                    f"[{cand_id}] {self._tname(tb, cand_id)}: {e}"
                ) from None
            if not ok:
                reasons.append(why)
                continue
            if self.on_match is not None:  # before the ambiguity checks: keep every match
                self.on_match(relo, tb, cand_id, tuple(cand_spec.raw))
            res = self._calc(relo, local_spec, cand_spec)
            if best is None:
                best, best_spec = res, cand_spec
            elif best_spec is not None and cand_spec.bit_offset != best_spec.bit_offset:
                raise RelocationError(
                    f"{self._relo_name(relo)}: ambiguous: candidates "
                    f"{best.target_spec} and {res.target_spec} resolve to different "
                    f"bit offsets ({best_spec.bit_offset} != {cand_spec.bit_offset})"
                )
            elif res.poison != best.poison or res.new_value != best.new_value:
                raise RelocationError(
                    f"{self._relo_name(relo)}: ambiguous: candidates {best.target_spec} "
                    f"and {res.target_spec} disagree "
                    f"({_outcome(best)} != {_outcome(res)})"
                )
            kept.append(cand)
        if kept:
            self._cands[relo.type_id] = kept
            assert best is not None
            return best

        why = "; ".join(reasons) if reasons else (
            f"no target type named {essential_name(local_name)!r}"
        )
        return self._calc(relo, local_spec, None, reason=why)

    def _relo_name(self, relo: CoreRelo) -> str:
        return relo_name(self.local, relo)

    def _tname(self, btf: Any, type_id: int) -> str:
        return type_name(btf, type_id)

    # ---------------------------------------------------------------- candidates

    def _candidates(self, local_id: int) -> list[tuple[Any, int]]:
        """(BTF, type id) of target types named like ``local_id`` (flavor ignored).

        Looked up by name, never by scanning the target; vmlinux first, module
        BTFs only when vmlinux has none (their base types are skipped).
        """
        cached = self._cands.get(local_id)
        if cached is not None:
            return cached
        ess = essential_name(self.local.name_of(local_id))
        lkind = int(self.local.kind_of(local_id))
        cands: list[tuple[Any, int]] = []
        for tb in (self.target, *self.modules):
            first = 1 if tb is self.target else int(getattr(tb, "start_id", 1))
            found: set[int] = set()
            for tid in (*tb.find(ess), *tb.find_prefix(ess + "___")):
                if tid < first:
                    continue
                # name and kind from the raw record: candidates are often big structs
                tname = tb.name_of(tid)
                if tname and essential_name(tname) == ess and _kind_core_compat(
                    int(tb.kind_of(tid)), lkind
                ):
                    found.add(tid)
            cands.extend((tb, tid) for tid in sorted(found))
            if tb is self.target and cands:
                break
        self._cands[local_id] = cands
        return cands

    # ------------------------------------------------------------- spec parsing

    def _parse_spec(self, relo: CoreRelo) -> _Spec:
        """Turn the access string into a local spec (libbpf bpf_core_parse_spec)."""
        btf = self.local
        kind = relo.kind
        access = relo.access_str
        spec = _Spec(btf, relo.type_id, kind)

        def bad(why: str) -> RelocationError:
            return RelocationError(f"{self._relo_name(relo)}: {why}")

        if not _is_access_string(access):
            raise bad(f"malformed access string {access!r}")
        if kind in _TYPE_KINDS:
            if access != "0":
                raise bad("type-based relocation must have access string '0'")
            return spec
        raw = [int(x) for x in access.split(":")]
        if len(raw) > BPF_CORE_SPEC_MAX_LEN:
            raise bad("access string too long")
        spec.raw = raw
        try:
            tid = btf.resolve(relo.type_id)
            k = int(btf.kind_of(tid))
        except Exception as e:
            raise bad(f"bad type id: {e}") from None
        idx = raw[0]
        if kind in _ENUMVAL_KINDS:
            t = btf[tid]
            if not _is_any_enum(k) or len(raw) > 1 or idx >= len(t.values):
                raise bad("enum value relocation on a non-enum or out-of-range index")
            spec.acc.append(_Accessor(tid, idx, t.values[idx][0]))
            return spec
        spec.acc.append(_Accessor(tid, idx, None))
        spec.bit_offset = idx * self._size(btf, tid, bad) * 8
        for idx in raw[1:]:
            tid = btf.resolve(tid)
            k = int(btf.kind_of(tid))
            if _is_composite(k):
                if idx >= _vlen(btf, tid):
                    raise bad(f"member index {idx} out of range for {self._tname(btf, tid)}")
                m = btf.member_at(tid, idx)
                spec.bit_offset += m.bit_offset
                if m.name:
                    spec.acc.append(_Accessor(tid, idx, m.name))
                tid = m.type
            elif k == BTF_KIND_ARRAY:
                t = btf[tid]
                elem = btf.resolve(t.elem_type)
                flex = _is_flex_arr(btf, spec.acc[-1], t)
                if not flex and idx >= t.nelems:
                    raise bad(f"array index {idx} out of range ({t.nelems} elements)")
                spec.acc.append(_Accessor(elem, idx, None))
                spec.bit_offset += idx * self._size(btf, elem, bad) * 8
                tid = elem
            else:
                raise bad(f"access at index {idx} into {self._tname(btf, tid)}, "
                          "which is neither a struct/union nor an array")
        return spec

    @staticmethod
    def _size(btf: Any, tid: int, bad: Any) -> int:
        try:
            return int(btf.size_of(tid))
        except Exception as e:
            raise bad(f"cannot size type [{tid}]: {e}") from None

    # ------------------------------------------------------------ spec matching

    def _spec_match(self, local: _Spec, tb: Any, targ_id: int) -> tuple[bool, _Spec, str]:
        """Match ``local`` against candidate ``targ_id`` of ``tb``: (matched, spec, reason)."""
        lb = self.local
        kind = local.kind
        ts = _Spec(tb, targ_id, kind)
        cand_id = targ_id

        def tdesc() -> str:  # only a mismatch needs the candidate's name
            return f"[{cand_id}] {self._tname(tb, cand_id)}"

        if kind in _TYPE_KINDS:
            if kind == BPF_CORE_TYPE_MATCHES:
                ok = _types_match(lb, local.root_type_id, tb, targ_id, False, _MAX_DEPTH)
                return ok, ts, "" if ok else f"{tdesc()} does not match the local type"
            ok = _types_are_compat(lb, local.root_type_id, tb, targ_id, _MAX_DEPTH)
            return ok, ts, "" if ok else f"{tdesc()} is not compatible with the local type"

        if kind in _ENUMVAL_KINDS:
            tid = tb.resolve(targ_id)
            t = tb[tid]
            if not _is_any_enum(int(t.kind)):
                return False, ts, f"{tdesc()} is not an enum"
            want = essential_name(local.acc[0].name or "")
            for i, (vname, _v) in enumerate(t.values):
                if essential_name(vname) == want:
                    ts.acc.append(_Accessor(tid, i, vname))
                    ts.raw.append(i)
                    return True, ts, ""
            return False, ts, f"{tdesc()} has no enumerator {want!r}"

        for i, lacc in enumerate(local.acc):
            targ_id = tb.resolve(targ_id)
            if lacc.name is not None:
                res, targ_id = self._match_member(lacc, tb, targ_id, ts)
                if res <= 0:
                    where = self._tname(tb, ts.acc[-1].type_id) if ts.acc else tdesc()
                    return False, ts, f"no compatible field {lacc.name!r} in {where}"
            else:
                if i > 0:
                    t = tb[targ_id]
                    if int(t.kind) != BTF_KIND_ARRAY:
                        return False, ts, f"{self._tname(tb, targ_id)} is not an array"
                    flex = _is_flex_arr(tb, ts.acc[-1], t)
                    if not flex and lacc.idx >= t.nelems:
                        return False, ts, (
                            f"index {lacc.idx} out of range of {t.nelems}-element array"
                        )
                    targ_id = tb.resolve(t.elem_type)
                if len(ts.raw) == BPF_CORE_SPEC_MAX_LEN:
                    raise _Mismatch("struct/union/array nesting too deep")
                ts.acc.append(_Accessor(targ_id, lacc.idx, None))
                ts.raw.append(lacc.idx)
                try:
                    sz = int(tb.size_of(targ_id))
                except Exception as e:
                    raise _Mismatch(f"cannot size target type [{targ_id}]: {e}") from None
                ts.bit_offset += lacc.idx * sz * 8
        return True, ts, ""

    def _match_member(
        self, lacc: _Accessor, tb: Any, targ_id: int, ts: _Spec
    ) -> tuple[int, int]:
        """Find local field ``lacc`` in target composite ``targ_id``, through anonymous members.

        Returns (1 found / 0 not found, next target type id), updating ``ts``.
        """
        targ_id = tb.resolve(targ_id)
        if not _is_composite(int(tb.kind_of(targ_id))):
            return 0, targ_id
        lm = self.local.member_at(lacc.type_id, lacc.idx)
        direct = tb.find_member(targ_id, lm.name) if lm.name else None
        if direct is not None:
            # a named member found before any anonymous one: what the walk below finds
            i, m = direct
            if len(ts.raw) == BPF_CORE_SPEC_MAX_LEN:
                raise _Mismatch("struct/union/array nesting too deep")
            ts.bit_offset += m.bit_offset
            ts.raw.append(i)
            ts.acc.append(_Accessor(targ_id, i, m.name))
            if _fields_are_compat(self.local, lm.type, tb, m.type):
                return 1, m.type
            ts.acc.pop()
            return 0, m.type
        tt = tb[targ_id]
        for i, m in enumerate(tt.members):
            if len(ts.raw) == BPF_CORE_SPEC_MAX_LEN:
                raise _Mismatch("struct/union/array nesting too deep")
            ts.bit_offset += m.bit_offset
            ts.raw.append(i)
            if not m.name:
                found, nxt = self._match_member(lacc, tb, m.type, ts)
                if found:
                    return found, nxt
            elif m.name == lm.name:
                ts.acc.append(_Accessor(targ_id, i, m.name))
                ok = _fields_are_compat(self.local, lm.type, tb, m.type)
                if not ok:
                    ts.acc.pop()
                return (1 if ok else 0), m.type
            ts.bit_offset -= m.bit_offset
            ts.raw.pop()
        return 0, targ_id

    # -------------------------------------------------------------- calculation

    def _calc(
        self, relo: CoreRelo, local: _Spec, targ: _Spec | None, reason: str = ""
    ) -> CoreResult:
        """Old and new values for one candidate (or none), like bpf_core_calc_relo."""
        kind = relo.kind
        tid = targ.root_type_id if targ is not None else None

        def bad(why: str) -> RelocationError:
            return RelocationError(f"{self._relo_name(relo)}: {why}")

        poison = False
        validate = True
        orig_sz = new_sz = 0
        fail_memsz = False
        old = new = 0
        if kind in _FIELD_KINDS:
            old, orig_sz, orig_tid, validate = self._calc_field(relo, local, bad)
            try:
                new, new_sz, new_tid, _ = self._calc_field(relo, targ, bad)
            except _Poison:
                poison = True
            if not poison and orig_sz != new_sz and targ is not None:
                ot = self.local[orig_tid]
                nt = targ.btf[new_tid]
                if int(ot.kind) == BTF_KIND_PTR and int(nt.kind) == BTF_KIND_PTR:
                    pass
                elif (
                    int(ot.kind) == BTF_KIND_INT and int(nt.kind) == BTF_KIND_INT
                    and _int_encoding(ot) != BTF_INT_SIGNED
                    and _int_encoding(nt) != BTF_INT_SIGNED
                ):
                    pass
                else:
                    fail_memsz = True
        elif kind in _TYPE_KINDS:
            old = self._calc_type(kind, local)
            new = self._calc_type(kind, targ)
            validate = kind != BPF_CORE_TYPE_ID_TARGET
        else:
            old = self._calc_enumval(kind, local)
            try:
                new = self._calc_enumval(kind, targ)
            except _Poison:
                poison = True

        def describe() -> tuple[str, str | None, str, str | None]:
            kname = KIND_NAMES[kind]
            local_str = _format_spec(local)
            targ_str = _format_spec(targ) if targ is not None else None
            tname = self._tname(targ.btf, tid) if targ is not None and tid is not None else None
            if poison:
                expl = (
                    f"{kname} of {local_str}: poisoned (insn becomes call {POISON_HELPER:#x}; "
                    f"fails only if reached): {reason or 'no match'}"
                )
            elif targ is None:
                expl = f"{kname} of {local_str}: {old} -> {new} (not in target: {reason})"
            else:
                expl = f"{kname} of {local_str}: {old} -> {new} (target {targ_str})"
                if fail_memsz:
                    expl += (
                        f"; memory size {orig_sz} -> {new_sz} cannot be adjusted for this "
                        "field type, loads/stores are poisoned"
                    )
                elif orig_sz != new_sz:
                    expl += f"; load/store size {orig_sz} -> {new_sz}"
            return expl, tname, local_str, targ_str

        return CoreResult(
            kind, old, new, poison, target_type_id=tid, validate=validate,
            target_btf=targ.btf if targ is not None else None,
            orig_size=orig_sz, new_size=new_sz, fail_memsz_adjust=fail_memsz,
            describe=describe,
        )

    def _calc_field(
        self, relo: CoreRelo, spec: _Spec | None, bad: Any
    ) -> tuple[int, int, int, bool]:
        """(value, memory size, field type id, validate) of a field relocation."""
        kind = relo.kind
        if kind == BPF_CORE_FIELD_EXISTS:
            return (1 if spec is not None else 0), 0, 0, True
        if spec is None:
            raise _Poison
        btf = spec.btf
        acc = spec.acc[-1]
        if acc.name is None:
            # a[n]: element access.
            if kind == BPF_CORE_FIELD_BYTE_OFFSET:
                elem = btf.resolve(acc.type_id)
                while int(btf[elem].kind) == BTF_KIND_ARRAY:
                    elem = btf.resolve(btf[elem].elem_type)
                return spec.bit_offset // 8, self._size(btf, elem, bad), acc.type_id, True
            if kind == BPF_CORE_FIELD_BYTE_SIZE:
                return self._size(btf, acc.type_id, bad), 0, 0, True
            raise bad(f"<{KIND_NAMES[kind]}> cannot be applied to an array element access")

        m = btf.member_at(acc.type_id, acc.idx)  # not the whole (maybe huge) struct
        ftid = btf.resolve(m.type)
        mt = btf[ftid]
        bit_off = spec.bit_offset
        bit_sz = m.bitfield_size or 0
        bitfield = bit_sz > 0
        if bitfield:
            byte_sz = int(mt.size)
            byte_off = bit_off // 8 // byte_sz * byte_sz
            while bit_off + bit_sz - byte_off * 8 > byte_sz * 8:
                if byte_sz >= 8:
                    raise bad("bitfield cannot be read with a single 64-bit load")
                byte_sz *= 2
                byte_off = bit_off // 8 // byte_sz * byte_sz
        else:
            byte_sz = self._size(btf, ftid, bad)
            byte_off = bit_off // 8
            bit_sz = byte_sz * 8
        validate = not bitfield
        mem_sz = 0
        if kind == BPF_CORE_FIELD_BYTE_OFFSET:
            val = byte_off
            if not bitfield:
                # the access size is the innermost element's, but the type
                # judged for a size change is the field's own (as in libbpf)
                elem = ftid
                while int(btf[elem].kind) == BTF_KIND_ARRAY:
                    elem = btf.resolve(btf[elem].elem_type)
                mem_sz = self._size(btf, elem, bad)
        elif kind == BPF_CORE_FIELD_BYTE_SIZE:
            val = byte_sz
        elif kind == BPF_CORE_FIELD_SIGNED:
            k = int(mt.kind)
            val = int(
                (_is_any_enum(k) and bool(getattr(mt, "signed", False)))
                or (k == BTF_KIND_INT and _int_signed(mt))
            )
            validate = True
        elif kind == BPF_CORE_FIELD_LSHIFT_U64:
            val = 64 - (bit_off + bit_sz - byte_off * 8)
        else:  # BPF_CORE_FIELD_RSHIFT_U64
            val = 64 - bit_sz
            validate = True
        return val, mem_sz, ftid, validate

    def _calc_type(self, kind: int, spec: _Spec | None) -> int:
        if spec is None:
            return 0
        if kind == BPF_CORE_TYPE_ID_TARGET:
            return spec.root_type_id
        if kind in (BPF_CORE_TYPE_EXISTS, BPF_CORE_TYPE_MATCHES):
            return 1
        try:
            return int(spec.btf.size_of(spec.root_type_id))
        except Exception as e:
            raise RelocationError(
                f"CO-RE <type_size>: cannot size [{spec.root_type_id}]: {e}"
            ) from None

    def _calc_enumval(self, kind: int, spec: _Spec | None) -> int:
        if kind == BPF_CORE_ENUMVAL_EXISTS:
            return 1 if spec is not None else 0
        if spec is None:
            raise _Poison
        acc = spec.acc[0]
        t = spec.btf[acc.type_id]
        val = int(t.values[acc.idx][1])
        if int(t.kind) == BTF_KIND_ENUM:
            # btf_enum.val is an s32: libbpf widens it to u64 with sign extension
            val &= 0xFFFFFFFF
            if val & 0x80000000:
                val |= U64_MAX ^ 0xFFFFFFFF
        return val & U64_MAX

    # -------------------------------------------------------------------- patch

    def apply(self, insns: bytearray, insn_index: int, relo: CoreRelo, result: CoreResult) -> None:
        """Patch instruction ``insn_index`` of a program in place with ``result``."""
        apply_result(insns, insn_index, result, what=self._relo_name(relo))


def _outcome(res: CoreResult) -> str:
    return "poison" if res.poison else str(res.new_value)


def _int_encoding(t: Any) -> int:
    return int(getattr(t, "encoding", 0))


def _int_signed(t: Any) -> bool:
    return bool(_int_encoding(t) & BTF_INT_SIGNED)


def _int_offset(t: Any) -> int:
    return int(getattr(t, "offset", 0) or 0)


def _is_flex_arr(btf: Any, acc: _Accessor, arr: Any) -> bool:
    """A zero-length array that is the last member of the enclosing struct."""
    if acc.name is None or arr.nelems > 0:
        return False
    return acc.idx == _vlen(btf, acc.type_id) - 1


def _vlen(btf: Any, type_id: int) -> int:
    """Member (or enumerator, parameter) count, read from the raw record."""
    return btf.raw(type_id)[1] & 0xFFFF


def _names_match(a: str, b: str) -> bool:
    """libbpf bpf_core_names_match: empty target name only matches an empty local name."""
    if not b:
        return not a
    return essential_name(a) == essential_name(b)


def _fields_are_compat(lb: Any, lid: int, tb: Any, tid: int) -> bool:
    """libbpf bpf_core_fields_are_compat."""
    while True:
        lid = lb.resolve(lid)
        tid = tb.resolve(tid)
        lt, tt = lb[lid], tb[tid]
        lk, tk = int(lt.kind), int(tt.kind)
        if _is_composite(lk) and _is_composite(tk):
            return True
        if not _kind_core_compat(lk, tk):
            return False
        if lk in (BTF_KIND_PTR, BTF_KIND_FLOAT):
            return True
        if lk in (BTF_KIND_FWD, BTF_KIND_ENUM, BTF_KIND_ENUM64):
            ln = essential_name(lt.name or "")
            tn = essential_name(tt.name or "")
            return not ln or not tn or ln == tn
        if lk == BTF_KIND_INT:
            return _int_offset(lt) == 0 and _int_offset(tt) == 0
        if lk == BTF_KIND_ARRAY:
            lid, tid = lt.elem_type, tt.elem_type
            continue
        return False


def _resolved(lb: Any, lid: int, tb: Any, tid: int) -> tuple[Any, Any]:
    """The local and target types behind modifiers and typedefs."""
    return lb[lb.resolve(lid)], tb[tb.resolve(tid)]


def _types_are_compat(lb: Any, lid: int, tb: Any, tid: int, level: int) -> bool:
    """libbpf __bpf_core_types_are_compat (names already matched by the caller)."""
    if not _kind_core_compat(int(lb.kind_of(lid)), int(tb.kind_of(tid))):
        return False
    for _ in range(_MAX_DEPTH):  # libbpf's depth limit: deeper chains do not match
        lt, tt = _resolved(lb, lid, tb, tid)
        lk, tk = int(lt.kind), int(tt.kind)
        if not _kind_core_compat(lk, tk):
            return False
        if lk in (BTF_KIND_UNKN, BTF_KIND_STRUCT, BTF_KIND_UNION, BTF_KIND_ENUM, BTF_KIND_FWD,
                  BTF_KIND_ENUM64):
            return True
        if lk == BTF_KIND_INT:
            return _int_offset(lt) == 0 and _int_offset(tt) == 0
        if lk == BTF_KIND_PTR:
            lid, tid = lt.type, tt.type
            continue
        if lk == BTF_KIND_ARRAY:
            lid, tid = lt.elem_type, tt.elem_type
            continue
        if lk == BTF_KIND_FUNC_PROTO:
            if len(lt.params) != len(tt.params):
                return False
            for (_ln, lp), (_tn, tp) in zip_strict(lt.params, tt.params):
                if level <= 0:
                    return False
                if not _types_are_compat(lb, lb.resolve(lp), tb, tb.resolve(tp), level - 1):
                    return False
            lid, tid = lt.return_type, tt.return_type
            continue
        return False
    return False


def _types_match(lb: Any, lid: int, tb: Any, tid: int, behind_ptr: bool, level: int) -> bool:
    """libbpf __bpf_core_types_match (the TYPE_MATCHES relation)."""
    if level <= 0:
        return False
    for _ in range(_MAX_DEPTH):
        lt, tt = _resolved(lb, lid, tb, tid)
        lid, tid = lt.id, tt.id
        if not _names_match(lt.name or "", tt.name or ""):
            return False
        lk, tk = int(lt.kind), int(tt.kind)
        if lk == BTF_KIND_UNKN:
            return lk == tk
        if lk == BTF_KIND_FWD:
            lf = bool(lt.is_union)
            if behind_ptr:
                if lk == tk:
                    return lf == bool(tt.is_union)
                return (tk == BTF_KIND_STRUCT and not lf) or (tk == BTF_KIND_UNION and lf)
            return lk == tk and lf == bool(tt.is_union)
        if lk in (BTF_KIND_ENUM, BTF_KIND_ENUM64):
            if not _is_any_enum(tk):
                return False
            return _enums_match(lt, tt)
        if lk in (BTF_KIND_STRUCT, BTF_KIND_UNION):
            if behind_ptr:
                if lk == tk:
                    return True
                if tk != BTF_KIND_FWD:
                    return False
                return (lk == BTF_KIND_UNION) == bool(tt.is_union)
            if lk != tk:
                return False
            return _composites_match(lb, lt, tb, tt, behind_ptr, level)
        if lk == BTF_KIND_INT:
            return lk == tk and int(lt.size) == int(tt.size) and _int_signed(lt) == _int_signed(tt)
        if lk == BTF_KIND_PTR:
            if lk != tk:
                return False
            behind_ptr = True
            lid, tid = lt.type, tt.type
            continue
        if lk == BTF_KIND_ARRAY:
            if lk != tk or lt.nelems != tt.nelems:
                return False
            lid, tid = lt.elem_type, tt.elem_type
            continue
        if lk == BTF_KIND_FUNC_PROTO:
            if lk != tk or len(lt.params) != len(tt.params):
                return False
            for (_ln, lp), (_tn, tp) in zip_strict(lt.params, tt.params):
                if not _types_match(lb, lp, tb, tp, behind_ptr, level - 1):
                    return False
            lid, tid = lt.return_type, tt.return_type
            continue
        return False
    return False


def _enums_match(lt: Any, tt: Any) -> bool:
    if int(lt.size) != int(tt.size) or len(lt.values) > len(tt.values):
        return False
    tnames = [n for n, _v in tt.values]
    return all(any(_names_match(ln, tn) for tn in tnames) for ln, _v in lt.values)


def _composites_match(lb: Any, lt: Any, tb: Any, tt: Any, behind_ptr: bool, level: int) -> bool:
    if len(lt.members) > len(tt.members):
        return False
    for lm in lt.members:
        for tm in tt.members:
            if not _names_match(lm.name or "", tm.name or ""):
                continue
            if _types_match(lb, lm.type, tb, tm.type, behind_ptr, level - 1):
                break
        else:
            return False
    return True


def _format_spec(spec: _Spec | None) -> str:
    """C-ish rendering like libbpf's: ``[6] struct task_struct.comm[3] (0:0:3 @ offset 3)``."""
    if spec is None:
        return "<none>"
    btf = spec.btf
    # kind and name from the raw record, no decoding
    kind, tname = int(btf.kind_of(spec.root_type_id)), btf.name_of(spec.root_type_id)
    word = {BTF_KIND_STRUCT: "struct", BTF_KIND_UNION: "union", BTF_KIND_ENUM: "enum",
            BTF_KIND_ENUM64: "enum", BTF_KIND_TYPEDEF: "typedef"}.get(
                kind, KIND_STR.get(kind, "?").lower())
    out = f"[{spec.root_type_id}] {word} {tname or '<anon>'}"
    if spec.kind in _TYPE_KINDS:
        return out
    if spec.kind in _ENUMVAL_KINDS:
        if spec.acc:
            a = spec.acc[0]
            e = btf[a.type_id]
            name, val = e.values[a.idx]
            out += f"::{name} = {val}"
        return out
    for i, a in enumerate(spec.acc):
        if a.name is not None:
            out += f".{a.name}"
        elif i > 0 or a.idx > 0:
            out += f"[{a.idx}]"
    raw = ":".join(map(str, spec.raw))
    if spec.bit_offset % 8:
        out += f" ({raw} @ offset {spec.bit_offset // 8}.{spec.bit_offset % 8})"
    else:
        out += f" ({raw} @ offset {spec.bit_offset // 8})"
    return out
