"""tcpconnect: active TCP connections (connect()), IPv4 and IPv6.

Options and columns follow libbpf-tools' tcpconnect (``-p -u -U -P -s -c -t``);
``--json`` adds whether the connection was established and the SYN's round
trip. libbpf-tools' tcpconnect needs kprobes (tcp_v4_connect); this one runs on
sock:inet_sock_set_state (tp_btf, raw_tp or tracepoint), and prints each
attempt once it left SYN_SENT, when its source port is known.
"""

from __future__ import annotations

import struct

from coreframe.metrics import Counter
from coreframe.options import IntRange, Option
from coreframe.output import Col, Field
from coreframe.tool import RunContext, Tool

from ._common import attach_option, comm, metered, open_object, trace
from ._net import AF_INET, IDENT, PortList, addr, port_array

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from coreframe.metrics import MetricSet

_EVENT = struct.Struct("<QQIIII" + IDENT + "16s")     # struct event, bpf/tcpconnect.bpf.c
_KEY = struct.Struct("<" + IDENT)                      # struct conn_key
ATTACH = (
    ("tp_btf", ("tp_btf:inet_sock_set_state",), "the socket as a typed argument"),
    ("raw_tp", ("raw_tp:inet_sock_set_state",), "the socket pointer, read with CO-RE"),
    ("tracepoint", ("tracepoint:sock/inet_sock_set_state",),
     "the perf-event tracepoint (kernels without raw tracepoint programs)"),
)
CONNECTS = Counter("coreframe_tcpconnect_connects",
                   "TCP connect()s by program, destination port and result (established, "
                   "failed: the attempt closed before ESTABLISHED)", ("comm", "dport", "result"))
# with -c the kernel counts connects per address and port; the metric follows its map
COUNTED = CONNECTS.with_labels(("dport",))
PROGRAMS = {"tp_btf": "state_btf", "raw_tp": "state_raw", "tracepoint": "state_tp"}


def _count(ms: MetricSet, r: dict[str, Any]) -> None:
    ms.inc(CONNECTS.name, (r["comm"], str(r["dport"]),
                           "established" if r["established"] else "failed"))


def _collect_counts(ms: MetricSet, obj: Any) -> None:
    """-c: the connects the kernel counted so far, summed per destination port."""
    per_port: dict[int, int] = {}
    for key, value in _counts(obj):
        dport = _KEY.unpack_from(key)[2]
        per_port[dport] = per_port.get(dport, 0) + value
    for dport, n in per_port.items():
        ms.set(COUNTED.name, (str(dport),), n)


def _counts(obj: Any) -> list[tuple[bytes, int]]:
    counts = getattr(obj.maps.counts, "raw", obj.maps.counts)
    return [(bytes(k), int.from_bytes(bytes(v), "little")) for k, v in counts.items()]


class TcpConnect(Tool):
    """Trace TCP connect()s: who connected where, from which port."""

    name = "tcpconnect"
    summary = "Active TCP connections (connect()), IPv4 and IPv6"
    object_file = "tcpconnect.bpf.o"
    requires = ("bpf", "btf", "ringbuf")
    attach_choices = ATTACH
    # libbpf-tools glues UID to PID ("%-6d"): a 5-wide column plus the separator
    columns = (Col("UID", "uid", -5, key=None, when="print_uid"), Col("PID", "pid", -6),
               Field("uid"), Col("COMM", "comm", -16), Col("IP", "ip", -2),
               Col("SADDR", "saddr", -16), Col("DADDR", "daddr", -16),
               Col("SPORT", "sport", -5, when="source_port"), Field("sport"),
               Col("DPORT", "dport", -5), Field("established"), Field("rtt_ns"))
    time_field = "ts"
    time_columns = True
    metrics = (CONNECTS,)

    def metric_families(self) -> tuple[Counter, ...]:
        return (COUNTED,) if self.options.get("count") else (CONNECTS,)

    @classmethod
    def params(cls) -> list[Option]:
        return [
            Option("-p", "--pid", type=IntRange(min=1), help="Only this process (PID)."),
            Option("-u", "--uid", type=IntRange(0, 2**32 - 2), help="Only this user (UID)."),
            Option("-U", "--print-uid", is_flag=True, help="Print a UID column."),
            Option("-P", "--port", type=PortList(), help="Only these destination ports."),
            Option("-s", "--source-port", is_flag=True,
                   help="Print the source port (and count per source port with -c)."),
            Option("-c", "--count", is_flag=True,
                   help="Count connects per source and destination address and port; "
                        "print the counts at the end."),
            attach_option(PROGRAMS),
        ]

    def run(self, ctx: RunContext) -> int:
        o = self.options
        spec, method = open_object(self, PROGRAMS, targ_tgid=o["pid"] or 0,
                                   targ_uid=2**32 - 1 if o["uid"] is None else o["uid"],
                                   filter_dport=bool(o["port"]),
                                   targ_dports=port_array(o["port"]),
                                   do_count=bool(o["count"]),
                                   count_sport=bool(o["source_port"]))
        emit = metered(ctx, _count)
        unpack = _EVENT.unpack_from

        def handle(rec: memoryview) -> None:
            (ts, rtt, pid, uid, established, _pad, family, sport, dport, _p, saddr, daddr,
             raw_comm) = unpack(rec)
            emit({"ts": ts, "pid": pid, "uid": uid, "comm": comm(raw_comm),
                  "ip": 4 if family == AF_INET else 6, "saddr": addr(family, saddr),
                  "daddr": addr(family, daddr), "sport": sport, "dport": dport,
                  "established": bool(established), "rtt_ns": rtt})

        def count(obj: object) -> None:
            if ctx.metrics is not None:
                with ctx.metrics.collecting(lambda ms: _collect_counts(ms, obj)):
                    while not ctx.should_stop():
                        ctx.sleep(3600)
            else:
                while not ctx.should_stop():
                    ctx.sleep(3600)
            self._print_counts(ctx, obj)

        return trace(ctx, spec, f"Tracing connect()s ({method})... Ctrl-C to end.",
                     handle=handle, read=count if o["count"] else None,
                     lost="connects (buffer or map full)")

    def _print_counts(self, ctx: RunContext, obj: object) -> None:
        with_sport = bool(self.options["source_port"])
        cols = [Col("LADDR", "laddr", -25), Col("RADDR", "raddr", -25)]
        if with_sport:
            cols.append(Col("LPORT", "lport", -20))
        cols += [Col("RPORT", "rport", -20), Col("CONNECTS", "connects", -10)]
        table = ctx.table(cols)
        if not table.as_json:
            ctx.out.write("\n" + table.header())
        rows = []
        for key, value in _counts(obj):
            family, sport, dport, _p, saddr, daddr = _KEY.unpack_from(key)
            rows.append({"laddr": addr(family, saddr), "raddr": addr(family, daddr),
                         "lport": sport, "rport": dport, "connects": value})
        rows.sort(key=lambda r: (":" in r["laddr"], r["laddr"], r["raddr"], r["rport"]))
        for row in rows:
            ctx.out.write(table.format(row))
        ctx.out.flush()
