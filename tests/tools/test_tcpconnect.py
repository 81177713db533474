"""tcpconnect on connect()s over loopback (IPv4 and IPv6) in a network namespace the test
creates and deletes: the helper reports each connection's ports, the tool must show
exactly those. libbpf-tools' tcpconnect is no oracle on this kernel: it attaches
kprobes (tcp_v4_connect), which this host does not have: the guests compare with it
(tests/kernel/test_kern_oracle_tools.py)."""

from __future__ import annotations

import json

import pytest
from oracle import CONNECTOR, helper, netns
from tool_proc import ToolProcess


@pytest.mark.parametrize("attach", ["auto", "raw_tp", "tracepoint"])
def test_connects_seen_json(need_root: None, attach: str) -> None:
    with netns("cf-tcpconnect") as ns, helper(CONNECTOR, ns=ns) as h, \
            ToolProcess(["tcpconnect", "-p", str(h.pid), "--json", "--attach", attach]) as t:
        truth = json.loads(h.step())
        assert t.wait_stdout(lambda ls: len(ls) >= len(truth), timeout=30)
        assert t.stop() == 0
        got = t.json_records()
    assert [[e["ip"], e["sport"], e["dport"], e["established"]] for e in got] == truth
    assert {(e["saddr"], e["daddr"]) for e in got} == {("127.0.0.1", "127.0.0.1"),
                                                       ("::1", "::1")}
    assert all(e["pid"] == h.pid and e["comm"] == "python" for e in got)


def test_text_columns_and_count(need_root: None) -> None:
    with netns("cf-tcpconnect") as ns, helper(CONNECTOR, ns=ns) as h, \
            ToolProcess(["tcpconnect", "-p", str(h.pid), "-s", "-U"]) as t:
        truth = json.loads(h.step())
        assert t.wait_stdout(lambda ls: len(ls) >= len(truth) + 1, timeout=30)
        assert t.stop() == 0
    assert t.stdout[0].split() == ["UID", "PID", "COMM", "IP", "SADDR", "DADDR", "SPORT",
                                   "DPORT"]
    rows = [line.split() for line in t.stdout[1:]]
    assert [[int(r[3]), int(r[6]), int(r[7])] for r in rows] == [x[:3] for x in truth]
    with netns("cf-tcpconnect") as ns, helper(CONNECTOR, ns=ns) as h, \
            ToolProcess(["tcpconnect", "-p", str(h.pid), "-c"]) as t:
        truth = json.loads(h.step())
        assert t.stop() == 0
    counts = [line.split() for line in t.stdout if line.strip()][1:]
    # per (source, destination, port): the listener twice, the closed port once
    assert sorted(int(c[3]) for c in counts) == [1, 1, 2, 2]
