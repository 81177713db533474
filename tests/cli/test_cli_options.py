"""coreframe.options: the click-free parser of `coreframe run` accepts only what click
accepts, with the same values (differential against click itself)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import click
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coreframe.options import (
    Choice,
    Directory,
    FloatRange,
    IntRange,
    Option,
    parse,
    to_click_params,
)

ROOT = Path(__file__).resolve().parents[2]
DIR = tempfile.gettempdir()

PARAMS = [
    Option("-T", "--time", is_flag=True),
    Option("-x", "--fails", is_flag=True),
    Option("-u", "--uid", type=IntRange(min=0, max=2**32 - 2)),
    Option("-n", "--name"),
    Option("-c", "--cgroup", type=Directory()),
    Option("--max-args", type=IntRange(1, 60), default=20, show_default=True),
    Option("--json", "as_json", is_flag=True),
    Option("-i", "--interval", type=FloatRange(min=0.01)),
    Option("--buffer", type=Choice(["auto", "ringbuf", "perf"]), default="auto"),
    Option("--count", type=int, default=3),
]

TOKENS = [
    "-T", "-x", "-Tx", "-xT", "-xu", "-u", "-u5", "-uabc", "5", "0", "-1", "4294967294",
    "4294967295", "1_000", " 7 ", "--uid", "--uid=9", "--uid=", "-n", "--name", "--name=sh",
    "bash", "-nfoo", "-c", DIR, "/nonexistent", "--cgroup=" + DIR, "--max-args", "--max-args=60",
    "61", "--json", "--json=1", "-i", "0.5", "0.001", "nan", "inf", "--interval=2",
    "--buffer", "perf", "PERF", "--buffer=ringbuf", "--count", "--count=-2", "-h", "--help",
    "--", "-", "--tim", "--bogus", "-z", "",
]


def click_parse(params: list[Any], args: list[str]) -> dict[str, Any] | None:
    cmd = click.Command("t", params=to_click_params(params, click))
    try:
        with cmd.make_context("t", list(args)) as ctx:
            return dict(ctx.params)
    except (click.exceptions.ClickException, click.exceptions.Exit):
        return None


@settings(max_examples=3000, deadline=None)
@given(st.lists(st.sampled_from(TOKENS), max_size=6))
def test_fast_parse_agrees_with_click(args: list[str]) -> None:
    fast = parse(PARAMS, args)
    if fast is None:
        return
    assert click_parse(PARAMS, args) == fast, args


@pytest.mark.parametrize("args", [
    [], ["-x"], ["-Tx"], ["-x", "--json"], ["-u", "1000"], ["-u1000", "-x"], ["--uid=0"],
    ["-xu", "7"], ["--max-args", "5"], ["--max-args=60"], ["-n", "bash", "-T"],
    ["-c", DIR], ["-i", "0.5", "--count", "2"], ["--buffer", "perf"], ["--json", "--json"],
])
def test_plain_command_lines_take_the_fast_path(args: list[str]) -> None:
    fast = parse(PARAMS, args)
    assert fast is not None, args
    assert fast == click_parse(PARAMS, args)


@pytest.mark.parametrize("args", [
    ["--help"], ["-h"], ["--bogus"], ["extra"], ["-u", "-1"], ["-u", "x"], ["--uid=-5"],
    ["--max-args", "61"], ["-c", "/nonexistent"], ["--json=1"], ["--buffer", "PERF"], ["--"],
])
def test_everything_else_goes_to_click(args: list[str]) -> None:
    assert parse(PARAMS, args) is None


def test_click_parameters_disable_the_fast_path() -> None:
    assert parse([click.Option(["-x"], is_flag=True)], ["-x"]) is None


def test_declarations_name_the_keyword_like_click() -> None:
    for opt in PARAMS:
        assert opt.name == opt.to_click(click).name
    with pytest.raises(TypeError):
        Option("name_only")
    with pytest.raises(TypeError):
        Option("-x", type=list)


def _imports_of(argv: list[str]) -> tuple[set[str], subprocess.CompletedProcess[str]]:
    code = ("import sys; from coreframe.cli import main; sys.argv = ['coreframe'] + sys.argv[1:]\n"
            "try:\n    main()\nfinally:\n"
            "    sys.stderr.write('MODULES ' + ' '.join(sorted(sys.modules)) + '\\n')\n")
    proc = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True,
                          timeout=60, cwd=ROOT)
    line = [x for x in proc.stderr.splitlines() if x.startswith("MODULES ")][-1]
    return set(line.split()[1:]), proc


def test_run_help_and_errors_still_come_from_click() -> None:
    mods, proc = _imports_of(["run", "readhist", "--pid", "0"])
    assert proc.returncode == 2
    assert "Invalid value for '-p' / '--pid'" in proc.stderr
    assert "click" in mods


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to load BPF")
def test_run_imports_none_of_the_slow_modules() -> None:
    """Each of these costs milliseconds of every tool's start-up (see coreframe.cli.entry)."""
    mods, proc = _imports_of(["run", "execsnoop", "-x", "--duration", "0"])
    assert proc.returncode == 0, proc.stderr
    slow = {"click", "stevedore", "email", "zipfile", "typing", "re", "logging", "dataclasses",
            "enum", "signal", "contextlib", "collections", "functools", "threading", "array",
            "weakref", "ctypes", "operator", "resource"}
    # what the interpreter loads before any code runs is not coreframe's doing (3.9's
    # site imports re, typing, enum, ...; 3.11's does not)
    bare = set(subprocess.run([sys.executable, "-c", "import sys; print(' '.join(sys.modules))"],
                              capture_output=True, text=True, check=True).stdout.split())
    heavy = {m for m in mods - bare
             if m.split(".")[0] in slow or m == "importlib.metadata"}
    assert not heavy, f"coreframe run imported {sorted(heavy)}"
    # the first run cached the parsed object, its sanitized BTF and its CO-RE results:
    # a second one reads neither the ELF nor the kernel's BTF, and sanitizes nothing
    mods, proc = _imports_of(["run", "execsnoop", "-x", "--duration", "0"])
    assert proc.returncode == 0, proc.stderr
    assert not {"coreframe.object.reader", "coreframe.btf.sanitize", "coreframe.btf.core"} & mods
