"""Loading programs into the kernel and explaining verifier rejections.

Like libbpf we first load without a verifier log (producing one costs time), and
only after a failure load again with a log, so the error can name the failing
instruction, the verifier's reason and, through line_info, the C source line.
"""

from __future__ import annotations

import errno
import os

from .errors import Error, FeatureMissing, PermissionDenied, ProgramError, VerifierError
from .runtime.startup import Record
from .sys import bpf as _bpf
from .sys import cdata
from .sys.attr import BpfProgInfo
from .sys.consts import (
    BPF_PROG_TYPE_EXT,
    BPF_PROG_TYPE_KPROBE,
    BPF_PROG_TYPE_LSM,
    BPF_PROG_TYPE_PERF_EVENT,
    BPF_PROG_TYPE_RAW_TRACEPOINT,
    BPF_PROG_TYPE_RAW_TRACEPOINT_WRITABLE,
    BPF_PROG_TYPE_STRUCT_OPS,
    BPF_PROG_TYPE_TRACEPOINT,
    BPF_PROG_TYPE_TRACING,
    BPF_STATS_RUN_TIME,
)
from .sys.errors import ENOTSUPP, describe, has_capability, raise_for
from .sys.fd import FD, FDOwner

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any, NoReturn

    from .link.base import Link
    from .link.usdt import Manager
    from .object.parts import ProgramSpec
    from .object.sections import SectionDef

LOG_SIZE_START = 1 << 20
LOG_SIZE_MAX = 16 << 20

TRAMPOLINE_TYPES = frozenset({BPF_PROG_TYPE_TRACING, BPF_PROG_TYPE_LSM, BPF_PROG_TYPE_EXT})
TRACING_TYPES = frozenset({
    BPF_PROG_TYPE_KPROBE, BPF_PROG_TYPE_TRACEPOINT, BPF_PROG_TYPE_PERF_EVENT,
    BPF_PROG_TYPE_RAW_TRACEPOINT, BPF_PROG_TYPE_RAW_TRACEPOINT_WRITABLE,
    BPF_PROG_TYPE_TRACING, BPF_PROG_TYPE_LSM, BPF_PROG_TYPE_EXT, BPF_PROG_TYPE_STRUCT_OPS,
})

LineRecord = tuple[int, str, str, int, int]  # (insn_idx, file, line_text, line, col)


def prog_type_name(prog_type: int) -> str:
    from .sys import consts

    return consts.PROG_TYPE_NAMES.get(prog_type, f"program type {prog_type}")


class ProgramInfo(
        Record,
        fields=("id type name tag run_cnt run_time_ns recursion_misses verified_insns "
                "xlated_insns jited_size load_time btf_id map_ids")):
    """What the kernel reports about a loaded program (BPF_OBJ_GET_INFO_BY_FD)."""

    __slots__ = ()

    id: int
    type: int
    name: str
    tag: str
    run_cnt: int
    run_time_ns: int
    recursion_misses: int
    verified_insns: int
    xlated_insns: bytes
    jited_size: int
    load_time: int
    btf_id: int
    map_ids: list[int]

    @property
    def xlated_size(self) -> int:
        return len(self.xlated_insns)


def _program_info(fd: FD | int) -> ProgramInfo:
    first = _bpf.prog_info(fd)
    xlated = cdata.create_string_buffer(first.xlated_prog_len or 1)
    nmaps = first.nr_map_ids
    maps = (cdata.c_uint32 * max(nmaps, 1))()
    second = BpfProgInfo(
        xlated_prog_len=first.xlated_prog_len, xlated_prog_insns=cdata.addressof(xlated),
        nr_map_ids=nmaps, map_ids=cdata.addressof(maps),
    )
    _bpf.obj_get_info_by_fd(fd, second)
    return ProgramInfo(
        id=second.id, type=second.type, name=second.name.decode(errors="replace"),
        tag=bytes(second.tag).hex(), run_cnt=second.run_cnt, run_time_ns=second.run_time_ns,
        recursion_misses=second.recursion_misses, verified_insns=second.verified_insns,
        xlated_insns=xlated.raw[: min(first.xlated_prog_len, second.xlated_prog_len)],
        jited_size=second.jited_prog_len, load_time=second.load_time, btf_id=second.btf_id,
        map_ids=list(maps[: min(nmaps, second.nr_map_ids)]),
    )


class Program(FDOwner):
    """A loaded BPF program: owns its fd; ``.fd`` is the number, ``.handle`` the FD."""

    what = "program"
    error = ProgramError

    def __init__(self, fd: FD, name: str, prog_type: int, *, expected_attach_type: int = 0,
                 attach_btf_id: int = 0, verifier_log: str = "") -> None:
        self._fd = fd
        self.name = name
        self.type = prog_type
        self.expected_attach_type = expected_attach_type
        self.attach_btf_id = attach_btf_id
        self.verifier_log = verifier_log
        self.section: str = ""
        self.section_def: SectionDef | None = None  # set by the object loader, for attach
        self.spec: ProgramSpec | None = None
        self.usdt: Manager | None = None  # link.usdt.Manager of objects built with usdt.bpf.h

    @classmethod
    def from_fd(cls, fd: FD, name: str | None = None) -> Program:
        """Wrap an existing program fd (taking ownership)."""
        try:
            info = _bpf.prog_info(fd)
        except OSError as e:
            fd.close()
            raise ProgramError(f"fd is not a BPF program: {describe(e)}").with_cause(
                e.errno, "BPF_OBJ_GET_INFO_BY_FD") from e
        return cls(fd, name if name is not None else info.name.decode(errors="replace"),
                   info.type, attach_btf_id=info.attach_btf_id)

    @classmethod
    def from_pinned(cls, path: str | os.PathLike[str]) -> Program:
        fd = cls.get_fd(lambda: _bpf.obj_get(path), f"open pinned program {os.fspath(path)!r}",
                        f"no pinned program at {os.fspath(path)!r}")
        return cls.from_fd(fd)

    @classmethod
    def from_id(cls, prog_id: int) -> Program:
        fd = cls.get_fd(lambda: _bpf.prog_get_fd_by_id(prog_id), f"open program id {prog_id}",
                        f"no program with id {prog_id}", capability="CAP_SYS_ADMIN")
        return cls.from_fd(fd)

    def info(self) -> ProgramInfo:
        """Kernel view: id, tag, run count/time (with stats enabled), xlated code."""
        try:
            return _program_info(self._fd)
        except OSError as e:
            raise ProgramError(f"program {self.name!r}: cannot read info: {describe(e)}"
                               ).with_cause(e.errno, f"read info of program {self.name!r}") from e

    def test_run(self, data: bytes = b"", *, ctx: bytes | None = None, repeat: int = 1,
                 data_size_out: int | None = None, ctx_size_out: int = 0) -> _bpf.TestRunResult:
        """BPF_PROG_RUN on ``data``/``ctx`` (XDP, tc, socket filter, raw_tp, syscall, ...)."""
        out = len(data) + 256 if data_size_out is None and data else (data_size_out or 0)
        try:
            return _bpf.prog_test_run(self._fd, data_in=data, data_size_out=out, ctx_in=ctx,
                                      ctx_size_out=ctx_size_out, repeat=repeat)
        except OSError as e:
            raise_for(e, f"test run of program {self.name!r}",
                      feature=f"BPF_PROG_RUN for {prog_type_name(self.type)}", error=ProgramError)

    def pin(self, path: str | os.PathLike[str]) -> None:
        try:
            _bpf.obj_pin(self._fd, path)
        except OSError as e:
            raise_for(e, f"pin program {self.name!r} at {os.fspath(path)!r}", error=ProgramError)

    def attach(self, *args: Any, **kwargs: Any) -> Link:
        """Attach as the program's SEC() says (see ``coreframe.link.auto.attach_program``)."""
        from .link.auto import attach_program

        return attach_program(self, *args, **kwargs)

    def attach_usdt(self, path: str, provider: str, name: str, pid: int | None = None,
                    cookie: int = 0) -> Link:
        """Attach to USDT probe ``provider:name`` in ``path`` (executable or library;
        ``pid`` limits it to one process); ``bpf_usdt_cookie()`` returns ``cookie``."""
        from .link.usdt import attach_usdt

        return attach_usdt(self, path, provider, name, pid=-1 if pid is None else pid,
                           cookie=cookie)

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"fd={self._fd.fd}"
        return f"<Program {self.name!r} {prog_type_name(self.type)} {state}>"


# --- verifier log parsing ----------------------------------------------------------------

_NOISE = (
    "processed ", "verification time", "stack depth", "mark_precise", "-- END PROG LOAD LOG",
    "from ", "last_idx", "parent ", "regs=", "func#", "Validating ", "Func#",
)


def parse_verifier_log(log: str) -> tuple[str, int | None, str | None]:
    """(reason, failing insn index, source annotation) from a verifier log.

    The reason is the last line that is not statistics, register state or an
    instruction dump; the insn is the last instruction printed before it.
    """
    import re  # only a failed load gets here; re costs start-up time

    insn_line = re.compile(r"^(\d+): (?:\(|R\d|frame)")
    source_line = re.compile(r"^; (.*?)(?: @ (\S+):(\d+))?$")
    lines = [ln.rstrip() for ln in log.splitlines() if ln.strip()]
    reason_idx = None
    for i in range(len(lines) - 1, -1, -1):
        ln = lines[i]
        if ln.startswith(_NOISE) or ln.startswith("; ") or insn_line.match(ln):
            continue
        reason_idx = i
        break
    reason = lines[reason_idx] if reason_idx is not None else (lines[-1] if lines else "")
    insn: int | None = None
    source: str | None = None
    stop = reason_idx if reason_idx is not None else len(lines)
    for ln in lines[:stop]:
        m = insn_line.match(ln)
        if m and ln[m.end(1) + 2:].startswith("("):
            insn = int(m.group(1))
        elif ln.startswith("; "):
            sm = source_line.match(ln)
            if sm and sm.group(2):
                source = f"{sm.group(2)}:{sm.group(3)}: {_clip(sm.group(1).strip())}"
    if len(reason) > 200:
        reason = reason[:197] + "..."
    return reason, insn, source


def source_line_for(insn: int | None, records: Sequence[LineRecord] | None) -> str | None:
    """'file:line: text' of the nearest line_info record at or before ``insn``."""
    if insn is None or not records:
        return None
    best: LineRecord | None = None
    for rec in records:
        if rec[0] <= insn and (best is None or rec[0] >= best[0]):
            best = rec
    if best is None:
        return None
    _, path, text, line, _col = best
    return f"{os.path.basename(path) if path else '?'}:{line}: {_clip(text.strip())}"


def _clip(text: str, width: int = 80) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


# --- loading -----------------------------------------------------------------------------------


def load_program(
    name: str,
    prog_type: int,
    insns: bytes | bytearray | memoryview,
    license: str = "GPL",
    *,
    expected_attach_type: int = 0,
    attach_btf_id: int = 0,
    attach_btf_obj_fd: FD | int = 0,
    attach_prog_fd: FD | int = 0,
    prog_btf_fd: FD | int | None = None,
    func_info: bytes = b"",
    func_info_rec_size: int = 0,
    line_info: bytes = b"",
    line_info_rec_size: int = 0,
    line_info_records: Sequence[LineRecord] | None = None,
    kern_version: int = 0,
    prog_flags: int = 0,
    log_level: int = 0,
    fd_array: Sequence[int] | None = None,
    prog_ifindex: int = 0,
) -> Program:
    """BPF_PROG_LOAD with libbpf's log strategy; raises VerifierError on rejection.

    With ``log_level`` > 0 the first load already carries a log, kept on success as
    ``program.verifier_log``.
    """
    if len(insns) % 8 or not insns:
        raise ProgramError(f"program {name!r}: instructions must be a non-empty multiple of "
                           "8 bytes")
    common: dict[str, Any] = dict(
        name=name, kern_version=kern_version, expected_attach_type=expected_attach_type,
        attach_btf_id=attach_btf_id, attach_btf_obj_fd=attach_btf_obj_fd,
        attach_prog_fd=attach_prog_fd, prog_btf_fd=prog_btf_fd or 0,
        func_info=func_info if prog_btf_fd else b"", func_info_rec_size=func_info_rec_size,
        line_info=line_info if prog_btf_fd else b"", line_info_rec_size=line_info_rec_size,
        prog_flags=prog_flags, fd_array=fd_array, prog_ifindex=prog_ifindex,
    )

    def make(fd: FD, log: str = "") -> Program:
        return Program(fd, name, prog_type, expected_attach_type=expected_attach_type,
                       attach_btf_id=attach_btf_id, verifier_log=log)

    if not log_level:
        try:
            return make(_bpf.prog_load(prog_type, insns, license, **common))
        except OSError:
            pass  # fall through: load again, this time with a verifier log
    result, log = _load_logged(prog_type, insns, license, max(log_level, 1), common)
    if isinstance(result, FD):  # requested log, or a transient first failure
        return make(result, log if log_level else "")
    _explain(name, prog_type, result, log, line_info_records)


def _load_logged(prog_type: int, insns: Any, license: str, log_level: int,
                 common: dict[str, Any]) -> tuple[FD | OSError, str]:
    """Load with a verifier log, growing the buffer on ENOSPC: (FD or error, log text)."""
    size = LOG_SIZE_START
    while True:
        buf = cdata.create_string_buffer(size)
        try:
            fd = _bpf.prog_load(prog_type, insns, license, log_level=log_level, log_buf=buf,
                                **common)
            return fd, buf.value.decode(errors="replace")
        except OSError as e:
            if e.errno == errno.ENOSPC and size < LOG_SIZE_MAX:
                size *= 4
                continue
            return e, getattr(e, "log", "")


def _explain(name: str, prog_type: int, err: OSError, log: str,
             records: Sequence[LineRecord] | None) -> NoReturn:
    """Raise the error that says why the program did not load."""
    code = err.errno
    op = f"load program {name!r} ({prog_type_name(prog_type)})"
    if code in (errno.EPERM, errno.EACCES) and not log.strip():
        needed = "CAP_BPF and CAP_PERFMON" if prog_type in TRACING_TYPES else "CAP_BPF"
        if not has_capability("CAP_BPF") or (prog_type in TRACING_TYPES
                                             and not has_capability("CAP_PERFMON")):
            raise PermissionDenied(op, needed) from err
        if prog_type in TRAMPOLINE_TYPES:
            from .features import hook_hint

            raise FeatureMissing(
                "BPF trampolines (fentry/fexit/fmod_ret/lsm/freplace)",
                f"the kernel refuses them even to root here; {hook_hint('fentry/fexit')}",
            ) from err
        raise PermissionDenied(op, needed) from err  # e.g. lockdown refusing even root
    if code in (errno.EINVAL, errno.EOPNOTSUPP, ENOTSUPP) and not log.strip():
        from .features import has_prog_type

        try:
            missing = not has_prog_type(prog_type)
        except Error:
            missing = False
        if missing:
            raise FeatureMissing(prog_type_name(prog_type), "the running kernel cannot load "
                                 "programs of this type") from err
        raise ProgramError(f"{op}: {describe(err)} (no verifier log)").with_cause(code, op) from err
    if not log.strip():
        raise ProgramError(f"{op}: {describe(err)}").with_cause(code, op) from err
    reason, insn, log_source = parse_verifier_log(log)
    source = source_line_for(insn, records) or log_source
    helper = missing_helper(reason)
    if helper is not None:
        where = (f" at insn {insn}" if insn is not None else "") + (f" ({source})" if source
                                                                   else "")
        from .sys.consts import short_name

        missing = FeatureMissing(
            f"helper {helper} in {short_name('BPF_PROG_TYPE_', prog_type)} programs",
            f"program {name!r} calls it{where}; this kernel's verifier does not offer it")
        missing.log = log  # type: ignore[attr-defined]
        raise missing.with_cause(code, op) from err
    raise VerifierError(name, reason, log, insn, source).with_cause(code, op) from err


def missing_helper(reason: str) -> str | None:
    """``"bpf_get_func_ip"`` when a verifier's reason says the program calls a helper
    the kernel does not know ("invalid func unknown#173": newer than this kernel) or
    does not offer to this program type ("unknown func bpf_X#N", "program of this type
    cannot use helper bpf_X#N"), else None."""
    from .sys.consts import kernel_name

    for marker in ("invalid func ", "unknown func ", "cannot use helper "):
        at = reason.find(marker)
        if at < 0:
            continue
        text, _, num = reason[at + len(marker):].split()[0].rpartition("#")
        if not num.isdigit():
            return None
        known = kernel_name("BPF_FUNC_", int(num))
        if known is not None:
            return "bpf_" + known[len("BPF_FUNC_"):]
        # an id no kernel we know has (e.g. the loader's CO-RE poison call) is the
        # program's own fault, not a missing feature: the verifier's reason stands
        return text if text.startswith("bpf_") else None
    return None


def enable_stats(stats_type: int = BPF_STATS_RUN_TIME) -> FD:
    """Collect run_cnt/run_time_ns for all programs while the returned fd is open
    (BPF_ENABLE_STATS); use it as ``with enable_stats():``."""
    try:
        return _bpf.enable_stats(stats_type)
    except OSError as e:
        raise_for(e, "enable BPF run-time stats", capability="CAP_SYS_ADMIN",
                  feature="BPF_ENABLE_STATS")
