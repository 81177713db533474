"""Block devices and request flags for biolatency and biosnoop."""

from __future__ import annotations

import os

from coreframe.errors import ToolError

MINORBITS = 20                  # bpf/biolatency.h: the kernel's dev_t
REQ_OP_MASK = (1 << 8) - 1
# enum cf_req_flag (bpf/biolatency.h), in libbpf-tools' print order
FLAG_NAMES = ("NoWait-", "Background-", "ReadAhead-", "PreFlush-", "FUA-", "Integrity-",
              "Idle-", "NoMerge-", "Priority-", "Metadata-", "Sync-")


def _op_names() -> dict[int, str]:
    # enum req_op's values are stable since 6.0 (the ones below 6.0 that moved are gone)
    return {0: "Read", 1: "Write", 2: "Flush", 3: "Discard", 5: "SecureErase",
            7: "ZoneAppend", 9: "WriteZeroes", 11: "ZoneOpen", 13: "ZoneClose",
            15: "ZoneFinish", 17: "ZoneReset", 19: "ZoneResetAll", 34: "DrvIn",
            35: "DrvOut"}


def op_text(flags: int) -> str:
    """The request's operation: Read, Write, Flush, ... ("Unknown" for another op)."""
    return _op_names().get(flags & REQ_OP_MASK, "Unknown")


def flags_text(flags: int) -> str:
    """libbpf-tools' "Sync-Write"-style text for op | CF_REQ_* bits."""
    text = "".join(name for i, name in enumerate(FLAG_NAMES) if flags & (1 << (8 + i)))
    return text + op_text(flags)


def disks() -> dict[int, str]:
    """Kernel dev_t (major << 20 | minor) -> block device name, from sysfs."""
    out = {}
    root = "/sys/class/block"
    try:
        names = os.listdir(root)
    except OSError:
        return out
    for name in names:
        try:
            with open(os.path.join(root, name, "dev")) as f:
                major, minor = f.read().strip().split(":")
        except (OSError, ValueError):
            continue
        out[(int(major) << MINORBITS) | int(minor)] = name
    return out


def dev_of(name: str) -> int:
    """The kernel dev_t of block device ``name`` (-d), or a ToolError naming the choices."""
    by_name = {v: k for k, v in disks().items()}
    if name not in by_name:
        choices = ", ".join(sorted(by_name)[:12])
        raise ToolError(f"-d/--disk {name!r}: no such block device (have: {choices})")
    return by_name[name]


def rwbs(flags: int) -> str:
    """libbpf-tools' T column (blk_fill_rwbs) for op | CF_REQ_* bits."""
    def has(name: str) -> bool:
        return bool(flags & (1 << (8 + FLAG_NAMES.index(name))))

    op = flags & REQ_OP_MASK
    text = "F" if has("PreFlush-") else ""
    text += {1: "W", 3: "D", 5: "DE", 2: "F", 0: "R"}.get(op, "N")
    for name, letter in (("FUA-", "F"), ("ReadAhead-", "A"), ("Sync-", "S"),
                         ("Metadata-", "M")):
        if has(name):
            text += letter
    return text
