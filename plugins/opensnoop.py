"""opensnoop: trace open(), openat() and openat2() with their results.

Options and text columns follow libbpf-tools' opensnoop (``-p -t -u -x -n -e
-U -T``) plus ``-f``: the full path of a relative path, from the directories the
kernel resolved it against (the cwd or the dfd's directory, read in BPF when
the call returns). PID, TID, UID and failed-only filters run in the kernel;
``-n`` filters names here, as libbpf-tools does.
"""

from __future__ import annotations

import os
import struct

from coreframe.metrics import Counter
from coreframe.options import IntRange, Option
from coreframe.output import Col, Field
from coreframe.tool import Readiness, RunContext, Tool, choose_attach

from ._common import comm, errno_name, metered, open_object, trace

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from coreframe.metrics import MetricSet

# struct event / struct full_event, bpf/opensnoop.h
_EVENT = struct.Struct("<QIIIiIIII16s256s")
DNAME_LEN = 256
MAX_DEPTH = 24
RINGBUF = 4 << 20
FULL_PATH_RINGBUF = 16 << 20
EV_F_DIRS_TRUNCATED = 1
EV_F_DIRS_UNKNOWN = 2
SYSCALLS = ("open", "openat", "openat2")

OPENS = Counter("coreframe_opensnoop_opens", "open(), openat() and openat2() calls, by program",
                ("comm",))
ERRORS = Counter("coreframe_opensnoop_errors", "Failed opens, by program and errno",
                 ("comm", "errno"))

# The syscall-entry and -exit tracepoints of each open flavour; raw_syscalls would run
# a program on every system call of the machine to find the few opens.
ATTACH = (("tracepoint", ("tracepoint:syscalls/sys_enter_openat",
                          "tracepoint:syscalls/sys_exit_openat"),
           "per-syscall syscalls/sys_{enter,exit}_open* events: only opens run the programs"),)


def _mode_text(flags: int, mode: int) -> str:
    # as libbpf-tools: a mode only means something when the call may create a file
    if mode == 0 and not flags & os.O_CREAT and (flags & os.O_TMPFILE) != os.O_TMPFILE:
        return "n/a "
    return f"{mode:04o}"


class OpenSnoop(Tool):
    """One line per open()/openat()/openat2(): who, the fd or errno, and the path."""

    name = "opensnoop"
    summary = "Trace open(), openat() and openat2() calls"
    object_file = "opensnoop.bpf.o"
    requires = ("bpf", "btf", "ringbuf", "tracepoint:syscalls/sys_exit_openat")
    columns = (Col("UID", "uid", -7, key=None, when="print_uid"), Col("PID", "pid", -6),
               Field("tid"), Field("uid"), Col("COMM", "comm", -16), Col("FD", "fd", 3),
               Col("ERR", "err", 3),
               Col("FLAGS", "flags", -8, "{:08o}".format, key=None, when="extended"),
               # libbpf-tools pads MODE to 5 in the header and prints "n/a  " or "%04o "
               Col("MODE ", "mode_text", 0, key=None, when="extended"),
               Field("flags"), Field("mode"), Col("PATH", "path"))
    time_field = "ts"
    time_columns = True     # -T; -t is the TID filter, as in libbpf-tools
    metrics = (OPENS, ERRORS)

    @classmethod
    def params(cls) -> list[Option]:
        return [
            Option("-p", "--pid", type=IntRange(min=1), help="Only this process (PID)."),
            Option("-t", "--tid", type=IntRange(min=1), help="Only this thread (TID)."),
            Option("-u", "--uid", type=IntRange(0, 2**32 - 2), help="Only this user (UID)."),
            Option("-x", "--failed", is_flag=True, help="Only failed opens."),
            Option("-n", "--name", help="Only process names containing NAME."),
            Option("-e", "--extended-fields", "extended", is_flag=True,
                   help="Print the open flags and mode."),
            Option("-f", "--full-path", is_flag=True,
                   help="Print relative paths in full (from the cwd or the dfd's directory)."),
            Option("-U", "--print-uid", is_flag=True, help="Print a UID column."),
        ]

    @classmethod
    def readiness(cls) -> Readiness:
        base = super().readiness()
        if not base.ready:
            return base
        pick = choose_attach(ATTACH)
        there = [s for s in SYSCALLS if _has_tp(f"sys_enter_{s}")]
        return Readiness(pick.method is not None,
                         f"{pick.detail}; tracing {', '.join(there)}")

    def run(self, ctx: RunContext) -> int:
        o = self.options
        spec, _ = open_object(self, targ_tgid=o["pid"] or 0, targ_tid=o["tid"] or 0,
                              targ_uid=2**32 - 1 if o["uid"] is None else o["uid"],
                              targ_failed=bool(o["failed"]), full_path=bool(o["full_path"]))
        # Room for bursts: the reader decodes several times slower than open() runs
        # (13k records; -f records grow from 312 bytes to 6.4 KiB, 2.6k of them).
        spec.maps.events.max_entries = FULL_PATH_RINGBUF if o["full_path"] else RINGBUF
        for s in SYSCALLS:
            # open() is gone on arm64 and riscv; openat2() came in 5.6
            if not _has_tp(f"sys_enter_{s}"):
                spec.programs[f"enter_{s}"].autoload = False
                spec.programs[f"exit_{s}"].autoload = False
        name = o["name"]
        full = bool(o["full_path"])
        emit = metered(ctx, _count)
        unpack = _EVENT.unpack_from
        size = _EVENT.size

        def handle(rec: memoryview) -> None:
            (ts, pid, tid, uid, ret, flags, mode, depth, ev_flags, raw_comm,
             raw_path) = unpack(rec)
            c = comm(raw_comm)
            if name and name not in c:
                return
            path = raw_path.partition(b"\0")[0].decode("utf-8", "replace")
            if full and not path.startswith("/"):
                path = _full_path(rec, size, depth, ev_flags, path)
            emit({"ts": ts, "pid": pid, "tid": tid, "uid": uid, "comm": c,
                  "fd": ret if ret >= 0 else -1, "err": 0 if ret >= 0 else -ret,
                  "flags": flags, "mode": mode, "mode_text": _mode_text(flags, mode),
                  "path": path})

        return trace(ctx, spec, "Tracing open()s... Ctrl-C to end.", handle=handle)


def _count(ms: MetricSet, r: dict[str, Any]) -> None:
    ms.inc(OPENS.name, (r["comm"],))
    if r["err"]:
        ms.inc(ERRORS.name, (r["comm"], errno_name(r["err"])))


def _full_path(rec: memoryview, base: int, depth: int, ev_flags: int, path: str) -> str:
    dirs = []
    for i in range(min(depth, MAX_DEPTH)):
        at = base + i * DNAME_LEN
        name = bytes(rec[at:at + DNAME_LEN]).partition(b"\0")[0]
        if name:  # an empty slot: where the walk crossed from a mount to its mountpoint
            dirs.append(name.decode("utf-8", "replace"))
    if ev_flags & EV_F_DIRS_UNKNOWN:
        return path
    prefix = "/".join(reversed(dirs))
    if ev_flags & EV_F_DIRS_TRUNCATED:
        prefix = ".../" + prefix
    else:
        prefix = "/" + prefix
    if path in (".", ""):
        return prefix if dirs else "/"
    return (prefix.rstrip("/") + "/" + path) if dirs else "/" + path


def _has_tp(event: str) -> bool:
    from coreframe.tool import check_requirement

    return check_requirement(f"tracepoint:syscalls/{event}")[0]
