"""tcplife: one line per TCP session when it closes: who, both ends, bytes, lifetime.

Options and columns follow libbpf-tools' tcplife (``-p -4 -6 -L -D -w -T``);
``--json`` gives the same per session (bytes and nanoseconds unrounded). The
kernel side is sock:inet_sock_set_state, attached as tp_btf, raw_tp or a
tracepoint, for IPv4 and IPv6.
"""

from __future__ import annotations

import struct

from coreframe.metrics import Counter, Histogram
from coreframe.options import Exclusive, IntRange, Option
from coreframe.output import Col, Field
from coreframe.tool import RunContext, Tool

from ._common import attach_option, comm, metered, open_object, trace
from ._net import AF_INET, AF_INET6, IDENT, PortList, addr, port_array

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from coreframe.metrics import MetricSet

_EVENT = struct.Struct("<QQQQII" + IDENT + "16s")     # struct event, bpf/tcplife.bpf.c
ATTACH = (
    ("tp_btf", ("tp_btf:inet_sock_set_state",), "the socket as a typed argument"),
    ("raw_tp", ("raw_tp:inet_sock_set_state",), "the socket pointer, read with CO-RE"),
    ("tracepoint", ("tracepoint:sock/inet_sock_set_state",),
     "the perf-event tracepoint (kernels without raw tracepoint programs)"),
)
SESSIONS = Counter("coreframe_tcplife_sessions", "TCP sessions closed, by program and family",
                   ("comm", "family"))
TX_BYTES = Counter("coreframe_tcplife_tx_bytes", "Bytes sent over the closed sessions",
                   ("comm",))
RX_BYTES = Counter("coreframe_tcplife_rx_bytes", "Bytes received over the closed sessions",
                   ("comm",))
DURATION = Histogram("coreframe_tcplife_duration_seconds",
                     "Lifetime of the closed sessions (log2 buckets)", scale=1e-9)
PROGRAMS = {"tp_btf": "state_btf", "raw_tp": "state_raw", "tracepoint": "state_tp"}


def _columns(width: int) -> tuple[Col, ...]:
    return (Col("PID", "pid", -7), Col("COMM", "comm", -16), Field("family"),
            Col("LADDR", "laddr", -width), Col("LPORT", "lport", -5),
            Col("RADDR", "raddr", -width), Col("RPORT", "rport", -5),
            Col("TX_KB", "tx_kb", -6, ".2f", key=None), Col("RX_KB", "rx_kb", -6, ".2f",
                                                             key=None),
            Col("MS", "ms", 0, ".2f", key=None), Field("tx_bytes"), Field("rx_bytes"),
            Field("span_ns"))


def _count(ms: MetricSet, r: dict[str, Any]) -> None:
    ms.inc(SESSIONS.name, (r["comm"], r["family"]))
    ms.inc(TX_BYTES.name, (r["comm"],), r["tx_bytes"])
    ms.inc(RX_BYTES.name, (r["comm"],), r["rx_bytes"])
    ms.observe(DURATION.name, (), r["span_ns"])


class TcpLife(Tool):
    """Trace TCP sessions and summarize each when it closes."""

    name = "tcplife"
    summary = "TCP sessions when they close: ends, bytes and lifetime (IPv4 and IPv6)"
    object_file = "tcplife.bpf.o"
    requires = ("bpf", "btf", "ringbuf")
    attach_choices = ATTACH
    conflicts = (Exclusive("ipv4", "ipv6", fix="leave both out for both families"),)
    columns = _columns(15)
    time_field = "ts"
    metrics = (SESSIONS, TX_BYTES, RX_BYTES, DURATION)

    @classmethod
    def params(cls) -> list[Option]:
        return [
            Option("-p", "--pid", type=IntRange(min=1), help="Only this process (PID)."),
            Option("-4", "--ipv4", is_flag=True, help="Only IPv4."),
            Option("-6", "--ipv6", is_flag=True, help="Only IPv6."),
            Option("-w", "--wide", is_flag=True, help="Wide columns (fit IPv6 addresses)."),
            Option("-T", "--time", is_flag=True, help="Include a time column (HH:MM:SS)."),
            Option("-L", "--localport", type=PortList(), help="Only these local ports."),
            Option("-D", "--remoteport", type=PortList(), help="Only these remote ports."),
            attach_option(PROGRAMS),
        ]

    def run(self, ctx: RunContext) -> int:
        o = self.options
        spec, method = open_object(
            self, PROGRAMS, targ_tgid=o["pid"] or 0,
            targ_family=AF_INET if o["ipv4"] else AF_INET6 if o["ipv6"] else 0,
            filter_sport=bool(o["localport"]), filter_dport=bool(o["remoteport"]),
            targ_sports=port_array(o["localport"]), targ_dports=port_array(o["remoteport"]))
        if o["wide"]:
            ctx.output._columns = _columns(39)
        emit = metered(ctx, _count)
        unpack = _EVENT.unpack_from

        def handle(rec: memoryview) -> None:
            (ts, span, rx, tx, pid, _pad, family, sport, dport, _p, saddr, daddr,
             raw_comm) = unpack(rec)
            emit({"ts": ts, "pid": pid, "comm": comm(raw_comm),
                  "family": "ipv4" if family == AF_INET else "ipv6",
                  "laddr": addr(family, saddr), "lport": sport,
                  "raddr": addr(family, daddr), "rport": dport, "tx_kb": tx / 1024,
                  "rx_kb": rx / 1024, "ms": span // 1000 / 1000, "tx_bytes": tx,
                  "rx_bytes": rx, "span_ns": span})

        return trace(ctx, spec, f"Tracing TCP sessions ({method})... Ctrl-C to end.",
                     handle=handle)
