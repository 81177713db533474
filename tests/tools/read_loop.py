"""A separate process that read()s fixed sizes from a file in tight loops, on cue.

The child names itself (prctl PR_SET_NAME) so ``-c`` and ``--per-comm`` can find
it, does every read of its own start-up before saying "ready", then runs one
phase of reads per SIGUSR1: after that the only read() calls it makes are the
ones asked for, so a histogram of its pid must match exactly.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

# Phases are "SIZExCOUNT,SIZExCOUNT/..." on argv; each phase ends with "done N".
CHILD = r"""
import ctypes, os, signal, sys
name, data, spec = sys.argv[1], sys.argv[2], sys.argv[3]
phases = [[tuple(int(x) for x in part.split("x")) for part in ph.split(",")]
          for ph in spec.split("/")]
ctypes.CDLL(None, use_errno=True).prctl(15, name.encode(), 0, 0, 0)  # PR_SET_NAME
fd = os.open(data, os.O_RDONLY)
read = os.read
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
os.write(1, b"ready\n")
for n, phase in enumerate(phases):
    signal.sigwait({signal.SIGUSR1})
    for size, count in phase:
        for _ in range(count):
            read(fd, size)
    os.write(1, b"done %d\n" % n)
signal.sigwait({signal.SIGUSR1})
os._exit(0)
"""

Phase = Sequence[tuple[int, int]]


def slot_of(size: int) -> int:
    """bcc's log2 slot: 0 holds 0, slot i holds 2^(i-1)..2^i-1."""
    return size.bit_length()


class ReadLoop:
    """Start the child (it waits); ``go()`` runs the next phase and waits for it to finish."""

    def __init__(self, tmp_path: Path, name: str, phases: Sequence[Phase]) -> None:
        self.name = name
        self.phases = [list(p) for p in phases]
        total = sum(size * count for p in self.phases for size, count in p)
        data = tmp_path / f"{name}-{os.getpid()}-{id(self)}.dat"
        with open(data, "wb") as f:
            f.truncate(total + 4096)  # sparse: reads return full sizes, never EOF
        spec = "/".join(",".join(f"{s}x{c}" for s, c in p) for p in self.phases)
        self.proc = subprocess.Popen([sys.executable, "-c", CHILD, name, str(data), spec],
                                     stdout=subprocess.PIPE)
        self.pid = self.proc.pid
        self._next = 0
        if self._line() != b"ready\n":
            self.close()
            raise RuntimeError("read loop child did not start")

    def _line(self) -> bytes:
        assert self.proc.stdout is not None
        return self.proc.stdout.readline()

    def go(self) -> None:
        """Run the next phase of reads and return once the child has done them all."""
        self.proc.send_signal(signal.SIGUSR1)
        assert self._line() == b"done %d\n" % self._next
        self._next += 1

    def finish(self) -> None:
        """Let the child exit (it reads nothing more)."""
        self.proc.send_signal(signal.SIGUSR1)
        assert self.proc.wait() == 0

    def expected(self, upto: int | None = None) -> tuple[dict[int, int], int, int]:
        """(slot -> count, reads, bytes) of the first ``upto`` phases (all by default)."""
        slots: dict[int, int] = {}
        reads = nbytes = 0
        for phase in self.phases[:upto]:
            for size, count in phase:
                slots[slot_of(size)] = slots.get(slot_of(size), 0) + count
                reads += count
                nbytes += size * count
        return slots, reads, nbytes

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()

    def __enter__(self) -> ReadLoop:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
