"""readhist never loses counts silently: a full per-process table is reported."""

from __future__ import annotations

import json
import subprocess
import sys
import time

from tool_proc import ToolProcess

READER = ("import os, sys, time\n"
          "fd = os.open('/etc/passwd', os.O_RDONLY)\n"
          "end = time.time() + float(sys.argv[1])\n"
          "while time.time() < end:\n"
          "    os.pread(fd, 16, 0)\n")


def test_full_table_drops_are_reported(need_root: None) -> None:
    tracer = ToolProcess(["readhist", "--max-entries", "1", "--json", "-i", "0.3"])
    readers: list[subprocess.Popen[bytes]] = []
    try:
        readers = [subprocess.Popen([sys.executable, "-c", READER, "1.5"]) for _ in range(3)]
        for r in readers:
            r.wait(timeout=30)
        time.sleep(0.5)
        code = tracer.stop()
    finally:
        for r in readers:
            if r.poll() is None:
                r.kill()
        tracer.kill()
    assert code == 0, tracer.stderr
    assert any("reads not counted: the table of processes is full" in line
               for line in tracer.stderr)
    drops = [json.loads(line) for line in tracer.stdout if '"event":"dropped"' in line]
    assert drops and all(d["count"] > 0 for d in drops)
    assert drops[-1]["total"] == sum(d["count"] for d in drops)
