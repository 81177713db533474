"""tcplife: one line per TCP session when it closes: who, both ends, bytes, lifetime.

Options and columns follow libbpf-tools' tcplife (``-p -4 -6 -L -D -w -T``);
``--json`` gives the same per session (bytes and nanoseconds unrounded). The
kernel side is sock:inet_sock_set_state, attached as tp_btf, raw_tp or a
tracepoint, for IPv4 and IPv6.
"""

from __future__ import annotations

import struct

from coreframe.options import Choice, IntRange, Option
from coreframe.output import Col, Field
from coreframe.tool import Readiness, RunContext, Tool, choose_attach

from ._common import comm, load_only, pick, stream
from ._net import AF_INET, AF_INET6, IDENT, PortList, addr, port_array

_EVENT = struct.Struct("<QQQQII" + IDENT + "16s")     # struct event, bpf/tcplife.bpf.c
ATTACH = (
    ("tp_btf", ("tp_btf:inet_sock_set_state",), "the socket as a typed argument"),
    ("raw_tp", ("raw_tp:inet_sock_set_state",), "the socket pointer, read with CO-RE"),
    ("tracepoint", ("tracepoint:sock/inet_sock_set_state",),
     "the perf-event tracepoint (kernels without raw tracepoint programs)"),
)
PROGRAMS = {"tp_btf": "state_btf", "raw_tp": "state_raw", "tracepoint": "state_tp"}


def _columns(width: int) -> tuple[Col, ...]:
    return (Col("PID", "pid", -7), Col("COMM", "comm", -16), Field("family"),
            Col("LADDR", "laddr", -width), Col("LPORT", "lport", -5),
            Col("RADDR", "raddr", -width), Col("RPORT", "rport", -5),
            Col("TX_KB", "tx_kb", -6, ".2f", key=None), Col("RX_KB", "rx_kb", -6, ".2f",
                                                             key=None),
            Col("MS", "ms", 0, ".2f", key=None), Field("tx_bytes"), Field("rx_bytes"),
            Field("span_ns"))


class TcpLife(Tool):
    """Trace TCP sessions and summarize each when it closes."""

    name = "tcplife"
    summary = "TCP sessions when they close: ends, bytes and lifetime (IPv4 and IPv6)"
    object_file = "tcplife.bpf.o"
    requires = ("bpf", "btf", "ringbuf")
    columns = _columns(15)
    time_field = "ts"

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
            Option("--attach", type=Choice(["auto", *PROGRAMS]), default="auto",
                   show_default=True,
                   help="Attach method (auto: the first this kernel offers, see info)."),
        ]

    @classmethod
    def readiness(cls) -> Readiness:
        base = super().readiness()
        if not base.ready:
            return base
        choice = choose_attach(ATTACH)
        return Readiness(choice.method is not None, choice.detail)

    def run(self, ctx: RunContext) -> int:
        import coreframe
        from coreframe.errors import ToolError

        o = self.options
        if o["ipv4"] and o["ipv6"]:
            raise ToolError("-4 and -6 cannot be used together: leave both out for both")
        method = pick(self.name, ATTACH, o["attach"])
        spec = coreframe.open(self.object_path())
        spec.rodata.targ_tgid = o["pid"] or 0
        spec.rodata.targ_family = AF_INET if o["ipv4"] else AF_INET6 if o["ipv6"] else 0
        spec.rodata.filter_sport = bool(o["localport"])
        spec.rodata.filter_dport = bool(o["remoteport"])
        spec.rodata.targ_sports = port_array(o["localport"])
        spec.rodata.targ_dports = port_array(o["remoteport"])
        load_only(spec, method, PROGRAMS)
        if o["wide"]:
            ctx.output._columns = _columns(39)
        emit = ctx.emit
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

        with spec.load() as obj:
            obj.attach()
            ctx.status(f"Tracing TCP sessions ({method})... Ctrl-C to end.")
            stream(ctx, obj.maps.events, handle)
            dropped = int(obj.bss.dropped)
            ctx.lost(dropped, message=f"Lost {dropped} events (ring buffer full).")
        return 0
