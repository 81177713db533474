"""Addresses and port lists for the TCP tools (tcplife, tcpconnect)."""

from __future__ import annotations

import _socket as socket  # the C module: socket.py imports enum, a cost on every start

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

AF_INET, AF_INET6 = socket.AF_INET, socket.AF_INET6
# struct tcp_ident, bpf/tcpstate.h
IDENT = "HHHH16s16s"
MAX_PORTS = 8


def addr(family: int, raw: bytes) -> str:
    if family == AF_INET:
        return socket.inet_ntop(AF_INET, raw[:4])
    return socket.inet_ntop(AF_INET6, raw)


class PortList:
    """``-L 80,443``: up to MAX_PORTS TCP ports separated by commas."""

    def convert(self, text: str) -> tuple[int, ...]:
        ports = tuple(int(p) for p in text.split(","))
        if not ports or len(ports) > MAX_PORTS or not all(1 <= p <= 65535 for p in ports):
            raise ValueError(text)
        return ports

    def to_click(self, click: Any) -> Any:
        outer = self

        class PortsType(click.ParamType):
            name = "PORTS"

            def convert(self, value: Any, param: Any, ctx: Any) -> tuple[int, ...]:
                if isinstance(value, tuple):
                    return value
                try:
                    return outer.convert(value)
                except ValueError:
                    self.fail(f"{value!r} is not a list of 1 to {MAX_PORTS} ports 1-65535 "
                              "separated by commas (e.g. 80,443)", param, ctx)

        return PortsType()


def port_array(ports: tuple[int, ...] | None) -> list[int]:
    """The value of a ``const volatile __u16 x[MAX_PORTS]`` list (a zero ends it)."""
    ports = ports or ()
    return list(ports) + [0] * (MAX_PORTS - len(ports))
