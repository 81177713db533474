"""execsnoop reports real execs on this kernel, through both event transports.

The tool runs in a thread as ``coreframe run execsnoop --json`` would; once it
says it is tracing, the test execs a program with a unique argument and waits
for the matching JSON line.
"""

from __future__ import annotations

import io
import json
import subprocess
import threading
import time
import uuid
from collections.abc import Callable

import pytest
from coreframe_plugins.execsnoop import ExecSnoop
from kernkit import Expect

from coreframe import features
from coreframe.options import parse
from coreframe.tool import RunContext

pytestmark = pytest.mark.kernel

# generous caps so a slow emulated guest never flakes; not timing assertions
READY_WAIT = 300.0
EVENT_WAIT = 120.0


class _Status(io.StringIO):
    """The tool's stderr; ``ready`` is set once it reports that it is tracing."""

    def __init__(self) -> None:
        super().__init__()
        self.ready = threading.Event()

    def write(self, s: str) -> int:
        if "Tracing" in s:
            self.ready.set()
        return super().write(s)


@pytest.mark.parametrize("buffer", ["ringbuf", "perf"])
def test_execsnoop_reports_exec(buffer: str, expect_feature: Expect,
                                record_property: Callable[[str, object], None]) -> None:
    if buffer == "ringbuf" and not expect_feature(features.has_ringbuf(), "BPF ring buffer"):
        pytest.skip("no ring buffer on this kernel")
    opts = parse(ExecSnoop.params(), ["--json", "--buffer", buffer])
    assert opts is not None
    out, err = io.StringIO(), _Status()
    ctx = RunContext(out=out, err=err)
    failure: list[BaseException] = []

    def run() -> None:
        try:
            ExecSnoop(**opts).run(ctx)
        except BaseException as e:  # noqa: BLE001 - reported by the test thread
            failure.append(e)
            err.ready.set()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    marker = f"cf-kernel-{uuid.uuid4().hex[:12]}"
    try:
        assert err.ready.wait(READY_WAIT), "execsnoop never started tracing"
        assert not failure, failure
        child = subprocess.run(["/bin/echo", marker], capture_output=True, check=True)
        assert child.stdout.strip() == marker.encode()
        found = None
        end = time.monotonic() + EVENT_WAIT
        while found is None and time.monotonic() < end and thread.is_alive():
            for line in out.getvalue().splitlines():
                ev = json.loads(line)
                if ev.get("event") == "exec" and marker in ev.get("args", []):
                    found = ev
            time.sleep(0.05)
    finally:
        ctx.stop_event.set()
        thread.join(READY_WAIT)
    assert not failure, failure
    assert found is not None, f"no exec event for {marker}: {out.getvalue()[-2000:]}"
    assert found["comm"] == "echo"
    assert found["filename"] == "/bin/echo"
    assert found["args"] == ["/bin/echo", marker]
    assert found["retval"] == 0
    record_property("tool", f"execsnoop --buffer {buffer}")
