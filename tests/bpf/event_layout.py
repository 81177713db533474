"""Record and map layouts documented in bpf/execsnoop.h and bpf/readhist.h, in struct terms.

Kept independent of coreframe's BTF-driven decoding so the tests check the
documented byte layout itself.
"""

from __future__ import annotations

import struct

EXEC_HEADER = struct.Struct("<IIIIIiQIIII16s")  # 64 bytes, then data
EXIT_EVENT = struct.Struct("<IIIIIiQIIQ16s")
EVENT_EXEC = 1
EVENT_EXIT = 2


def decode_event(raw: bytes) -> dict[str, object]:
    """Decode one execsnoop record following the layout documented in bpf/execsnoop.h."""
    (etype,) = struct.unpack_from("<I", raw)
    if etype == EVENT_EXEC:
        (_, pid, tgid, ppid, uid, retval, ts, args_count, flags, filename_len, args_size,
         comm) = EXEC_HEADER.unpack_from(raw)
        data = raw[EXEC_HEADER.size:EXEC_HEADER.size + filename_len + args_size]
        filename = data[:filename_len].rstrip(b"\0").decode(errors="replace")
        args = [a.decode(errors="replace") for a in data[filename_len:].split(b"\0")[:-1]]
        return {
            "type": "exec", "pid": pid, "tgid": tgid, "ppid": ppid, "uid": uid,
            "retval": retval, "ts": ts, "args_count": args_count, "flags": flags,
            "filename_len": filename_len, "args_size": args_size,
            "comm": comm.rstrip(b"\0").decode(errors="replace"),
            "filename": filename, "args": args, "size": len(raw),
        }
    if etype == EVENT_EXIT:
        (_, pid, tgid, ppid, uid, exit_code, duration_ns, sig, flags, ts,
         comm) = EXIT_EVENT.unpack_from(raw)
        return {
            "type": "exit", "pid": pid, "tgid": tgid, "ppid": ppid, "uid": uid,
            "exit_code": exit_code, "duration_ns": duration_ns, "sig": sig, "flags": flags,
            "ts": ts, "comm": comm.rstrip(b"\0").decode(errors="replace"), "size": len(raw),
        }
    raise ValueError(f"unknown execsnoop event type {etype}")


MAX_SLOTS = 64
HIST_KEY = struct.Struct("<I16s")
HIST_VALUE = struct.Struct(f"<{MAX_SLOTS}QQQQ16s")


def slot_bounds(slot: int) -> tuple[int, int]:
    """[lo, hi] of a readhist slot, as readhist.h documents and bcc prints."""
    if slot == 0:
        return 0, 0
    return 1 << (slot - 1), (1 << slot) - 1
