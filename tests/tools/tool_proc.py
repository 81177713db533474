"""Run ``coreframe run TOOL ...`` as a real subprocess and watch what it prints.

The CLI tests drive the installed console script exactly as a user would: the
tracer is a separate process, is considered attached once its "Tracing" line
shows on stderr, and is stopped with SIGINT. Output is collected on threads so
a chatty tracer never blocks on a full pipe.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
COREFRAME = str(Path(sys.executable).with_name("coreframe"))
# Generous: only bounds how long a broken tracer can hang a test, never asserted.
WAIT_S = 60.0


class _Lines:
    """Lines of one stream, appended by a reader thread, waited on by the test."""

    def __init__(self, stream: Any) -> None:
        self.lines: list[str] = []
        self.cond = threading.Condition()
        self.closed = False
        self.thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self.thread.start()

    def _read(self, stream: Any) -> None:
        for line in stream:
            with self.cond:
                self.lines.append(line.rstrip("\n"))
                self.cond.notify_all()
        with self.cond:
            self.closed = True
            self.cond.notify_all()

    def wait(self, pred: Callable[[list[str]], bool], timeout: float = WAIT_S) -> bool:
        deadline = time.monotonic() + timeout
        with self.cond:
            while not pred(self.lines):
                left = deadline - time.monotonic()
                if left <= 0 or self.closed:
                    return pred(self.lines)
                self.cond.wait(min(left, 0.5))
        return True

    def snapshot(self) -> list[str]:
        with self.cond:
            return list(self.lines)


class ToolProcess:
    """``coreframe run <args>`` in a subprocess; a context manager that always reaps it."""

    def __init__(self, args: Sequence[str], *, ready: str | None = "Tracing",
                 argv: Sequence[str] | None = None, env: dict[str, str] | None = None) -> None:
        cmd = list(argv) if argv is not None else [COREFRAME, "run", *args]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, errors="replace", env=env)
        self.out = _Lines(self.proc.stdout)
        self.err = _Lines(self.proc.stderr)
        self.returncode: int | None = None
        if ready is not None:
            self.wait_ready(ready)

    def wait_ready(self, text: str = "Tracing") -> None:
        """Block until stderr says the tool is attached; fail with its stderr otherwise."""
        if not self.err.wait(lambda ls: any(text in line for line in ls)):
            self.kill()
            raise AssertionError(f"tracer never printed {text!r}; exit {self.proc.returncode}, "
                                 f"stderr: {self.err.snapshot()}")

    def wait_stdout(self, pred: Callable[[list[str]], bool], timeout: float = WAIT_S) -> bool:
        return self.out.wait(pred, timeout)

    def wait_text(self, text: str, timeout: float = WAIT_S) -> bool:
        return self.out.wait(lambda ls: any(text in line for line in ls), timeout)

    def stop(self, sig: int = signal.SIGINT, timeout: float = WAIT_S) -> int:
        """Send ``sig`` (Ctrl-C by default) and wait for a clean exit; return the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.wait(timeout)

    def wait(self, timeout: float = WAIT_S) -> int:
        try:
            self.returncode = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("tracer did not exit; killed it") from None
        self.out.thread.join(timeout)
        self.err.thread.join(timeout)
        return self.returncode

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.returncode = self.proc.returncode

    @property
    def stdout(self) -> list[str]:
        return self.out.snapshot()

    @property
    def stderr(self) -> list[str]:
        return self.err.snapshot()

    def json_records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stdout if line.strip()]

    def __enter__(self) -> ToolProcess:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.kill()
        self.out.thread.join(WAIT_S)
        self.err.thread.join(WAIT_S)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


def run_quiet(argv: Sequence[str], **kwargs: Any) -> subprocess.CompletedProcess[bytes]:
    """Run a short helper command whose output does not matter."""
    return subprocess.run(list(argv), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                          **kwargs)


def cgroup2_root() -> Path | None:
    """Where the unified (v2) hierarchy is mounted: /sys/fs/cgroup or a hybrid's unified/."""
    with open("/proc/self/mounts") as f:
        for line in f:
            fields = line.split()
            if len(fields) > 2 and fields[2] == "cgroup2":
                return Path(fields[1])
    return None


def unique(tag: str) -> str:
    """A marker string no other process on the machine will exec by accident."""
    return f"cf-{tag}-{os.getpid()}-{time.monotonic_ns()}"
