"""uprobe.multi: one BPF link (BPF_TRACE_UPROBE_MULTI, 6.6+) for many functions of
one binary, named by a glob over its ELF symbol table, with one perf-event uprobe
per function where the kernel has no such link.

As for kprobe.multi (:mod:`.kprobe_multi`), the choice is made at load time: the
kernel takes a uprobe_multi link only for a program loaded with
``expected_attach_type`` BPF_TRACE_UPROBE_MULTI and a perf-event uprobe only for
one loaded without it; :func:`load_attach_type` asks the feature probe (and
``COREFRAME_DISABLE_LINKS=uprobe_multi``), :func:`attach_uprobe_multi` follows what
the program was loaded with.
"""

from __future__ import annotations

import errno
import os

from ..errors import AttachError, FeatureMissing
from ..sys import consts as C
from .base import Link, attach_error, program_fd, program_name

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

    from ..object.sections import SectionDef
    from ..programs import Program


def use_multi_link() -> bool:
    """Whether uprobe.multi programs (and USDT ones) get the uprobe_multi link here."""
    from .. import features

    return not features.link_disabled("uprobe_multi") and features.has_uprobe_multi()


def load_attach_type(section_def: SectionDef) -> int:
    """expected_attach_type for a uprobe.multi/uretprobe.multi program: the multi
    link's where it will be used, else 0 (a plain uprobe program, attached per
    function)."""
    if section_def.expected_attach_type != C.BPF_TRACE_UPROBE_MULTI:
        return section_def.expected_attach_type
    return C.BPF_TRACE_UPROBE_MULTI if use_multi_link() else 0


def parse_sec_target(target: str) -> tuple[str, str]:
    """Split SEC("uprobe.multi/PATH:PATTERN")'s target into (PATH, PATTERN): the path
    ends at the first ':' (libbpf's reading)."""
    path, sep, pattern = target.partition(":")
    if not (sep and path and pattern):
        raise AttachError(f"bad uprobe.multi target '{target}': expected PATH:PATTERN "
                          "(a function name or a glob with * and ?)")
    return path, pattern


def attach_uprobe_multi(prog: Program, path: str, pattern: str | None = None, *,
                        offsets: Sequence[int] | None = None, pid: int = -1,
                        retprobe: bool = False, cookies: Sequence[int] | None = None
                        ) -> Link:
    """Attach ``prog`` to every function of ``path`` matching ``pattern`` (or at the
    file ``offsets``), in every process (``pid`` -1) or one.

    One uprobe_multi link when the program was loaded for it, else one uprobe per
    function, children of the returned :class:`Link`.
    """
    from . import symbols

    if (pattern is None) == (offsets is None):
        raise AttachError("attach_uprobe_multi needs exactly one of pattern= or offsets=")
    if pid == 0:
        pid = os.getpid()
    real = symbols.resolve_path(path, pid)
    if pattern is not None:
        targets = symbols.function_offsets(real, pattern)
        if not targets:
            raise AttachError(f"no function of {real} matches '{pattern}' (in .symtab or "
                              ".dynsym)")
        offs = sorted(off for _name, off in targets)
    else:
        offs = list(offsets or ())
        if not offs:
            raise AttachError("attach_uprobe_multi: offsets= is empty")
    if cookies is not None and len(cookies) != len(offs):
        raise AttachError(f"attach_uprobe_multi: {len(cookies)} cookies for {len(offs)} "
                          "targets")
    kind = "uretprobe.multi" if retprobe else "uprobe.multi"
    what = (f"{real}:{pattern if pattern is not None else 'offsets'} "
            f"({len(offs)} functions)" + (f" pid {pid}" if pid > 0 else ""))
    if getattr(prog, "expected_attach_type", 0) == C.BPF_TRACE_UPROBE_MULTI:
        return _attach_link(prog, real, offs, pid, retprobe, cookies, kind, what)
    return _attach_each(prog, real, offs, pid, retprobe, cookies, kind, what)


def _attach_link(prog: Program, path: str, offs: list[int], pid: int, retprobe: bool,
                 cookies: Sequence[int] | None, kind: str, what: str) -> Link:
    from ..sys.bpf import link_create

    try:
        lfd = link_create(program_fd(prog), 0, C.BPF_TRACE_UPROBE_MULTI, uprobe_path=path,
                          uprobe_offsets=offs, uprobe_cookies=cookies,
                          uprobe_pid=max(pid, 0),
                          uprobe_flags=C.BPF_F_UPROBE_MULTI_RETURN if retprobe else 0)
    except OSError as e:
        op = f"attaching {program_name(prog)} to {kind} {what}"
        if e.errno == errno.ESRCH:
            raise AttachError(f"{op}: process {pid} is gone").with_cause(e.errno, op) from None
        if e.errno in (errno.EOPNOTSUPP, errno.ENOENT) and not os.path.exists(path):
            raise AttachError(f"{op}: {path} is gone").with_cause(e.errno, op) from None
        if e.errno == errno.EOPNOTSUPP:
            raise FeatureMissing("uprobe_multi links", f"{op}: the kernel refused the link "
                                 "type; set COREFRAME_DISABLE_LINKS=uprobe_multi to attach "
                                 "one uprobe per function").with_cause(e.errno, op) from None
        raise attach_error(e, op) from None
    return Link(kind, what, lfd)


def _attach_each(prog: Program, path: str, offs: list[int], pid: int, retprobe: bool,
                 cookies: Sequence[int] | None, kind: str, what: str) -> Link:
    from .probe import attach_uprobe

    children: list[Link] = []
    try:
        for i, off in enumerate(offs):
            children.append(attach_uprobe(prog, path, None, off, pid=pid, retprobe=retprobe,
                                          cookie=cookies[i] if cookies else 0))
    except BaseException:
        for c in children:
            c.close()
        raise
    return Link(f"{kind} (uprobes)", what, None, children=children)
