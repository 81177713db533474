"""biosnoop: one line per block I/O request: who, disk, type, sector, size, latency.

Columns and options follow libbpf-tools' biosnoop (``-d -Q -c``); ``--json``
gives the same per request with nanoseconds. libbpf-tools' biosnoop names the
submitter with a kprobe (blk_account_io_start); here the block_io_start
tracepoint does it (kernels 6.5+), or, before it, the first of insert and issue.
Attached as tp_btf or raw_tp.
"""

from __future__ import annotations

import struct

from coreframe.metrics import Counter, Histogram
from coreframe.options import Directory, Option
from coreframe.output import Col, Field
from coreframe.tool import Readiness, RunContext, Tool, check_requirement, choose_attach

from ._blk import dev_of, disks, flags_text, op_text, rwbs
from ._common import attach_option, comm, metered, open_object, trace

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from coreframe.metrics import MetricSet


_EVENT = struct.Struct("<QQqQIIII16s")       # struct event, bpf/biosnoop.bpf.c
ATTACH = (
    ("tp_btf", ("tp_btf:block_rq_issue", "tp_btf:block_rq_complete",
                "tp_btf:block_rq_insert"), "the request as a typed argument"),
    ("raw_tp", ("raw_tp:block_rq_issue", "raw_tp:block_rq_complete",
                "raw_tp:block_rq_insert"), "the request pointer, read with CO-RE"),
)
REQUESTS = Counter("coreframe_biosnoop_requests", "Completed block I/O requests, by disk and "
                   "operation (Read, Write, Flush, Discard, ...)", ("disk", "op"))
BYTES = Counter("coreframe_biosnoop_bytes", "Bytes of the completed requests", ("disk", "op"))
LATENCY = Histogram("coreframe_biosnoop_latency_seconds",
                    "Issue-to-completion latency of each request (log2 buckets)", ("disk",),
                    scale=1e-9)
PROGRAMS = {"tp_btf": ("start_btf", "insert_btf", "issue_btf", "complete_btf"),
            "raw_tp": ("start_raw", "insert_raw", "issue_raw", "complete_raw")}


class BioSnoop(Tool):
    """Trace block device I/O, one line per request with its latency."""

    name = "biosnoop"
    summary = "Block I/O requests with their latency, one line each"
    object_file = "biosnoop.bpf.o"
    requires = ("bpf", "btf", "ringbuf")
    attach_choices = ATTACH
    columns = (Col("TIME(s)", "since", -11, ".6f", key=None), Col("COMM", "comm", -14),
               Col("PID", "pid", -7), Col("DISK", "disk", -7), Col("T", "rwbs", -4),
               Field("flags"), Col("SECTOR", "sector", -10), Col("BYTES", "bytes", -7),
               Col("QUE(ms)", "que_ms", 7, ".3f", key=None, when="queued"),
               Field("queue_ns", when="queued"), Col("LAT(ms)", "lat_ms", 7, ".3f", key=None),
               Field("latency_ns"))
    time_field = "ts"
    metrics = (REQUESTS, BYTES, LATENCY)

    @classmethod
    def params(cls) -> list[Option]:
        return [
            Option("-d", "--disk", help="Only this disk (e.g. sda, loop0)."),
            Option("-Q", "--queued", is_flag=True, help="Include OS queued time."),
            Option("-c", "--cgroup", type=Directory(),
                   help="Only I/O issued in this cgroup (v2 path)."),
            attach_option(PROGRAMS),
        ]

    @classmethod
    def readiness(cls) -> Readiness:
        base = super().readiness()
        if not base.ready:
            return base
        choice = choose_attach(ATTACH)
        who = ("block_io_start names the submitter" if _has_io_start(choice.method) else
               "no block_io_start here: insert/issue name the task")
        return Readiness(choice.method is not None, f"{choice.detail}; {who}")

    def run(self, ctx: RunContext) -> int:
        o = self.options
        targ_dev = dev_of(o["disk"]) if o["disk"] else None
        spec, method = open_object(self, PROGRAMS, targ_queued=bool(o["queued"]),
                                   filter_dev=targ_dev is not None, targ_dev=targ_dev or 0,
                                   filter_cg=bool(o["cgroup"]))
        assert method is not None
        if not _has_io_start(method):
            spec.programs[PROGRAMS[method][0]].autoload = False
        names = disks()
        emit = metered(ctx, _count)
        unpack = _EVENT.unpack_from
        first: list[int] = []

        def handle(rec: memoryview) -> None:
            ts, delta, qdelta, sector, length, dev, flags, pid, raw_comm = unpack(rec)
            if not first:
                first.append(ts)
            name = names.get(dev)
            if name is None:
                names.update(disks())
                name = names.get(dev, "Unknown")
            emit({"ts": ts, "since": (ts - first[0]) / 1e9, "comm": comm(raw_comm)[:14],
                  "pid": pid, "disk": name, "rwbs": rwbs(flags), "flags": flags_text(flags),
                  "sector": sector, "bytes": length,
                  "que_ms": qdelta / 1e6 if qdelta >= 0 else -1.0,
                  "queue_ns": qdelta if qdelta >= 0 else None,
                  "lat_ms": delta / 1e6, "latency_ns": delta, "op": op_text(flags)})

        return trace(ctx, spec, f"Tracing block I/O ({method})... Hit Ctrl-C to end.",
                     handle=handle, cgroup=o["cgroup"])


def _count(ms: MetricSet, r: dict[str, Any]) -> None:
    labels = (r["disk"], r["op"])
    ms.inc(REQUESTS.name, labels)
    ms.inc(BYTES.name, labels, r["bytes"])
    ms.observe(LATENCY.name, (r["disk"],), r["latency_ns"])


def _has_io_start(method: str | None) -> bool:
    if method is None:
        return False
    return check_requirement(f"{method}:block_io_start")[0]
