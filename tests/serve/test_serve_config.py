"""Bad `coreframe serve` configs: one line naming FILE:LINE and the fix, exit 2, nothing loaded.

Each config below is wrong in one place, after a [tools.execsnoop] table that is
right: the whole file is checked before any tool starts, so "Tracing" never shows.
"""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest
from servekit import free_port
from tool_proc import COREFRAME

GOOD = '[tools.execsnoop]\nexits = true\n'

CASES = [
    # (id, config text, line expected in FILE:LINE or None for FILE only, words in the message)
    ("unknown-tool", GOOD + "\n[tools.readhsit]\nper_comm = true\n", 4,
     ["unknown tool 'readhsit'", "did you mean 'readhist'"]),
    ("unknown-tool-key", GOOD + '\n[tools.reads]\ntool = "nosuchtool"\n', 5,
     ["unknown tool 'nosuchtool'", "installed:"]),
    ("bad-option-name", GOOD + "\n[tools.readhist]\nper_com = true\n", 5,
     ["readhist has no option 'per_com'", "did you mean 'per_comm'"]),
    ("bad-option-value", "[tools.execsnoop]\nexits = true\nmax_args = 99\n", 3,
     ["max_args = 99", "an integer from 1 to 60"]),
    ("flag-not-bool", "[tools.execsnoop]\nexits = \"yes\"\n", 2,
     ["exits = 'yes'", "true or false"]),
    ("bad-choice", "[tools.execsnoop]\nbuffer = \"ring\"\n", 2,
     ["buffer = 'ring'", "one of 'auto', 'ringbuf', 'perf'"]),
    ("unknown-serve-key", '[serve]\nlisten = "127.0.0.1:{port}"\nlisen = 3\n\n' + GOOD, 3,
     ["[serve] unknown key 'lisen'", "did you mean 'listen'"]),
    ("unknown-top-key", GOOD + '\n[server]\nlisten = "127.0.0.1:1"\n', 4,
     ["unknown key 'server'", "did you mean 'serve'"]),
    ("bare-port", '[serve]\nlisten = "19477"\n\n' + GOOD, 2,
     ["is not HOST:PORT", "127.0.0.1:19477"]),
    ("per-tool-prometheus", GOOD + 'prometheus = "127.0.0.1:1"\n', 3,
     ["prometheus is set for every tool in [serve]"]),
    ("toml-syntax", GOOD + "max_args = = 3\n", 3, ["not valid TOML"]),
    ("no-tools", '[serve]\nevents = "-"\n', None, ["no tools to run"]),
    ("bad-otlp-url", '[serve]\notlp = "127.0.0.1:4318"\n\n' + GOOD, 2,
     ["is not an http:// or https:// URL"]),
    ("conflicting-options", GOOD + '\n[tools.rq]\ntool = "runqlat"\nper_process = true\n'
     "per_thread = true\n", 4,
     ["[tools.rq] per-process and per-thread cannot be used together", "pick one grouping"]),
]


def _run(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([COREFRAME, "serve", str(path)], capture_output=True, text=True,
                          timeout=120)


def _check(proc: subprocess.CompletedProcess[str], path: Path, line: int | None,
           words: list[str]) -> None:
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr  # one line, no traceback, nothing started
    where = f"{path}:{line}: " if line else f"{path}: "
    assert lines[0].startswith(f"coreframe: error: {where}"), lines[0]
    for w in words:
        assert w in lines[0], (w, lines[0])
    assert proc.stdout == ""


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_config_is_one_line(tmp_path: Path, case: tuple) -> None:
    _, text, line, words = case
    path = tmp_path / "agent.toml"
    path.write_text(text.replace("{port}", str(free_port())))
    _check(_run(path), path, line, words)


def test_port_in_use_is_a_config_error(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        path = tmp_path / "agent.toml"
        path.write_text(f'[serve]\nevents = "none"\nlisten = "127.0.0.1:{port}"\n\n' + GOOD)
        _check(_run(path), path, 3, [f"127.0.0.1:{port}", "cannot listen", "pick another port"])


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    _check(_run(path), path, None, ["cannot read the config", "No such file"])


def test_check_flag_accepts_a_good_config(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    path.write_text(f'[serve]\nlisten = "127.0.0.1:{free_port()}"\n\n' + GOOD
                    + "\n[tools.reads]\ntool = \"readhist\"\nper-comm = true\n")
    proc = subprocess.run([COREFRAME, "serve", "--check", str(path)], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"{path}: ok (execsnoop, reads)"
