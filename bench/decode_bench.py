"""Decoding benchmark: records typed from BTF against hand-written ``struct`` decoding.

Records are laid out in one buffer the way a ring buffer's data area holds them
(8-byte aligned, each decoded at its offset, no copy first), and every decoder
turns each record into Python values for all of its fixed fields:
  - hand:   execsnoop's own decoding (``_EXEC``/``_EXIT`` of plugins/execsnoop.py:
            one ``struct.Struct.unpack_from`` and the comm's NUL-strip + decode),
            the fields left in a tuple
  - typed:  ``coreframe.btf.values`` from the committed execsnoop.bpf.o's own BTF
            (``codec.decode(buf, off, n)``, what ``reader("struct exec_event")``
            runs per record): a StructValue, fields as attributes
  - ctypes: the 0.1 ``reader(obj.btf.ctype(...))`` path (``from_buffer_copy``,
            then every field read once, as the hand decoder has them all); exit
            records only, an exec record is shorter than its struct
Cases: "exec" records as execsnoop sends them (the 64-byte header, then filename
and arguments: 84..200 bytes against the struct's 8256: the typed decoder decodes
the fixed part and keeps the rest as ``tail``), and "exit" records (exactly
``struct exit_event``). Per case: ns per record, median and best over --runs rounds
(the decoders take turns within each round of --records records), and the ratio of
the medians to the hand-written decoder's. Rounds are short (a fraction of a
millisecond) and many: on this shared VM a round is now and then stretched by a
preemption of several milliseconds, which the median of many short rounds ignores.

Target: typed decoding within TARGET_RATIO (3.5x) of the hand-written decoder per
record, in both cases; the bench exits 1 if a median ratio misses it. (The typed
decoder builds an object with every field as an attribute, and for exec records also
copies the tail out of the buffer; the hand-written one leaves locals and no copy.)
Usage: .venv/bin/python bench/decode_bench.py [--records 200] [--runs 301]
"""

from __future__ import annotations

import argparse
import json
import statistics
import struct
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
OBJ = ROOT / "plugins" / "objects" / "execsnoop.bpf.o"
TARGET_RATIO = 3.5

# plugins/execsnoop.py's layouts (bpf/execsnoop.h), checked against it when importable
_EXEC = struct.Struct("<IIIIIiQIIII16s")
_EXIT = struct.Struct("<IIIIIiQIIQ16s")


def _check_layouts() -> None:
    try:
        sys.path.insert(0, str(ROOT))
        from plugins import execsnoop  # noqa: PLC0415 - optional cross-check
    except ImportError:
        return
    for name, mine in (("_EXEC", _EXEC), ("_EXIT", _EXIT)):
        theirs = getattr(execsnoop, name, None)
        if theirs is not None and theirs.format != mine.format:
            raise SystemExit(f"decode_bench: {name} differs from plugins/execsnoop.py")


def exec_records(n: int) -> tuple[bytearray, list[tuple[int, int]]]:
    """n exec records (header + filename + args, like the BPF program sends) in one area."""
    buf = bytearray()
    spans = []
    for i in range(n):
        args = [b"/usr/bin/ls", b"-l", b"--color=auto", f"/tmp/dir{i % 97}".encode()]
        args = args[: 1 + i % 4]
        filename = b"/usr/bin/ls\0"
        tail = filename + b"\0".join(args) + b"\0"
        head = _EXEC.pack(1, 1000 + i, 1000 + i, 1, 0, 0, 123456789 * i, len(args), 0,
                          len(filename), len(tail) - len(filename), b"ls")
        rec = head + tail
        spans.append((len(buf), len(rec)))
        buf += rec + bytes(-len(rec) % 8)
    return buf, spans


def exit_records(n: int) -> tuple[bytearray, list[tuple[int, int]]]:
    buf = bytearray()
    spans = []
    for i in range(n):
        rec = _EXIT.pack(2, 1000 + i, 1000 + i, 1, 0, i % 3, 5_000_000 + i, 0, 0,
                         987654321 * i, b"bash")
        spans.append((len(buf), len(rec)))
        buf += rec
    return buf, spans


def hand_exec(buf: memoryview, spans: list[tuple[int, int]]) -> None:
    unpack = _EXEC.unpack_from
    for off, _n in spans:
        (kind, pid, tgid, ppid, uid, retval, ts, argc, flags, flen, asz,
         comm) = unpack(buf, off)
        comm = comm.partition(b"\0")[0].decode("utf-8", "replace")


def hand_exit(buf: memoryview, spans: list[tuple[int, int]]) -> None:
    unpack = _EXIT.unpack_from
    for off, _n in spans:
        (kind, pid, tgid, ppid, uid, code, dur, sig, flags, ts, comm) = unpack(buf, off)
        comm = comm.partition(b"\0")[0].decode("utf-8", "replace")


def typed(decode: Callable[..., object]) -> Callable[[memoryview, list[tuple[int, int]]], None]:
    def run(buf: memoryview, spans: list[tuple[int, int]]) -> None:
        for off, n in spans:
            decode(buf, off, n)

    return run


def ctypes_exit(ctype: type) -> Callable[[memoryview, list[tuple[int, int]]], None]:
    copy = ctype.from_buffer_copy  # type: ignore[attr-defined]

    def run(buf: memoryview, spans: list[tuple[int, int]]) -> None:
        for off, _n in spans:
            e = copy(buf, off)
            (e.type, e.pid, e.tgid, e.ppid, e.uid, e.exit_code, e.duration_ns, e.sig,
             e.flags, e.ts, e.comm.decode("utf-8", "replace"))

    return run


def measure(fn: Callable[[memoryview, list[tuple[int, int]]], None], buf: memoryview,
            spans: list[tuple[int, int]]) -> float:
    t0 = time.perf_counter_ns()
    fn(buf, spans)
    return (time.perf_counter_ns() - t0) / len(spans)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--records", type=int, default=200)
    ap.add_argument("--runs", type=int, default=301)
    args = ap.parse_args()
    _check_layouts()

    import coreframe
    from coreframe.btf.values import codec_by_name

    btf = coreframe.open(str(OBJ)).btf
    exec_codec = codec_by_name(btf, "struct exec_event")
    exit_codec = codec_by_name(btf, "struct exit_event")
    # a memoryview, as the ring buffer reader hands its decoder (a slice of the mmap)
    ex_raw, ex_spans = exec_records(args.records)
    xt_raw, xt_spans = exit_records(args.records)
    ex_buf, xt_buf = memoryview(bytes(ex_raw)), memoryview(bytes(xt_raw))
    # the typed decoders give what the hand-written ones do
    off, n = ex_spans[3]
    rec = exec_codec.decode(ex_buf, off, n)
    fields = _EXEC.unpack_from(ex_buf, off)
    assert (rec.pid, rec.args_size, rec.comm) == (fields[1], fields[10], "ls")
    assert rec.tail == bytes(ex_buf[off + 64:off + n])
    assert exit_codec.decode(xt_buf, *xt_spans[5]).duration_ns == 5_000_005

    cases = {
        "exec": (ex_buf, ex_spans, {"hand": hand_exec, "typed": typed(exec_codec.decode)}),
        "exit": (xt_buf, xt_spans, {"hand": hand_exit, "typed": typed(exit_codec.decode),
                                    "ctypes": ctypes_exit(btf.ctype("struct exit_event"))}),
    }
    samples: dict[str, dict[str, list[float]]] = {
        c: {d: [] for d in decs} for c, (_, _, decs) in cases.items()}
    for fn_case in cases.values():  # warm up: codecs compiled, caches filled
        for fn in fn_case[2].values():
            fn(fn_case[0], fn_case[1][:100])
    for _ in range(args.runs):
        for case, (buf, spans, decs) in cases.items():
            for name, fn in decs.items():
                samples[case][name].append(measure(fn, buf, spans))

    summary: dict[str, object] = {"records": args.records, "runs": args.runs,
                                  "target_ratio": TARGET_RATIO, "cases": {}}
    failed = []
    print(f"decode cost per record over {args.runs} rounds of {args.records} records")
    print(f"{'case':<6} {'decoder':<8} {'median ns':>10} {'best ns':>8} {'vs hand':>8}")
    for case, per in samples.items():
        rows = {}
        for name, vals in per.items():
            med = statistics.median(vals)
            ratio = med / statistics.median(per["hand"])
            rows[name] = {"ns_per_record": round(med, 1), "best_ns": round(min(vals), 1),
                          "ratio_to_hand": round(ratio, 2)}
            print(f"{case:<6} {name:<8} {med:>10.0f} {min(vals):>8.0f} {ratio:>7.2f}x")
        summary["cases"][case] = rows  # type: ignore[index]
        if rows["typed"]["ratio_to_hand"] > TARGET_RATIO:
            failed.append(case)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "decode_bench.json").write_text(json.dumps(summary, indent=2) + "\n")
    verdict = f"missed in: {', '.join(failed)}" if failed else "met"
    print(f"target: typed within {TARGET_RATIO}x of hand-written per record: {verdict}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
