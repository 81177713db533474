"""execsnoop: trace exec() calls and process lifetimes.

Options and text columns follow libbpf-tools' execsnoop; ``-e`` adds exit
events (lifetime since exec and exit code) and ``--json`` prints one object
per line. Filters on uid, failed execs, argument count and cgroup run in the
kernel (``const volatile`` variables), so filtered events never leave it.
"""

from __future__ import annotations

import json
import os
import struct
import time
from typing import Any

import click

from coreframe.errors import ToolError
from coreframe.output import json_line
from coreframe.tool import Readiness, RunContext, Tool, check_requirement

# Layout of bpf/execsnoop.h (both events share the first 64 bytes' shape).
EVENT_EXEC = 1
EVENT_EXIT = 2
HEADER_LEN = 64
EXEC_F_ARGS_TRUNCATED = 1
EXIT_F_CORE_DUMPED = 1
DEFAULT_MAX_ARGS = 20
TOTAL_MAX_ARGS = 60
_EXEC = struct.Struct("<IIIIIiQIIII16s")
_EXIT = struct.Struct("<IIIIIiQIIQ16s")


def _comm(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("utf-8", "replace")


def _quote(arg: str) -> str:
    return '"' + arg.replace('"', '\\"') + '"'


def _shrink_to_placeholder(map_spec: Any) -> None:
    """Turn an unused ring buffer map into the smallest array the kernel accepts."""
    from coreframe.sys.consts import BPF_MAP_TYPE_ARRAY

    map_spec.type = BPF_MAP_TYPE_ARRAY
    map_spec.key_size = 4
    map_spec.value_size = 4
    map_spec.max_entries = 1
    map_spec.key_type_id = 0
    map_spec.value_type_id = 0


class ExecSnoop(Tool):
    """Trace exec() system calls (execve, execveat) and, with -e, process exits."""

    name = "execsnoop"
    summary = "Trace exec() calls and process lifetimes"
    object_file = "execsnoop.bpf.o"
    requires = ("bpf", "btf", "tracepoint:syscalls/sys_enter_execve",
                "tracepoint:sched/sched_process_exit")

    @classmethod
    def params(cls) -> list[click.Parameter]:
        return [
            click.Option(["-T", "--time"], is_flag=True, help="Include a time column (HH:MM:SS)."),
            click.Option(["-t", "--timestamp"], is_flag=True,
                         help="Include seconds since tracing started."),
            click.Option(["-x", "--fails"], is_flag=True, help="Include failed exec()s."),
            click.Option(["-u", "--uid"], type=click.IntRange(min=0, max=2**32 - 2), default=None,
                         help="Trace this UID only (filtered in the kernel)."),
            click.Option(["-q", "--quote"], is_flag=True,
                         help='Quote arguments with "", escaping quotes inside them.'),
            click.Option(["-n", "--name"], default=None,
                         help="Only print commands whose name contains NAME."),
            click.Option(["-l", "--line"], default=None,
                         help="Only print commands where an argument contains LINE."),
            click.Option(["-U", "--print-uid"], is_flag=True, help="Print a UID column."),
            click.Option(["-c", "--cgroup"], type=click.Path(exists=True, file_okay=False),
                         default=None, help="Trace processes in this cgroup (v2 path) only."),
            click.Option(["--max-args"], type=click.IntRange(1, TOTAL_MAX_ARGS),
                         default=DEFAULT_MAX_ARGS, show_default=True,
                         help="Maximum number of arguments parsed and displayed."),
            click.Option(["-e", "--exits"], is_flag=True,
                         help="Also print exits: lifetime since exec and exit code."),
            click.Option(["--json", "as_json"], is_flag=True, help="One JSON object per line."),
            click.Option(["--buffer"], type=click.Choice(["auto", "ringbuf", "perf"]),
                         default="auto", show_default=True,
                         help="Event transport (auto: ring buffer when the kernel has one)."),
        ]

    @classmethod
    def readiness(cls) -> Readiness:
        base = super().readiness()
        if not base.ready:
            return base
        ok, _ = check_requirement("ringbuf")
        return Readiness(True, "ring buffer" if ok else "perf buffer")

    def run(self, ctx: RunContext) -> int:
        import coreframe
        from coreframe import features

        o = self.options
        spec = coreframe.open(self.object_path())
        spec.rodata.ignore_failed = not o["fails"]
        spec.rodata.max_args = o["max_args"]
        if o["uid"] is not None:
            spec.rodata.targ_uid = o["uid"]
        cgroup_fd = None
        if o["cgroup"]:
            # bpf_current_task_under_cgroup() only understands the unified (v2) hierarchy.
            if not os.path.exists(os.path.join(o["cgroup"], "cgroup.controllers")):
                raise ToolError(f"--cgroup {o['cgroup']}: not a cgroup v2 directory "
                                "(no cgroup.controllers; give a path under the cgroup2 mount)")
            cgroup_fd = os.open(o["cgroup"], os.O_RDONLY | os.O_DIRECTORY)
            spec.rodata.filter_cg = True
        use_perf = o["buffer"] == "perf" or (o["buffer"] == "auto" and not features.has_ringbuf())
        if use_perf:
            # Same object, other transport: the program's ringbuf branch is dead once
            # use_perfbuf is frozen, so the ring map only needs to be creatable.
            spec.rodata.use_perfbuf = True
            _shrink_to_placeholder(spec.maps.events)
        self._out = ctx.out
        self._name = o["name"]
        self._line = o["line"]
        self._json = o["as_json"]
        self._exits = o["exits"]
        self._quote = o["quote"]
        self._plain_prefix = not (o["time"] or o["timestamp"] or o["print_uid"])
        self._start_wall = time.time()
        self._mono_to_wall = self._start_wall - time.monotonic()
        self._start_mono_ns = time.monotonic_ns()
        self._lost = 0
        try:
            with spec.load() as obj:
                if cgroup_fd is not None:
                    obj.maps.cgroup_map.update(0, cgroup_fd)
                obj.attach()
                reader = self._open_reader(obj, use_perf)
                with reader:
                    self._print_header(ctx)
                    what = "exec() and exit" if o["exits"] else "exec()"
                    ctx.status(f"Tracing {what} calls... Ctrl-C to end.")
                    # output is flushed once per batch of records, not per line:
                    # a write() per event would cost more than decoding it
                    out = ctx.out
                    while not ctx.should_stop():
                        if reader.poll(ctx.poll_timeout()):
                            out.flush()
                    reader.consume()
                    out.flush()
                    self._report_drops(ctx, obj, reader)
        finally:
            if cgroup_fd is not None:
                os.close(cgroup_fd)
        return 0

    def _open_reader(self, obj: Any, use_perf: bool) -> Any:
        if use_perf:
            from coreframe.perf import PerfBuffer

            return PerfBuffer(obj.maps.events_perf, self._on_record, lost_callback=self._on_lost)
        from coreframe.ringbuf import RingBuffer

        return RingBuffer(obj.maps.events, self._on_record)

    def _on_lost(self, cpu: int, count: int) -> None:
        self._lost += count

    def _report_drops(self, ctx: RunContext, obj: Any, reader: Any) -> None:
        drops = [0, 0]
        for i in range(2):
            per_cpu = obj.maps.drops.lookup(i) or []
            drops[i] = sum(int.from_bytes(bytes(v)[:8], "little") for v in per_cpu)
        lost = self._lost + sum(drops)
        if lost:
            ctx.status(f"Lost {lost} events (exec: {drops[0]}, exit: {drops[1]}, "
                       f"perf buffer: {self._lost}).")
            if self.options["as_json"]:
                json_line({"event": "lost", "count": lost, "exec": drops[0], "exit": drops[1],
                           "perf": self._lost}, ctx.out)

    # -- output -------------------------------------------------------------------------

    def _print_header(self, ctx: RunContext) -> None:
        o = self.options
        if o["as_json"]:
            return
        cols = []
        if o["time"]:
            cols.append(f"{'TIME':<8} ")
        if o["timestamp"]:
            cols.append(f"{'TIME(s)':<8} ")
        if o["print_uid"]:
            cols.append(f"{'UID':<6} ")
        cols.append(f"{'PCOMM':<16} {'PID':<6} {'PPID':<6} {'RET':>3} ARGS")
        print("".join(cols), file=ctx.out, flush=True)

    def _on_record(self, rec: memoryview) -> None:
        """Decode one event: exec events (the hot path) take a single unpack."""
        fields = _EXEC.unpack_from(rec)
        kind = fields[0]
        if kind == EVENT_EXEC:
            self._on_exec(rec, fields)
        elif kind == EVENT_EXIT and self._exits:
            self._on_exit(rec)

    def _on_exec(self, rec: memoryview, fields: tuple[Any, ...]) -> None:
        (_, pid, _tgid, ppid, uid, retval, ts, args_count, flags, fname_len, args_size,
         comm_raw) = fields
        comm = comm_raw.partition(b"\0")[0].decode("utf-8", "replace")
        name = self._name
        if name and name not in comm:
            return
        tail = bytes(rec[HEADER_LEN:HEADER_LEN + fname_len + args_size])
        filename = tail[:fname_len].partition(b"\0")[0].decode("utf-8", "replace")
        # one decode and one split for all arguments (a NUL never sits inside a
        # UTF-8 sequence, so this equals decoding each argument on its own)
        args = tail[fname_len:].decode("utf-8", "replace").split("\0", args_count)[:args_count]
        line = self._line
        if line and not any(line in a for a in args):
            return
        truncated = bool(flags & EXEC_F_ARGS_TRUNCATED)
        if self._json:
            self._out.write(json.dumps(
                {"event": "exec", "time": ts / 1e9 + self._mono_to_wall, "pid": pid,
                 "ppid": ppid, "uid": uid, "comm": comm, "filename": filename,
                 "args": args, "args_truncated": truncated, "retval": retval},
                separators=(",", ":"), ensure_ascii=False) + "\n")
            return
        shown = " ".join(_quote(a) for a in args) if self._quote else " ".join(args)
        if truncated:
            shown += " ..."
        prefix = "" if self._plain_prefix else self._prefix(ts, uid)
        self._out.write(f"{prefix}{comm:<16} {pid:<6} {ppid:<6} {retval:>3} {shown}\n")

    def _on_exit(self, rec: memoryview) -> None:
        (_, pid, _tgid, ppid, uid, exit_code, duration_ns, sig, flags, ts,
         comm_raw) = _EXIT.unpack_from(rec)
        comm = _comm(comm_raw)
        name = self._name
        if name and name not in comm:
            return
        if self._json:
            self._out.write(json.dumps(
                {"event": "exit", "time": ts / 1e9 + self._mono_to_wall, "pid": pid,
                 "ppid": ppid, "uid": uid, "comm": comm, "duration_ns": duration_ns,
                 "exit_code": exit_code, "signal": sig,
                 "core_dumped": bool(flags & EXIT_F_CORE_DUMPED)},
                separators=(",", ":"), ensure_ascii=False) + "\n")
            return
        how = f"signal {sig}" if sig else f"code {exit_code}"
        self._out.write(f"{self._prefix(ts, uid)}{comm:<16} {pid:<6} {ppid:<6} {'EXIT':>3} "
                        f"{how}, lifetime {duration_ns / 1e6:.3f} ms\n")

    def _prefix(self, ts: int, uid: int) -> str:
        o = self.options
        parts = []
        if o["time"]:
            parts.append(time.strftime("%H:%M:%S", time.localtime(ts / 1e9 + self._mono_to_wall))
                         + " ")
        if o["timestamp"]:
            parts.append(f"{(ts - self._start_mono_ns) / 1e9:<8.3f} ")
        if o["print_uid"]:
            parts.append(f"{uid:<6} ")
        return "".join(parts)
