"""biosnoop and tcpconnect against libbpf-tools' (the Debian package) on the same workload.

libbpf-tools' builds of these two need kprobes or trampolines: tcpconnect puts a
kprobe and a kretprobe on ``tcp_v4_connect``/``tcp_v6_connect``, biosnoop names the
submitter with fentry on ``blk_account_io_start``. The host has neither, so these
comparisons run in the QEMU guests (``make test-kernels``), which run this machine's
root filesystem, hence the same libbpf-tools. On the host tcpconnect's skips with that
reason; in a guest an oracle that cannot run fails the test.

Debian's libbpf-tools 0.26 biosnoop loads on none of the matrix kernels, each for a
kernel reason the test names: 6.1 inlined blk_account_io_start (and its block_io_start
tracepoint is newer, 6.5), 6.12's verifier rejects its block_rq_complete (the request
pointer spilled to the stack as a map key turns scalar: fixed in libbpf-tools 0.28,
bcc PR 4655), Debian's 5.10 backported block_rq_insert's one-argument form that 0.26
expects only from 5.11. So biosnoop is also compared, on every kernel including the
host, with a bpftrace program (``_bpftrace_biosnoop``), and with libbpf-tools' wherever
it does load.

Tracers run at once, coreframe's as a console script (``coreframe run``), while a
helper process does the work one step at a time (tests/tools/oracle.py): O_DIRECT
writes and reads of known sizes to a loop device on a scratch file (the guests' /tmp),
and TCP connect()s over loopback in a test network namespace. Each comparison is
recorded (``tool_oracle``) for kernels/report.py's per-kernel summary.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kernkit import IN_GUEST, ROOT

sys.path.insert(0, str(ROOT / "tests" / "tools"))

from oracle import (  # noqa: E402
    CONNECTOR,
    DIRECT_IO,
    ORACLE_SETTLE_S,
    helper,
    loop_device,
    netns,
    oracle,
    oracle_path,
)
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


@contextlib.contextmanager
def oracle_proc(argv: list[str], header: str) -> Iterator[ToolProcess]:
    """A line-buffered oracle command, attached once it printed ``header`` and settled
    (bpftrace prints its BEGIN line once every probe is attached)."""
    import time

    with ToolProcess([], argv=["stdbuf", "-oL", *argv], ready=None) as p:
        assert p.wait_stdout(lambda ls: any(x.startswith(header) for x in ls), timeout=WAIT), \
            f"{argv[0]} did not start: {p.stderr[-5:]}"
        time.sleep(ORACLE_SETTLE_S)
        yield p


def _traceable(function: str) -> bool:
    """Whether a kprobe can attach to ``function``: ftrace lists it (6.12 has it in BTF
    but not here: partly inlined)."""
    try:
        with open("/sys/kernel/tracing/available_filter_functions") as f:
            return any(line.split()[0] == function for line in f if line.strip())
    except OSError:
        return False


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


# libbpf-tools 0.26 biosnoop programs the matrix kernels' verifiers refuse: (program,
# what the verifier says) -> why; any other failure to load fails the test in a guest
LIBBPF_TOOLS_BIOSNOOP_REJECTED = {
    ("block_rq_complete", "invalid mem access 'scalar'"):
        "the request pointer it keeps on the stack as a map key turns scalar once the "
        "slot is passed to a helper (fixed in libbpf-tools 0.28, bcc PR 4655)",
    ("block_rq_insert", "doesn't have 2-th argument"):
        "it expects block_rq_insert(q, rq) before 5.11, and this 5.10 has the one-argument "
        "form backported",
}


def _libbpf_tools_biosnoop(disk: str) -> str | None:
    """None if libbpf-tools' biosnoop loads and attaches here, else why not (its error)."""
    if not features.has_kprobe():
        return "it needs fentry on blk_account_io_start and a kprobe; this kernel has no kprobes"
    if _kernel_function("blk_account_io_start", "__blk_account_io_start") is None:
        # Debian 6.1: inlined into its callers (no BTF FUNC, no symbol); the
        # block_io_start tracepoint that replaced it (6.5) is newer than this build
        return "blk_account_io_start is no kernel function here (inlined), and this " \
               "libbpf-tools predates the block_io_start tracepoint"
    with ToolProcess([], argv=["stdbuf", "-oL", oracle_path("biosnoop"), "-d", disk],
                     ready=None) as p:
        if p.wait_stdout(lambda ls: any(x.startswith("TIME") for x in ls), timeout=WAIT):
            return None
        p.wait(WAIT)
        log = "\n".join(p.stderr)
    for (prog, sign), why in LIBBPF_TOOLS_BIOSNOOP_REJECTED.items():
        if f"prog '{prog}': BPF program load failed" in log and sign in log:
            return f"the verifier rejects its {prog} ({sign!r}): {why}"
    if IN_GUEST:
        pytest.fail(f"libbpf-tools' biosnoop does not load, for no known reason: {log[-1500:]}")
    return f"it does not load: {log[-300:]}"


def _bpftrace_biosnoop(devnum: int) -> tuple[str, str]:
    """(a bpftrace program printing ``pid rwbs sector bytes`` per completed request of the
    device, the hook naming the submitter). The submitter is taken where libbpf-tools
    takes it when a kprobe can attach there (blk_account_io_start), else at the
    block_io_start tracepoint (6.5+), else at the first of insert and issue; the rest
    comes from block_rq_complete's own fields (the kernel formats rwbs)."""
    dev = f"args->dev == {devnum}"
    if features.has_kprobe() and _traceable("blk_account_io_start"):
        hook = "kprobe:blk_account_io_start"
        start = ("kprobe:blk_account_io_start { "
                 "@pid[((struct request *)arg0)->__sector] = pid; }")
    elif Path("/sys/kernel/tracing/events/block/block_io_start").exists():
        hook = "tracepoint:block:block_io_start"
        start = f"tracepoint:block:block_io_start /{dev}/ {{ @pid[args->sector] = pid; }}"
    else:
        hook = "tracepoints block_rq_insert/block_rq_issue"
        start = "\n".join(f"tracepoint:block:{tp} /{dev} && !@pid[args->sector]/ "
                          "{ @pid[args->sector] = pid; }"
                          for tp in ("block_rq_insert", "block_rq_issue"))
    prog = f"""
BEGIN {{ printf("PID RWBS SECTOR BYTES\\n"); }}
{start}
tracepoint:block:block_rq_complete /{dev}/ {{
    printf("%d %s %d %d\\n", @pid[args->sector], args->rwbs, args->sector,
           args->nr_sector * 512);
    delete(@pid[args->sector]);
}}
"""
    return prog, hook


def _bpftrace_cannot(prog: str) -> str | None:
    """Why bpftrace cannot run ``prog`` here (its first error line), or None. Debian's
    bpftrace 0.17 cannot on 5.10: block_rq_complete's format names dev_t and sector_t,
    which it does not find there ("unknown type name 'dev_t'")."""
    probe = prog.replace('printf("PID RWBS SECTOR BYTES\\n"); }', 'exit(); }', 1)
    assert probe != prog
    r = subprocess.run(["bpftrace", "-e", probe], capture_output=True, text=True, timeout=120)
    if r.returncode == 0:
        return None
    errors = [line for line in r.stderr.splitlines() if "error" in line.lower()]
    return "bpftrace: " + (errors[0] if errors else r.stderr.strip()[:200])


def test_biosnoop_vs_oracles(tmp_path: Path,
                             record_property: Callable[[str, object], None]) -> None:
    """Against libbpf-tools' biosnoop where it runs, and always against a bpftrace
    program (also an oracle): Debian's libbpf-tools 0.26 biosnoop loads on none of the
    matrix kernels (the test says why, per kernel)."""
    import os
    import shutil

    if shutil.which("bpftrace") is None:
        if IN_GUEST:
            pytest.fail("bpftrace (the oracle) is missing: apt-get install bpftrace")
        pytest.skip("bpftrace (the oracle) is missing: apt-get install bpftrace")
    subprocess.run(["modprobe", "loop"], capture_output=True, check=False)
    with loop_device(tmp_path, size_mib=16) as dev:
        disk = Path(dev).name
        rdev = os.stat(dev).st_rdev
        devnum = (os.major(rdev) << 20) | os.minor(rdev)        # the kernel's dev_t
        why_not = _libbpf_tools_biosnoop(disk)
        prog, hook = _bpftrace_biosnoop(devnum)
        bt_why_not = _bpftrace_cannot(prog)
        with helper(DIRECT_IO, dev, str(WRITES), str(WSIZE), str(READS), str(RSIZE)) as h, \
                ToolProcess(["biosnoop", "-d", disk, "--json"]) as mine, \
                (oracle_proc(["bpftrace", "-e", prog], "PID") if bt_why_not is None
                 else contextlib.nullcontext()) as bt, \
                (oracle("biosnoop", "-d", disk, header="TIME") if why_not is None
                 else contextlib.nullcontext()) as theirs:
            assert h.step() == "done"
            pid = str(h.pid)
            n = WRITES + READS

            def all_saw() -> bool:
                return (sum(e["pid"] == h.pid for e in mine.json_records()) >= n
                        and (bt is None
                             or sum(r.get("PID") == pid for r in _rows(bt.stdout, "PID")) >= n)
                        and (theirs is None or sum(r.get("PID") == pid for r in
                                                   _rows(theirs.stdout, "TIME")) >= n))

            _until(all_saw)
            assert mine.stop() == 0, mine.stderr
            if bt is not None:
                bt.stop()
            if theirs is not None:
                theirs.stop()
    ours = [(str(e["pid"]), e["rwbs"], str(e["sector"]), str(e["bytes"]))
            for e in mine.json_records() if e["pid"] == h.pid]
    # what the helper did: 4 KiB writes from sector 0, 64 KiB reads from 1 MiB, one
    # request each (one at a time, O_DIRECT, so nothing merges)
    want = [(pid, str(i * WSIZE // 512), str(WSIZE)) for i in range(WRITES)] + \
        [(pid, str((1 << 20) // 512 + i * RSIZE // 512), str(RSIZE)) for i in range(READS)]
    if bt is None:
        assert [(p, s, b) for p, _, s, b in ours] == want, ours
        record_property("tool_oracle", f"biosnoop = the workload's own record: {len(ours)} "
                                       f"requests; no bpftrace comparison: {bt_why_not}")
        record_property("tool_oracle", f"biosnoop: no libbpf-tools comparison, {why_not}")
        return
    traced = [(r["PID"], r["RWBS"], r["SECTOR"], r["BYTES"])
              for r in _rows(bt.stdout, "PID") if r["PID"] == pid]
    assert [(p, s, b) for p, _, s, b in traced] == want, bt.stdout
    assert ours == traced, (ours, traced)
    record_property("tool_oracle", f"biosnoop = bpftrace ({hook}): {len(ours)} requests "
                                   f"equal ({ours[0][1]} x{WRITES}, {ours[-1][1]} x{READS})")
    if theirs is None:
        record_property("tool_oracle", f"biosnoop: no libbpf-tools comparison, {why_not}")
        return
    libbpf = [(r["PID"], r["T"], r["SECTOR"], r["BYTES"])
              for r in _rows(theirs.stdout, "TIME") if r.get("PID") == pid]
    assert ours == libbpf, (ours, libbpf)
    record_property("tool_oracle", f"biosnoop = libbpf-tools: {len(ours)} requests equal")


def test_tcpconnect_vs_libbpf_tools(record_property: Callable[[str, object], None]) -> None:
    _need_oracle("tcpconnect", "kprobes on tcp_v4_connect and tcp_v6_connect")
    with netns("cf-kern-tcpconnect") as ns, helper(CONNECTOR, ns=ns) as h, \
            ToolProcess(["tcpconnect", "-p", str(h.pid), "--json"]) as mine, \
            oracle("tcpconnect", "-p", str(h.pid), "-s", header="PID") as theirs:
        truth = json.loads(h.step())
        _until(lambda: len(mine.stdout) >= len(truth) and
               len(_rows(theirs.stdout, "PID")) >= len(truth))
        assert mine.stop() == 0, mine.stderr
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
