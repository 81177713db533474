"""BTF-targeted programs (tp_btf, fentry, fexit, fmod_ret, lsm, iter): the target
was fixed at load time, attaching only creates the link."""

from __future__ import annotations

import errno

from ..errors import AttachError
from ..sys import consts as C
from .base import Link, attach_error, program_fd, program_name, section_def_of

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..programs import Program


_TRACING_TYPES = {
    C.BPF_TRACE_RAW_TP: "tp_btf", C.BPF_TRACE_FENTRY: "fentry", C.BPF_TRACE_FEXIT: "fexit",
    C.BPF_MODIFY_RETURN: "fmod_ret", C.BPF_LSM_MAC: "lsm", C.BPF_TRACE_ITER: "iter",
}


def _expected_attach_type(prog: Program) -> int | None:
    for obj in (prog, section_def_of(prog)):
        v = getattr(obj, "expected_attach_type", None)
        if isinstance(v, int):
            return v
    return None


def attach_tracing(prog: Program, *, cookie: int = 0, attach_type: int | None = None) -> Link:
    """Attach a BTF-targeted program (tp_btf, fentry, fexit, fmod_ret, lsm, iter).

    The target was fixed at load time (attach_btf_id); this only creates the link:
    BPF_LINK_CREATE with the program's attach type, or raw_tracepoint_open(NULL) on
    kernels without tracing links.
    """
    from ..sys.bpf import link_create, raw_tracepoint_open

    at = attach_type if attach_type is not None else _expected_attach_type(prog)
    if at is None:
        raise AttachError(f"program {program_name(prog)} has no expected attach type; "
                          "pass attach_type=")
    kind = _TRACING_TYPES.get(at, "tracing")
    sd = section_def_of(prog)
    target = getattr(sd, "attach_target", "") or program_name(prog)
    what = f"attaching {kind} program {program_name(prog)}"
    trampoline = kind in ("fentry", "fexit", "fmod_ret", "lsm")
    feature = "BPF trampolines" if trampoline else None
    try:
        lfd = link_create(program_fd(prog), 0, at, tracing_cookie=cookie)
    except OSError as e:
        if e.errno not in (errno.EINVAL, errno.EOPNOTSUPP) or cookie or at == C.BPF_TRACE_ITER:
            raise attach_error(e, what, feature=feature,
                               hint=_trampoline_hint(trampoline)) from None
        try:
            lfd = raw_tracepoint_open(None, program_fd(prog))
        except OSError as e2:
            raise attach_error(e2, what, feature=feature,
                               hint=_trampoline_hint(trampoline)) from None
    return Link(kind, target, lfd)


def _trampoline_hint(trampoline: bool) -> str:
    """For a refused fentry/fexit/LSM attach: the other hooks this kernel offers."""
    if not trampoline:
        return ""
    from ..features import hook_hint

    return f"this kernel refuses fentry/fexit/LSM (no BPF trampoline); {hook_hint('fentry/fexit')}"
