"""execsnoop: trace exec() calls and process lifetimes.

Options and text columns follow libbpf-tools' execsnoop; ``-e`` adds exit
events (lifetime since exec and exit code) and ``--json`` prints one object
per line. Filters on uid, failed execs, argument count and cgroup run in the
kernel (``const volatile`` variables), so filtered events never leave it.
Without ``-e`` the exit program is not even loaded, so process exits cost
nothing. An isolated exec() is printed at once; under a burst the reader
wakes every LINGER_S (20 ms) and prints what came meanwhile.

Start-up time is measured against the C tool, so this module imports only
what every run needs: the loader, readers and JSON encoder come in when used.
"""

from __future__ import annotations

import os
import struct
import time

from coreframe.errors import ToolError
from coreframe.metrics import Counter, Histogram
from coreframe.options import Choice, Directory, IntRange, Option
from coreframe.output import TIME, Col, Field, JSONText, Table, json_string_encoder
from coreframe.tool import Readiness, RunContext, Tool, check_requirement

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    Handler = Callable[[memoryview], None]

# Layout of bpf/execsnoop.h (both events share the first 64 bytes' shape).
EVENT_EXEC = 1
EVENT_EXIT = 2
HEADER_LEN = 64
EXEC_F_ARGS_TRUNCATED = 1
EXIT_F_CORE_DUMPED = 1
DEFAULT_MAX_ARGS = 20
TOTAL_MAX_ARGS = 60
FILENAME_LEN = 512
ARGSIZE = 128
_EXEC = struct.Struct("<IIIIIiQIIII16s")
_EXIT = struct.Struct("<IIIIIiQIIQ16s")

# The columns, libbpf-tools' execsnoop's in text ([-T/-t] [UID] PCOMM PID PPID RET
# ARGS), and the JSON keys of each event kind (docs/output.md). The handlers pass
# values positionally, in each table's text_cols / json_cols order.
_TEXT_HEAD = (Col("UID", "uid", -6, key=None, when="print_uid"),
              Col("PCOMM", "comm", -16, key=None),
              Col("PID", "pid", -6, kind=int), Col("PPID", "ppid", -6, kind=int),
              Field("uid", kind=int), Field("comm", kind=str))
EXEC_COLUMNS = (Field("event", kind=JSONText), TIME, *_TEXT_HEAD,
                Field("filename", kind=JSONText), Field("args", kind=JSONText),
                Field("args_truncated", kind=bool),
                Col("RET", "retval", 3, kind=int), Col("ARGS", "args_text", key=None))
EXIT_COLUMNS = (Field("event", kind=JSONText), TIME, *_TEXT_HEAD,
                Field("duration_ns", kind=int), Field("exit_code", kind=int),
                Field("signal", kind=int), Field("core_dumped", kind=bool),
                Col("RET", "ret", 3, key=None), Col("ARGS", "detail", key=None))

# Metrics (docs/metrics.md), counted from the events as they are read. A run that
# exports metrics has the kernel report failed exec()s and exits even without -x/-e
# (so the counts are complete); only the printing follows -x/-e.
EXECS = Counter("coreframe_execsnoop_execs", "Successful exec() calls, by new program name",
                ("comm",))
EXEC_FAILURES = Counter("coreframe_execsnoop_exec_failures",
                        "exec() calls that failed, by caller and errno", ("comm", "errno"))
EXITS = Counter("coreframe_execsnoop_exits",
                "Exits of processes whose exec() was seen, by program name", ("comm",))
EXIT_CODES = Counter("coreframe_execsnoop_exit_codes",
                     "Exit status of those processes (exit(code), or a signal's name)",
                     ("code",))
LIFETIME = Histogram("coreframe_execsnoop_lifetime_seconds",
                     "Process lifetime from exec() to exit (log2 slots of nanoseconds)",
                     numbering="bcc", slots=64, scale=1e-9)
LOST_EVENTS = Counter("coreframe_execsnoop_lost_events",
                      "Events the kernel could not send (buffer or table full)", ("event",))

# After a batch that came hot on the heels of the previous one, wait this long
# before reading again: under an exec() storm the reader then wakes about once
# per LINGER_S instead of once per event (the wake-up, not the decoding, is
# most of the CPU an event costs), while an isolated exec() is still printed
# at once. Skipped after a batch that could have filled a quarter of a buffer,
# so a burst never fills one while we wait.
LINGER_S = 0.02
POLL_CAP_S = 0.1
RINGBUF_BYTES = 1 << 20   # the object's 256 KiB, times four: room for a linger's worth
PERF_PAGE_CNT = 64        # per CPU, PerfBuffer's default

# Bytes json.dumps escapes (controls, quote, backslash) mapped to NUL, the others kept:
# text without them is its own JSON string body.
_JSON_SPECIAL_TO_NUL = bytes.maketrans(bytes(range(1, 32)) + b'"\\', bytes(33))


def _quote(arg: str) -> str:
    return '"' + arg.replace('"', '\\"') + '"'


class ExecSnoop(Tool):
    """Trace exec() system calls (execve, execveat) and, with -e, process exits."""

    _callback: Handler
    columns = EXEC_COLUMNS
    time_field = "ts"
    metrics = (EXECS, EXEC_FAILURES, EXITS, EXIT_CODES, LIFETIME, LOST_EVENTS)
    name = "execsnoop"
    summary = "Trace exec() calls and process lifetimes"
    object_file = "execsnoop.bpf.o"
    requires = ("bpf", "btf", "tracepoint:syscalls/sys_enter_execve")

    @classmethod
    def params(cls) -> list[Option]:
        return [
            Option("-T", "--time", is_flag=True, help="Include a time column (HH:MM:SS)."),
            Option("-t", "--timestamp", is_flag=True,
                   help="Include seconds since tracing started."),
            Option("-x", "--fails", is_flag=True, help="Include failed exec()s."),
            Option("-u", "--uid", type=IntRange(min=0, max=2**32 - 2), default=None,
                   help="Trace this UID only (filtered in the kernel)."),
            Option("-q", "--quote", is_flag=True,
                   help='Quote arguments with "", escaping quotes inside them.'),
            Option("-n", "--name", default=None,
                   help="Only print commands whose name contains NAME."),
            Option("-l", "--line", default=None,
                   help="Only print commands where an argument contains LINE."),
            Option("-U", "--print-uid", is_flag=True, help="Print a UID column."),
            Option("-c", "--cgroup", type=Directory(), default=None,
                   help="Trace processes in this cgroup (v2 path) only."),
            Option("--max-args", type=IntRange(1, TOTAL_MAX_ARGS), default=DEFAULT_MAX_ARGS,
                   show_default=True, help="Maximum number of arguments parsed and displayed."),
            Option("-e", "--exits", is_flag=True,
                   help="Also print exits: lifetime since exec and exit code."),
            Option("--json", "as_json", is_flag=True, help="One JSON object per line."),
            Option("--buffer", type=Choice(["auto", "ringbuf", "perf"]), default="auto",
                   show_default=True,
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
        import mmap

        import coreframe
        from coreframe import features

        o = self.options
        metered = ctx.metrics is not None
        exits = bool(o["exits"]) or metered
        if exits:
            ok, why = check_requirement("tracepoint:sched/sched_process_exit")
            if not ok:
                if o["exits"]:
                    raise ToolError(f"--exits {why}")
                exits = False
        spec = coreframe.open(self.object_path())
        spec.rodata.ignore_failed = not (o["fails"] or metered)
        spec.rodata.max_args = o["max_args"]
        spec.rodata.trace_exits = exits
        if not exits:
            # no exit program, no start times: the table is only there to be referenced
            spec.programs.handle_exit.autoload = False
            spec.maps.start.max_entries = 1
        if o["uid"] is not None:
            spec.rodata.targ_uid = o["uid"]
        if o["cgroup"]:
            # bpf_current_task_under_cgroup() only understands the unified (v2) hierarchy.
            if not os.path.exists(os.path.join(o["cgroup"], "cgroup.controllers")):
                raise ToolError(f"--cgroup {o['cgroup']}: not a cgroup v2 directory "
                                "(no cgroup.controllers; give a path under the cgroup2 mount)")
            spec.rodata.filter_cg = True
        use_perf = o["buffer"] == "perf" or (o["buffer"] == "auto" and not features.has_ringbuf())
        if use_perf:
            # Same object, other transport: the program's ringbuf branch is dead once
            # use_perfbuf is frozen, so the ring map only needs to be creatable.
            spec.rodata.use_perfbuf = True
            spec.maps.events.shrink_to_placeholder()
            capacity = PERF_PAGE_CNT * mmap.PAGESIZE  # one CPU's: all events may land there
        else:
            spec.maps.events.max_entries = capacity = RINGBUF_BYTES
        # largest record: header, filename and max_args arguments, plus the buffer's own header
        max_record = HEADER_LEN + FILENAME_LEN + o["max_args"] * ARGSIZE + 8
        linger_max_batch = max(1, capacity // (4 * max_record))
        self._lost = 0
        out = ctx.out
        self._callback = self._handler(out.write, time.time() - time.monotonic(),
                                       time.monotonic_ns())
        if ctx.metrics is not None:
            self._callback = self._metered(ctx.metrics, self._callback)
        cgroup_fd = (os.open(o["cgroup"], os.O_RDONLY | os.O_DIRECTORY) if o["cgroup"]
                     else None)
        try:
            with spec.load() as obj:
                if cgroup_fd is not None:
                    obj.maps.cgroup_map.update(0, cgroup_fd)
                # The reader first: a perf buffer's per-CPU events must be in the map
                # before the programs run, or their first events would be dropped.
                with self._open_reader(obj, use_perf) as reader:
                    obj.attach()
                    self._print_header(ctx)
                    what = "exec() and exit" if o["exits"] else "exec()"
                    ctx.status(f"Tracing {what} calls... Ctrl-C to end.")
                    if ctx.metrics is None:
                        _read_loop(ctx, reader.poll, linger_max_batch)
                    else:
                        with ctx.metrics.collecting(lambda ms: self._collect(ms, obj)):
                            _read_loop(ctx, reader.poll, linger_max_batch)
                    reader.consume()
                    out.flush()
                    self._report_drops(ctx, obj)
        finally:
            if cgroup_fd is not None:
                os.close(cgroup_fd)
        return 0

    def _open_reader(self, obj: Any, use_perf: bool) -> Any:
        if use_perf:
            from coreframe.perf import PerfBuffer

            return PerfBuffer(obj.maps.events_perf, self._on_record,
                              lost_callback=self._on_lost, page_cnt=PERF_PAGE_CNT)
        from coreframe.ringbuf import RingBuffer

        return RingBuffer(obj.maps.events, self._on_record)

    def _on_record(self, rec: memoryview) -> None:
        """The reader's callback: hands the record to the one :meth:`_handler` built."""
        self._callback(rec)

    def _on_lost(self, cpu: int, count: int) -> None:
        self._lost += count

    @staticmethod
    def _drops(obj: Any) -> list[int]:
        drops = [0, 0]
        for i in range(2):
            drops[i] = obj.maps.drops.percpu_sum(i)
        return drops

    def _collect(self, ms: Any, obj: Any) -> None:
        """At each scrape/export: the kernel's drop counters (and the perf buffer's)."""
        drops = self._drops(obj)
        ms.set("coreframe_execsnoop_lost_events", ("exec",), drops[0])
        ms.set("coreframe_execsnoop_lost_events", ("exit",), drops[1])
        ms.set("coreframe_execsnoop_lost_events", ("perf",), self._lost)

    def _metered(self, ms: Any, show: Handler) -> Handler:
        """Count every record into the metrics, then print it if the options say so."""
        import errno
        import signal

        o = self.options
        fails = bool(o["fails"])
        exits = bool(o["exits"])
        unpack_exec = _EXEC.unpack_from
        unpack_exit = _EXIT.unpack_from
        execs = ms.values["coreframe_execsnoop_execs"]
        inc = ms.inc
        observe = ms.observe
        errnames: dict[int, str] = {}
        codes: dict[tuple[int, int], str] = {}

        def code_of(exit_code: int, sig: int) -> str:
            name = codes.get((exit_code, sig))
            if name is None:
                if sig:
                    try:
                        name = signal.Signals(sig).name
                    except ValueError:
                        name = f"signal {sig}"
                else:
                    name = str(exit_code)
                codes[(exit_code, sig)] = name
            return name

        def on_record(rec: memoryview) -> None:
            kind = rec[0]
            if kind == EVENT_EXEC:
                (_, _pid, _tgid, _ppid, _uid, retval, _ts, _argc, _flags, _flen, _asz,
                 comm) = unpack_exec(rec)
                key = (comm.partition(b"\0")[0].decode("utf-8", "replace"),)
                if retval < 0:
                    err = errnames.get(retval)
                    if err is None:
                        err = errnames[retval] = errno.errorcode.get(-retval, str(-retval))
                    inc("coreframe_execsnoop_exec_failures", (key[0], err))
                    if not fails:
                        return
                elif key in execs:
                    execs[key] += 1
                else:
                    inc("coreframe_execsnoop_execs", key)
            elif kind == EVENT_EXIT:
                (_, _pid, _tgid, _ppid, _uid, exit_code, duration_ns, sig, _flags, _ts,
                 comm) = unpack_exit(rec)
                inc("coreframe_execsnoop_exits",
                    (comm.partition(b"\0")[0].decode("utf-8", "replace"),))
                inc("coreframe_execsnoop_exit_codes", (code_of(exit_code, sig),))
                observe("coreframe_execsnoop_lifetime_seconds", (), duration_ns)
                if not exits:
                    return
            show(rec)

        return on_record

    def _report_drops(self, ctx: RunContext, obj: Any) -> None:
        drops = self._drops(obj)
        lost = self._lost + sum(drops)
        ctx.lost(lost, detail={"exec": drops[0], "exit": drops[1], "perf": self._lost},
                 message=f"Lost {lost} events (exec: {drops[0]}, exit: {drops[1]}, "
                         f"perf buffer: {self._lost}).")

    # -- output -------------------------------------------------------------------------

    def _tables(self, mono_to_wall: float, start_mono_ns: int) -> tuple[Table, Table]:
        """The exec and exit events' tables (one text header, two JSON shapes)."""
        kw = {"time_field": "ts", "mono_to_wall": mono_to_wall, "start_ns": start_mono_ns}
        return (Table(EXEC_COLUMNS, None, self.options, **kw),
                Table(EXIT_COLUMNS, None, self.options, **kw))

    def _print_header(self, ctx: RunContext) -> None:
        # The exec table's header is also the exit events' (same text columns).
        Table(EXEC_COLUMNS, ctx.out, self.options).write_header()

    def _handler(self, write: Callable[[str], Any], mono_to_wall: float,
                 start_mono_ns: int) -> Handler:
        """The reader's callback: one record in, at most one line out.

        Built once per run with every option already decided and bound to a
        local, since it runs for every event; exec events take a single unpack
        and a single decode, and hand the output layer their column values
        positionally (Table.text_line / Table.json_line).
        """
        o = self.options
        name = o["name"]
        line = o["line"]
        quote = o["quote"]
        exits = bool(o["exits"])
        show_uid = bool(o["print_uid"])
        unpack = _EXEC.unpack_from
        header_len = HEADER_LEN
        truncated_bit = EXEC_F_ARGS_TRUNCATED
        event_exec = EVENT_EXEC
        exec_table, exit_table = self._tables(mono_to_wall, start_mono_ns)
        on_exit = self._exit_handler(write, exit_table)

        if o["as_json"]:
            enc = json_string_encoder()
            special = _JSON_SPECIAL_TO_NUL
            json_line = exec_table.json_line
            kind_exec = JSONText('"exec"')

            def emit(rec: memoryview, pid: int, ppid: int, uid: int, retval: int, ts: int,
                     argc: int, flags: int, flen: int, asz: int, comm: str) -> None:
                # the filename then each argument, each ending in a NUL
                tail = bytes(rec[header_len:header_len + flen + asz])
                if not line and tail.translate(special) == tail:
                    # Nothing to escape (the common case): JSON strings are the text
                    # in quotes, so one decode and one replace make the whole array,
                    # where encoding each string would walk every character twice.
                    rest = tail.decode("utf-8", "replace")
                    if flen:
                        filename, _, rest = rest.partition("\0")
                        filename = f'"{filename}"'
                    else:
                        filename = '""'
                    if argc:
                        args = rest[:-1].replace("\0", '","')
                        args = f'["{args}"]'
                    else:
                        args = "[]"
                else:
                    # one decode and one split for everything: a NUL never sits inside
                    # a UTF-8 sequence, so this equals decoding each string alone
                    parts = tail.decode("utf-8", "replace").split("\0")
                    if flen:
                        filename = parts[0]
                        arg_list = parts[1:argc + 1]
                    else:
                        filename = ""
                        arg_list = parts[:argc]
                    if line and not any(line in a for a in arg_list):
                        return
                    filename = enc(filename)
                    args = "[" + ",".join(map(enc, arg_list)) + "]"
                write(json_line((kind_exec, pid, ppid, uid, comm, filename, args,
                                 flags & truncated_bit, retval), ts))
        else:
            text_line = exec_table.text_line

            def emit(rec: memoryview, pid: int, ppid: int, uid: int, retval: int, ts: int,
                     argc: int, flags: int, flen: int, asz: int, comm: str) -> None:
                start = header_len + flen
                if line or quote:
                    args = str(rec[start:start + asz], "utf-8", "replace").split("\0", argc)[:argc]
                    if line and not any(line in a for a in args):
                        return
                    shown = " ".join(map(_quote, args)) if quote else " ".join(args)
                elif asz:
                    # every argument ends in a NUL: drop the last, the others become spaces
                    shown = str(rec[start:start + asz - 1], "utf-8", "replace").replace("\0", " ")
                else:
                    shown = ""
                if flags & truncated_bit:
                    shown += " ..."
                if show_uid:
                    write(text_line((uid, comm, pid, ppid, retval, shown), ts))
                else:
                    write(text_line((comm, pid, ppid, retval, shown), ts))

        def on_record(rec: memoryview) -> None:
            (kind, pid, _tgid, ppid, uid, retval, ts, argc, flags, flen, asz,
             comm) = unpack(rec)
            if kind != event_exec:
                if exits and kind == EVENT_EXIT:
                    on_exit(rec)
                return
            comm = comm.partition(b"\0")[0].decode("utf-8", "replace")
            if name and name not in comm:
                return
            emit(rec, pid, ppid, uid, retval, ts, argc, flags, flen, asz, comm)

        return on_record

    def _exit_handler(self, write: Callable[[str], Any], table: Table) -> Handler:
        """Exit events: at most one per exec()ed process, so plainer code will do."""
        o = self.options
        name = o["name"]
        unpack = _EXIT.unpack_from
        show_uid = bool(o["print_uid"])
        if o["as_json"]:
            json_line = table.json_line
            kind_exit = JSONText('"exit"')

            def line(pid: int, ppid: int, uid: int, exit_code: int, duration_ns: int, sig: int,
                     flags: int, ts: int, comm: str) -> str:
                return json_line((kind_exit, pid, ppid, uid, comm, duration_ns, exit_code, sig,
                                  flags & EXIT_F_CORE_DUMPED), ts)
        else:
            text_line = table.text_line

            def line(pid: int, ppid: int, uid: int, exit_code: int, duration_ns: int, sig: int,
                     flags: int, ts: int, comm: str) -> str:
                how = f"signal {sig}" if sig else f"code {exit_code}"
                how = f"{how}, lifetime {duration_ns / 1e6:.3f} ms"
                values = (comm, pid, ppid, "EXIT", how)
                return text_line((uid, *values) if show_uid else values, ts)

        def on_exit(rec: memoryview) -> None:
            (_, pid, _tgid, ppid, uid, exit_code, duration_ns, sig, flags, ts,
             comm) = unpack(rec)
            comm = comm.partition(b"\0")[0].decode("utf-8", "replace")
            if name and name not in comm:
                return
            write(line(pid, ppid, uid, exit_code, duration_ns, sig, flags, ts, comm))

        return on_exit


def _read_loop(ctx: RunContext, poll: Callable[[float], int], linger_max_batch: int) -> None:
    """Read until Ctrl-C or --duration, flushing the output once per batch.

    A write() per line would cost more than decoding the event; see LINGER_S
    for why a busy reader pauses between batches of fewer than
    ``linger_max_batch`` records.
    """
    stopped = ctx.stop_event.is_set
    deadline = ctx.deadline
    flush = ctx.out.flush
    monotonic = time.monotonic
    sleep = time.sleep
    last = -LINGER_S
    while not stopped():
        if deadline is None:
            timeout = POLL_CAP_S
        else:
            timeout = deadline - monotonic()
            if timeout <= 0:
                return
            if timeout > POLL_CAP_S:
                timeout = POLL_CAP_S
        n = poll(timeout)
        if not n:
            continue
        flush()
        now = monotonic()
        if now - last < LINGER_S and n < linger_max_batch:
            sleep(LINGER_S)
            now = monotonic()
        last = now
