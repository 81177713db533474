"""biosnoop and tcpconnect against libbpf-tools' (the Debian package) on the same workload.

libbpf-tools' builds of these two need kprobes or trampolines: biosnoop names the
submitter with fentry on ``blk_account_io_start`` (kprobe on
``blk_account_io_merge_bio``), tcpconnect puts a kprobe and a kretprobe on
``tcp_v4_connect``/``tcp_v6_connect``. The host has neither, so these comparisons run
in the QEMU guests (``make test-kernels``), which run this machine's root filesystem,
hence the same libbpf-tools. On the host they skip with that reason; in a guest an
oracle that cannot run fails the test, except where the kernel itself lacks the
function libbpf-tools hooks (checked in the kernel's BTF, and the skip names it).

Both tools trace at once, as console scripts (``coreframe run``), while a helper
process does the work one step at a time (tests/tools/oracle.py): O_DIRECT writes and
reads of known sizes to a loop device on a scratch file in the guest's /tmp, and TCP
connect()s over loopback in a test network namespace. Each comparison is recorded
(``tool_oracle``) for kernels/report.py's per-kernel summary.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from kernkit import IN_GUEST, ROOT

sys.path.insert(0, str(ROOT / "tests" / "tools"))

from oracle import CONNECTOR, DIRECT_IO, helper, loop_device, netns, oracle  # noqa: E402
from tool_proc import ToolProcess  # noqa: E402

from coreframe import features  # noqa: E402

pytestmark = pytest.mark.kernel

WRITES, WSIZE, READS, RSIZE = 8, 4096, 4, 65536
WAIT = 120.0        # a cap for the emulated guests; never asserted as a timing


def _need_oracle(tool: str, why: str) -> None:
    """Skip on a kernel without kprobes (the host); in a guest, kprobes must be there."""
    if features.has_kprobe():
        return
    if IN_GUEST:
        pytest.fail(f"no kprobes on guest kernel: libbpf-tools' {tool} cannot run ({why})")
    pytest.skip(f"libbpf-tools' {tool} needs {why}; this kernel has no kprobes "
                "(run in the guests: make test-kernels)")


def _kernel_function(*names: str) -> str | None:
    """The first of ``names`` that is a function in the kernel's BTF (fentry can hook it)."""
    from coreframe.btf.kernel import find_function

    for name in names:
        try:
            find_function(name)
        except Exception:  # noqa: BLE001 - not found (any reason): try the next name
            continue
        return name
    return None


def _rows(lines: list[str], header: str) -> list[dict[str, str]]:
    """libbpf-tools' text output as dicts keyed by its header's column names (the
    values hold no spaces here: the helper's comm is "python")."""
    for i, line in enumerate(lines):
        if line.startswith(header):
            names = line.split()
            rows = [row.split() for row in lines[i + 1:]]
            # lengths checked first (Python 3.9's zip has no strict=)
            return [dict(zip(names, cells)) for cells in rows  # noqa: B905
                    if len(cells) == len(names)]
    raise AssertionError(f"no {header!r} header in {lines[:5]}")


def _until(pred: Callable[[], bool]) -> None:
    import time

    end = time.monotonic() + WAIT
    while not pred() and time.monotonic() < end:
        time.sleep(0.1)


def test_biosnoop_vs_libbpf_tools(tmp_path: Path,
                                  record_property: Callable[[str, object], None]) -> None:
    _need_oracle("biosnoop", "fentry on blk_account_io_start and a kprobe on "
                             "blk_account_io_merge_bio")
    hooked = _kernel_function("blk_account_io_start", "__blk_account_io_start")
    if hooked is None:
        # Debian 6.1: the function is inlined into its callers (no BTF FUNC, no symbol),
        # and the block_io_start tracepoint that replaced it (6.5) is newer than the
        # libbpf-tools release Debian ships. A kernel reason, named, never a silent skip.
        pytest.skip("libbpf-tools' biosnoop cannot run here: neither blk_account_io_start "
                    "nor __blk_account_io_start is a kernel function (inlined), and this "
                    "libbpf-tools does not use the block_io_start tracepoint")
    subprocess.run(["modprobe", "loop"], capture_output=True, check=False)
    with loop_device(tmp_path, size_mib=16) as dev:
        disk = Path(dev).name
        with helper(DIRECT_IO, dev, str(WRITES), str(WSIZE), str(READS), str(RSIZE)) as h, \
                ToolProcess(["biosnoop", "-d", disk, "--json"]) as mine, \
                oracle("biosnoop", "-d", disk, header="TIME") as theirs:
            assert h.step() == "done"
            pid = str(h.pid)

            def both_saw() -> bool:
                return (sum(e["pid"] == h.pid for e in mine.json_records()) >= WRITES + READS
                        and sum(r.get("PID") == pid for r in _rows(theirs.stdout, "TIME"))
                        >= WRITES + READS)

            _until(both_saw)
            assert mine.stop() == 0
            theirs.stop()
    ours = [(str(e["pid"]), e["disk"], e["rwbs"], str(e["sector"]), str(e["bytes"]))
            for e in mine.json_records() if e["pid"] == h.pid]
    libbpf = [(r["PID"], r["DISK"], r["T"], r["SECTOR"], r["BYTES"])
              for r in _rows(theirs.stdout, "TIME") if r.get("PID") == pid]
    # what the helper did: 4 KiB writes from sector 0, 64 KiB reads from 1 MiB, one
    # request each (one at a time, O_DIRECT, so nothing merges)
    want = [(pid, disk, str(i * WSIZE // 512), str(WSIZE)) for i in range(WRITES)] + \
        [(pid, disk, str((1 << 20) // 512 + i * RSIZE // 512), str(RSIZE))
         for i in range(READS)]
    assert [(p, d, s, b) for p, d, _, s, b in libbpf] == want, theirs.stdout
    assert ours == libbpf, (ours, libbpf)
    record_property("tool_oracle", f"biosnoop {len(ours)} requests equal "
                                   f"(fentry {hooked})")


def test_tcpconnect_vs_libbpf_tools(record_property: Callable[[str, object], None]) -> None:
    _need_oracle("tcpconnect", "kprobes on tcp_v4_connect and tcp_v6_connect")
    with netns("cf-kern-tcpconnect") as ns, helper(CONNECTOR, ns=ns) as h, \
            ToolProcess(["tcpconnect", "-p", str(h.pid), "--json"]) as mine, \
            oracle("tcpconnect", "-p", str(h.pid), "-s", header="PID") as theirs:
        truth = json.loads(h.step())
        _until(lambda: len(mine.stdout) >= len(truth) and
               len(_rows(theirs.stdout, "PID")) >= len(truth))
        assert mine.stop() == 0
        theirs.stop()
    rows = _rows(theirs.stdout, "PID")
    # libbpf-tools reports a connect() when tcp_v{4,6}_connect returned 0 (the SYN is
    # out), so the refused attempts are there too, as in ours; -s adds SPORT
    libbpf = [(int(r["IP"]), int(r["SPORT"]), int(r["DPORT"]), r["SADDR"], r["DADDR"],
               int(r["PID"])) for r in rows]
    ours = [(e["ip"], e["sport"], e["dport"], e["saddr"], e["daddr"], e["pid"])
            for e in mine.json_records()]
    addr = {4: "127.0.0.1", 6: "::1"}
    want = [(ip, sport, dport, addr[ip], addr[ip], h.pid) for ip, sport, dport, _ in truth]
    assert libbpf == want, theirs.stdout
    assert ours == libbpf, (ours, libbpf)
    assert [e["established"] for e in mine.json_records()] == [x[3] for x in truth]
    record_property("tool_oracle", f"tcpconnect {len(ours)} connects equal "
                                   f"({sum(x[3] for x in truth)} established, "
                                   f"{sum(not x[3] for x in truth)} refused)")
