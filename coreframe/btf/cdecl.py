"""C declarators from BTF type chains: the one printer behind every C type coreframe shows.

BTF stores a declaration as a chain from the outside in (``VAR -> CONST -> PTR
-> VOLATILE -> STRUCT``), C writes it inside out: qualifiers of a pointer go to
the right of its ``*``, those of the base type to the left of the base, and
arrays and function prototypes wrap what points at them in parentheses. The
printer pushes the chain on a stack down to its base type (int, float, struct,
union, enum, fwd, typedef or void) and pops it back while writing, which is how
libbpf's btf_dump turns BTF into C.

Two spellings share that walk:

* ``BPFTOOL``: what ``bpftool btf dump file F format c`` (libbpf 1.1) writes, so
  a generated ``vmlinux.h`` can be diffed against bpftool's: qualifiers in chain
  order and set off by spaces (``char * const *``), parameter names kept.
* ``CLANG``: how clang spells a type in its diagnostics, for error messages and
  ``object inspect``: qualifiers in C's canonical order (``const volatile``) and
  attached to their ``*`` (``struct exit_event *const volatile``), parameter
  names left out, type tags (which
  do not change the type) left out, and an anonymous struct written
  ``struct {...}``.

A declarator's text does not depend on the name declared, so each finished one
is kept (per type id) as the text before and after the name; a kernel's BTF
declares ~1M members and parameters with a few tens of thousands of distinct
type chains.
"""

from __future__ import annotations

from .types import Kind

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from .types import BTF

_PTR = Kind.PTR
_ARRAY = Kind.ARRAY
_STRUCT = Kind.STRUCT
_UNION = Kind.UNION
_ENUM = Kind.ENUM
_ENUM64 = Kind.ENUM64
_FWD = Kind.FWD
_TYPEDEF = Kind.TYPEDEF
_VOLATILE = Kind.VOLATILE
_CONST = Kind.CONST
_RESTRICT = Kind.RESTRICT
_FUNC_PROTO = Kind.FUNC_PROTO
_TYPE_TAG = Kind.TYPE_TAG
_INT = Kind.INT
_FLOAT = Kind.FLOAT

_QUAL_WORD = {_CONST: "const", _VOLATILE: "volatile", _RESTRICT: "restrict"}
_QUALS = frozenset(_QUAL_WORD)
# C's canonical qualifier order, as clang prints it
_QUAL_RANK = {_CONST: 0, _VOLATILE: 1, _RESTRICT: 2}
_MODS = frozenset({_CONST, _VOLATILE, _RESTRICT, _TYPE_TAG})
# links followed from a declarator down to its base type
_CHAIN_NEXT = frozenset({_PTR, _VOLATILE, _CONST, _RESTRICT, _FUNC_PROTO, _TYPE_TAG})
_BASES = frozenset({_INT, _FLOAT, _ENUM, _ENUM64, _FWD, _STRUCT, _UNION, _TYPEDEF})
# the longest chain a declaration can have; a longer one loops
_MAX_CHAIN = 1024
# parameters and inline definitions nest declarations; deeper than this loops
_MAX_NESTING = 256
_NAME_MARK = "\0"  # stands for the declared name in a kept declarator (names hold no NUL)

BPFTOOL = "bpftool"
CLANG = "clang"


class TypeView:
    """What the printer reads of a BTF: kind, name and links of a type id.

    This one reads a :class:`BTF` record by record (no decoding of whole types);
    the C header dumper passes a view over tables it built for all types at once.
    """

    def __init__(self, btf: BTF) -> None:
        self.btf = btf

    def kind(self, tid: int) -> int:
        return self.btf.kind_of(tid)

    def name(self, tid: int) -> str:
        return self.btf.name_of(tid)

    def has_name(self, tid: int) -> bool:
        return tid != 0 and self.btf.raw(tid)[0] != 0

    def ref(self, tid: int) -> int:
        """The type a PTR, modifier, TYPEDEF, FUNC or VAR refers to; a FUNC_PROTO's return type."""
        return self.btf.raw(tid)[2]

    def array(self, tid: int) -> tuple[int, int]:
        """(element type, element count) of an ARRAY."""
        t = self.btf[tid]
        return t.elem_type, t.nelems  # type: ignore[attr-defined]

    def params(self, tid: int) -> list[tuple[str, int]]:
        """(name, type) of each FUNC_PROTO parameter; type 0 last means ``...``."""
        return [(p.name, p.type) for p in self.btf[tid].params]  # type: ignore[attr-defined]

    def kflag(self, tid: int) -> bool:
        """The record's kind_flag bit."""
        return bool(self.btf.raw(tid)[1] >> 31)

    def fwd_is_union(self, tid: int) -> bool:
        """Whether a FWD declares a union (kind_flag set) rather than a struct."""
        return self.kflag(tid)


class Declarator:
    """Spells a type around a declared name, in one of two styles (see the module doc).

    ``type_name`` and ``ident_name`` give the names written for struct/union/enum
    tags and for typedefs (the header dumper renames duplicates ``NAME___2``);
    ``inline_def`` writes the definition of an anonymous struct, union or enum
    where it is used (the dumper's), or None to write ``struct {...}``.
    """

    def __init__(
        self,
        view: TypeView,
        style: str = CLANG,
        *,
        type_name: Callable[[int], str] | None = None,
        ident_name: Callable[[int], str] | None = None,
        inline_def: Callable[[int, int, list[str]], None] | None = None,
    ) -> None:
        if style not in (BPFTOOL, CLANG):
            raise ValueError(f"unknown declarator style {style!r}")
        self.view = view
        self.bpftool = style == BPFTOOL
        self.type_name = type_name or view.name
        self.ident_name = ident_name or view.name
        self.inline_def = inline_def
        self._kept: dict[tuple[int, bool], tuple[str, str]] = {}
        self._inlined = False
        self._depth = 0

    # ---- entry points -------------------------------------------------------------

    def decl(self, tid: int, name: str = "", lvl: int = 0) -> str:
        """``tid`` declaring ``name`` (abstract when empty), e.g. ``char *argv[4]``."""
        out: list[str] = []
        self.emit(tid, name, lvl, out)
        return "".join(out)

    def emit(self, tid: int, name: str, lvl: int, out: list[str]) -> None:
        """Append the declaration to ``out``; ``lvl`` indents inline definitions."""
        key = (tid, bool(name))
        kept = self._kept.get(key)
        if kept is not None:
            out.append(kept[0] + name + kept[1] if name else kept[0])
            return
        if self._depth >= _MAX_NESTING:
            from ..errors import ObjectError

            raise ObjectError(f"BTF: type id {tid}: declarations nested more than "
                              f"{_MAX_NESTING} deep (loop?)")
        outer = self._inlined
        self._inlined = False
        start = len(out)
        self._depth += 1
        try:
            self._emit(tid, _NAME_MARK if name else "", lvl, out)
        finally:
            self._depth -= 1
        if self._inlined:
            # an inline definition (anonymous struct or enum) is written out each
            # time, as bpftool does, so it is not kept
            text = "".join(out[start:])
            out[start:] = [text.replace(_NAME_MARK, name)]
        else:
            text = "".join(out[start:])
            before, _, after = text.partition(_NAME_MARK)
            self._kept[key] = (before, after)
            out[start:] = [before + name + after]
        self._inlined = outer or self._inlined

    # ---- the walk -----------------------------------------------------------------

    def _emit(self, tid: int, fname: str, lvl: int, out: list[str]) -> None:
        view = self.view
        kind = view.kind
        stack: list[int] = []
        for _ in range(_MAX_CHAIN):
            stack.append(tid)
            if tid == 0:
                break
            k = kind(tid)
            if k in _CHAIN_NEXT:
                tid = view.ref(tid)
            elif k == _ARRAY:
                tid = view.array(tid)[0]
            else:
                break  # a base type, or a kind no declaration contains (written as nothing)
        else:
            from ..errors import ObjectError

            raise ObjectError(f"BTF: type id {stack[0]}: type chain longer than "
                              f"{_MAX_CHAIN} links (loop?)")
        self._chain(stack, fname, lvl, out)

    def _mods(self, stack: list[int], out: list[str]) -> None:
        """Write the qualifiers on top of the stack (they qualify the base type)."""
        kind = self.view.kind
        quals = []
        while stack and kind(stack[-1]) in _QUALS:
            quals.append(kind(stack.pop()))
        if not quals:
            return
        if not self.bpftool:
            quals = sorted(set(quals), key=_QUAL_RANK.__getitem__)
        out.append(" ".join(map(_QUAL_WORD.__getitem__, quals)) + " ")

    def _drop_mods(self, stack: list[int]) -> None:
        """Drop qualifiers of an array or a function: they mean nothing in C (GCC emits
        them for arrays of const elements and for noreturn function pointers)."""
        kind = self.view.kind
        while stack and kind(stack[-1]) in _MODS:
            stack.pop()

    def _name(self, fname: str, last_was_ptr: bool, out: list[str]) -> None:
        if fname:
            out.append(fname if last_was_ptr else " " + fname)

    def _chain(self, stack: list[int], fname: str, lvl: int, out: list[str],
               last_was_ptr: bool = True) -> None:
        view = self.view
        kind = view.kind
        bpftool = self.bpftool
        # last_was_ptr: whether the last thing written was a '*' (`int **p`, not
        # `int * * p`); a nested chain (inside parentheses) starts right after a '('
        while stack:
            tid = stack.pop()
            if tid == 0:
                self._mods(stack, out)
                out.append("void")
                last_was_ptr = False
                continue
            k = kind(tid)
            if k == _PTR:
                out.append("*" if last_was_ptr else " *")
            elif k in _QUALS:
                # qualifiers to the right of a '*' belong to the pointer
                if bpftool:
                    out.append(" " + _QUAL_WORD[k])
                else:
                    quals = [k]
                    while stack and kind(stack[-1]) in _QUALS:
                        quals.append(kind(stack.pop()))
                    words = " ".join(_QUAL_WORD[q] for q in
                                     sorted(set(quals), key=_QUAL_RANK.__getitem__))
                    out.append(words if last_was_ptr else " " + words)
            elif k == _INT or k == _FLOAT:
                self._mods(stack, out)
                out.append(view.name(tid))
            elif k == _TYPEDEF:
                self._mods(stack, out)
                out.append(self.ident_name(tid))
            elif k == _STRUCT or k == _UNION:
                self._mods(stack, out)
                word = "struct" if k == _STRUCT else "union"
                if view.has_name(tid):
                    out.append(word + " " + self.type_name(tid))
                elif self.inline_def is not None:
                    self._inlined = True
                    self.inline_def(tid, lvl, out)
                else:
                    out.append(word + " {...}")
            elif k == _ENUM or k == _ENUM64:
                self._mods(stack, out)
                if view.has_name(tid):
                    out.append("enum " + self.type_name(tid))
                elif self.inline_def is not None:
                    self._inlined = True
                    self.inline_def(tid, lvl, out)
                else:
                    out.append("enum {...}")
            elif k == _FWD:
                self._mods(stack, out)
                out.append(("union " if view.fwd_is_union(tid) else "struct ")
                           + self.type_name(tid))
            elif k == _TYPE_TAG:
                self._mods(stack, out)
                if bpftool:
                    # kind_flag: the tag is an attribute of its own name
                    out.append(f" __attribute__(({view.name(tid)}))" if view.kflag(tid) else
                               f' __attribute__((btf_type_tag("{view.name(tid)}")))')
                else:
                    continue  # a tag does not change the type: last_was_ptr stays
            elif k == _ARRAY:
                self._array(tid, stack, fname, lvl, last_was_ptr, out)
                return
            elif k == _FUNC_PROTO:
                self._proto(tid, stack, fname, lvl, last_was_ptr, out)
                return
            else:
                return  # FUNC, VAR, DATASEC, DECL_TAG are not part of a declarator
            last_was_ptr = k == _PTR
        self._name(fname, last_was_ptr, out)

    def _array(self, tid: int, stack: list[int], fname: str, lvl: int, last_was_ptr: bool,
               out: list[str]) -> None:
        nelems = self.view.array(tid)[1]
        self._drop_mods(stack)
        if not stack:
            self._name(fname, last_was_ptr, out)
            out.append(f"[{nelems}]")
            return
        # what points at the array (or is declared as it) goes in parentheses before
        # the dimension: `int (*p)[4]`; a further dimension needs none: `int m[2][3]`
        multidim = self.view.kind(stack[-1]) == _ARRAY
        if not self.bpftool:
            if multidim:
                # the outer dimension decides the spacing: `int (*)[2][3]`
                self._chain(stack, fname, lvl, out, last_was_ptr)
            else:
                out.append("(" if last_was_ptr else " (")
                self._chain(stack, fname, lvl, out)
                out.append(")")
            out.append(f"[{nelems}]")
            return
        # libbpf's spacing: `int (*p)[4]` but `int(*)[4]`
        if fname and not last_was_ptr:
            out.append(" ")
        if not multidim:
            out.append("(")
        self._chain(stack, fname, lvl, out)
        if not multidim:
            out.append(")")
        out.append(f"[{nelems}]")

    def _proto(self, tid: int, stack: list[int], fname: str, lvl: int, last_was_ptr: bool,
               out: list[str]) -> None:
        self._drop_mods(stack)
        if stack:
            # `int (*fp)(int)`; returning a pointer, clang writes `char *(*fp)(int)`
            out.append("(" if last_was_ptr and not self.bpftool else " (")
            self._chain(stack, fname, lvl, out)
            out.append(")")
        else:
            self._name(fname, last_was_ptr, out)
        params = self.view.params(tid)
        # clang emits a prototype without parameters as one void parameter
        if not params or (len(params) == 1 and params[0][1] == 0):
            out.append("(void)")
            return
        out.append("(")
        last = len(params) - 1
        for i, (pname, ptype) in enumerate(params):
            if i:
                out.append(", ")
            if i == last and ptype == 0:  # a last void parameter stands for varargs
                out.append("...")
                break
            self.emit(ptype, pname if self.bpftool else "", lvl, out)
        out.append(")")


def c_type_name(btf: BTF, type_id: int) -> str:
    """C spelling of a type as clang spells it: ``const volatile struct exit_event
    *const volatile``, ``char *(*)(int)``; a FUNC or VAR is declared by its name
    (``int helper(int)``), a DATASEC is its name."""
    name = ""
    for _ in range(_MAX_CHAIN):
        k = btf.kind_of(type_id)
        if k == Kind.DECL_TAG:
            type_id = btf.raw(type_id)[2]
            continue
        if k == Kind.FUNC or k == Kind.VAR:
            name = btf.name_of(type_id)
            type_id = btf.raw(type_id)[2]
        elif k == Kind.DATASEC:
            return btf.name_of(type_id) or "(anon)"
        break
    return Declarator(TypeView(btf)).decl(type_id, name)
