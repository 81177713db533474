"""A child process doing an exact, known set of reads, and the histogram it must produce."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from types import TracebackType

from event_layout import HIST_KEY, HIST_VALUE, MAX_SLOTS

# Everything that reads happens before "ready" is written; after SIGUSR1 the
# only reads are the ones listed here, then the child leaves without cleanup.
CHILD = r"""
import os, signal, sys
data = sys.argv[1]
fd = os.open(data, os.O_RDONLY)
wfd = os.open(data, os.O_WRONLY)
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
os.write(1, b"ready\n")
signal.sigwait({signal.SIGUSR1})
for n in (1, 100, 4096, 70000):
    os.read(fd, n)
os.lseek(fd, 0, os.SEEK_END)
os.read(fd, 10)
os.pread(fd, 10, 0)
try:
    os.read(wfd, 1)
except OSError:
    pass
os._exit(0)
"""

# slot -> count for the reads above (bcc slots: 0 for 0, else floor(log2)+1):
# 1 -> 1, 100 -> 7, 4096 -> 13, 70000 -> 17, 0 (EOF) -> 0, pread 10 -> 4
EXPECTED_SLOTS = {1: 1, 7: 1, 13: 1, 17: 1, 0: 1, 4: 1}
EXPECTED_BYTES = 1 + 100 + 4096 + 70000 + 0 + 10
EXPECTED_ERRORS = 1  # read() on a write-only fd: EBADF


class ReadWorkload:
    """Start the child (it waits), attach the tracer, then go()."""

    def __init__(self, tmp_path: Path) -> None:
        data = tmp_path / "read-workload-data"
        data.write_bytes(os.urandom(80000))
        self.proc = subprocess.Popen([sys.executable, "-c", CHILD, str(data)],
                                     stdout=subprocess.PIPE)
        assert self.proc.stdout is not None
        if self.proc.stdout.readline() != b"ready\n":
            self.close()
            raise RuntimeError("read workload child did not start")
        self.pid = self.proc.pid

    def go(self) -> None:
        self.proc.send_signal(signal.SIGUSR1)
        assert self.proc.wait() == 0

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()

    def __enter__(self) -> ReadWorkload:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def check(self, items: list[tuple[bytes, bytes]], mode: str) -> None:
        """The hists map holds exactly one entry with the expected histogram."""
        assert len(items) == 1
        (key_id, key_comm), value = HIST_KEY.unpack(items[0][0]), HIST_VALUE.unpack(items[0][1])
        slots, (reads, nbytes, errors, comm) = value[:MAX_SLOTS], value[MAX_SLOTS:]
        if mode == "comm":
            assert key_id == 0 and key_comm.rstrip(b"\0") == comm.rstrip(b"\0")
        else:
            assert key_id == self.pid and key_comm == b"\0" * 16
        # comm is the basename of the exec()ed path, cut to 15 bytes
        assert comm.rstrip(b"\0") == os.path.basename(sys.executable).encode()[:15]
        assert {i: n for i, n in enumerate(slots) if n} == EXPECTED_SLOTS
        assert reads == sum(EXPECTED_SLOTS.values())
        assert nbytes == EXPECTED_BYTES
        assert errors == EXPECTED_ERRORS
