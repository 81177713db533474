"""kprobe.multi: one BPF link (BPF_TRACE_KPROBE_MULTI, 5.18+, on fprobe) for many
kernel functions, named by a glob pattern, with one perf-event kprobe per function
where the kernel has no such link.

The choice is made at load time: the kernel accepts a kprobe_multi link only for a
program loaded with ``expected_attach_type`` BPF_TRACE_KPROBE_MULTI, and a perf-event
kprobe only for one loaded without it. So :func:`load_attach_type` tells the loader
which one to ask for (the feature probe, and ``COREFRAME_DISABLE_LINKS=kprobe_multi``
to force the fallback), and :func:`attach_kprobe_multi` follows what the program was
loaded with.

Patterns resolve the way libbpf's do: a name without ``*``/``?`` goes to the kernel
as it is; a glob is matched against ``available_filter_functions`` (the functions
ftrace, and so fprobe, can hook) and turned into addresses through
``available_filter_functions_addrs`` (6.5+) or ``/proc/kallsyms``.
"""

from __future__ import annotations

import errno

from ..errors import AttachError, FeatureMissing
from ..sys import consts as C
from ..sys.host import KALLSYMS
from .base import Link, attach_error, glob_matcher, has_wildcard, program_fd, program_name

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

    from ..object.sections import SectionDef
    from ..programs import Program


def use_multi_link() -> bool:
    """Whether kprobe.multi programs get the kprobe_multi link here."""
    from .. import features

    return not features.link_disabled("kprobe_multi") and features.has_kprobe_multi()


def load_attach_type(section_def: SectionDef) -> int:
    """expected_attach_type for a kprobe.multi/kretprobe.multi program: the multi link's
    where it will be used, else 0 (a plain kprobe program, attached per function)."""
    if section_def.expected_attach_type != C.BPF_TRACE_KPROBE_MULTI:
        return section_def.expected_attach_type  # kprobe.session: no per-target form
    return C.BPF_TRACE_KPROBE_MULTI if use_multi_link() else 0


# ---- resolving a pattern ----------------------------------------------------------------


def _read_lines(path: str) -> list[str]:
    try:
        with open(path) as f:
            return f.read().splitlines()
    except OSError as e:
        raise AttachError(f"reading {path} to resolve a kprobe.multi pattern: "
                          f"{e.strerror}").with_cause(e.errno, f"read {path}") from None


def _filter_functions_file(name: str) -> str:
    from .tracefs import tracefs_file

    return tracefs_file(name)


def matching_functions(pattern: str) -> list[str]:
    """Names of the traceable kernel functions (available_filter_functions) that match
    ``pattern``, each once, in the file's order."""
    match = glob_matcher(pattern)
    seen: dict[str, None] = {}
    for line in _read_lines(_filter_functions_file("available_filter_functions")):
        name = line.split(None, 1)[0] if line else ""
        if name and match(name):
            seen[name] = None
    return list(seen)


def matching_addresses(pattern: str) -> list[int]:
    """Addresses of the traceable kernel functions matching ``pattern`` (libbpf's
    resolution): every function of that name, static ones in several files included."""
    import os

    match = glob_matcher(pattern)
    addrs: dict[int, None] = {}
    addrs_file = _filter_functions_file("available_filter_functions_addrs")
    if os.path.exists(addrs_file):
        for line in _read_lines(addrs_file):
            parts = line.split(None, 2)
            if len(parts) >= 2 and match(parts[1]):
                addrs[int(parts[0], 16)] = None
        return list(addrs)
    names = set(matching_functions(pattern))
    if not names:
        return []
    for line in _read_lines(KALLSYMS):
        parts = line.split(None, 3)
        if len(parts) < 3:
            continue
        sym = parts[2]
        # Some kernels list a function without its clang LTO ".llvm.<hash>" suffix in
        # available_filter_functions but with it in kallsyms (libbpf accepts both).
        if sym in names or (".llvm." in sym and sym.split(".llvm.", 1)[0] in names):
            addr = int(parts[0], 16)
            if addr:
                addrs[addr] = None
    return list(addrs)


def _no_match(pattern: str) -> AttachError:
    return AttachError(f"no traceable kernel function matches '{pattern}' (looked in "
                       "available_filter_functions; is the name right, and not inlined "
                       "or notrace?)")


# ---- attaching ------------------------------------------------------------------------------


def attach_kprobe_multi(prog: Program, pattern: str | None = None, *,
                        syms: Sequence[str] | None = None, retprobe: bool = False,
                        cookies: Sequence[int] | None = None) -> Link:
    """Attach ``prog`` to every kernel function matching ``pattern`` (or to ``syms``).

    One kprobe_multi link when the program was loaded for it (SEC("kprobe.multi/...")
    where the kernel has the link), else one kprobe per function, children of the
    returned :class:`Link`. ``cookies`` (with ``syms``) give each its BPF cookie.
    """
    if (pattern is None) == (syms is None):
        raise AttachError("attach_kprobe_multi needs exactly one of pattern= or syms=")
    if cookies is not None and (syms is None or len(cookies) != len(syms)):
        raise AttachError("attach_kprobe_multi: cookies= needs syms= of the same length")
    kind = "kretprobe.multi" if retprobe else "kprobe.multi"
    what = pattern if pattern is not None else ",".join(syms or ())
    eat = getattr(prog, "expected_attach_type", 0)
    if eat == C.BPF_TRACE_KPROBE_SESSION:  # kprobe.session: entry and return, link only
        return _attach_link(prog, pattern, syms, False, cookies, "kprobe.session", what, eat)
    if eat == C.BPF_TRACE_KPROBE_MULTI:
        return _attach_link(prog, pattern, syms, retprobe, cookies, kind, what, eat)
    return _attach_each(prog, pattern, syms, retprobe, cookies, kind, what)


def _attach_link(prog: Program, pattern: str | None, syms: Sequence[str] | None,
                 retprobe: bool, cookies: Sequence[int] | None, kind: str, what: str,
                 attach_type: int) -> Link:
    from ..sys.bpf import link_create

    addrs: list[int] | None = None
    if pattern is not None:
        if has_wildcard(pattern):
            addrs = matching_addresses(pattern)
            if not addrs:
                raise _no_match(pattern)
        else:
            syms = [pattern]
    count = len(addrs) if addrs is not None else len(syms or ())
    flags = C.BPF_F_KPROBE_MULTI_RETURN if retprobe else 0
    try:
        lfd = link_create(program_fd(prog), 0, attach_type, kprobe_flags=flags,
                          kprobe_syms=list(syms) if addrs is None else None,
                          kprobe_addrs=addrs, kprobe_cookies=cookies)
    except OSError as e:
        op = f"attaching {program_name(prog)} to {kind} {what} ({count} functions)"
        if e.errno == errno.ESRCH:  # ftrace_lookup_symbols found not every name
            raise AttachError(f"{op}: not every function is traceable (ESRCH); see "
                              "available_filter_functions").with_cause(e.errno, op) from None
        if e.errno in (errno.EOPNOTSUPP, errno.ENOENT):
            raise FeatureMissing("kprobe_multi links", f"{op}: the kernel refused the link "
                                 "type; set COREFRAME_DISABLE_LINKS=kprobe_multi to attach "
                                 "one kprobe per function").with_cause(e.errno, op) from None
        raise attach_error(e, op) from None
    return Link(kind, f"{what} ({count} functions)", lfd)


def _attach_each(prog: Program, pattern: str | None, syms: Sequence[str] | None,
                 retprobe: bool, cookies: Sequence[int] | None, kind: str, what: str) -> Link:
    from .. import features
    from .probe import attach_kprobe

    if not features.has_kprobe():
        raise FeatureMissing("kprobes", "this kernel has neither kprobe_multi links nor "
                             "kprobes (kprobe PMU, kprobe_events); "
                             + features.hook_hint("kprobes"))
    if pattern is not None:
        names = matching_functions(pattern) if has_wildcard(pattern) else [pattern]
        if not names:
            raise _no_match(pattern)
    else:
        names = list(syms or ())
    children: list[Link] = []
    try:
        for i, name in enumerate(names):
            children.append(attach_kprobe(prog, name, retprobe=retprobe,
                                          cookie=cookies[i] if cookies else 0))
    except BaseException:
        for c in children:
            c.close()
        raise
    return Link(f"{kind} (kprobes)", f"{what} ({len(children)} functions)", None,
                children=children)
