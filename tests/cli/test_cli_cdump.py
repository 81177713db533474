"""`coreframe btf dump FILE --format c` and the C spelling of types, through the console
script; bad input answers in one line."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from cli_helpers import REPO, run_cli

EXECSNOOP = REPO / "plugins" / "objects" / "execsnoop.bpf.o"


@pytest.mark.skipif(shutil.which("bpftool") is None, reason="bpftool not installed")
@pytest.mark.parametrize("form", [["--format", "c"], ["--format=c"]], ids=["sep", "eq"])
def test_format_c_of_an_object_is_bpftools(form: list[str]) -> None:
    ours = run_cli("btf", "dump", str(EXECSNOOP), *form)
    assert ours.returncode == 0, ours.stderr
    theirs = subprocess.run(["bpftool", "btf", "dump", "file", str(EXECSNOOP), "format", "c"],
                            capture_output=True, text=True, check=True)
    assert ours.stdout == theirs.stdout


@pytest.mark.skipif(not os.path.exists("/sys/kernel/btf/vmlinux"), reason="no kernel BTF")
def test_format_c_of_the_kernel_is_a_header() -> None:
    r = run_cli("--debug", "btf", "dump", "/sys/kernel/btf/vmlinux", "--format", "c")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("#ifndef __VMLINUX_H__\n#define __VMLINUX_H__\n")
    assert r.stdout.endswith("#endif /* __VMLINUX_H__ */\n")
    assert "\nstruct task_struct {\n" in r.stdout


@pytest.mark.parametrize(("make", "fragment"), [
    (lambda d: d.joinpath("foo.bpf.c").write_text("// SPDX\nint x;\n"),
     "neither raw BTF (magic 0xeb9f) nor an ELF object with a .BTF section"),
    (lambda d: shutil.copy("/bin/true", d / "true"), "ELF object has no .BTF section"),
], ids=["c-source", "elf-without-btf"])
@pytest.mark.parametrize("fmt", ["raw", "c"])
def test_not_btf_is_one_line(tmp_path: Path, make, fragment: str, fmt: str) -> None:
    make(tmp_path)
    path = next(tmp_path.iterdir())
    r = run_cli("btf", "dump", str(path), "--format", fmt)
    assert r.returncode == 1
    assert r.stdout == ""
    hint = " (build with clang -g)" if fragment.startswith("ELF") else ""
    assert r.stderr.splitlines() == [f"coreframe: error: {path}: {fragment}{hint}"]


def test_unknown_format_is_a_usage_error() -> None:
    r = run_cli("btf", "dump", str(EXECSNOOP), "--format", "h")
    assert r.returncode == 2
    assert "'raw', 'json', 'c'" in r.stderr


def test_inspect_puts_pointer_qualifiers_on_the_pointer() -> None:
    """issue #23: `const volatile struct exit_event *const volatile exit_event_type`."""
    r = run_cli("object", "inspect", str(EXECSNOOP))
    assert r.returncode == 0, r.stderr
    line = next(x for x in r.stdout.splitlines() if " exit_event_type " in x)
    assert "const volatile struct exit_event *const volatile" in line
    assert "const const" not in r.stdout
