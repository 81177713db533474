"""``coreframe btf min`` and the ``--btf`` of ``coreframe run``, through the console script.

Running with the kernel's BTF hidden is tests/kernel/test_kern_nobtf.py (host and
guests); here: what the commands print, write and refuse.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_helpers import REPO, run_cli

import coreframe
from coreframe.btf.types import BTF

VMLINUX = Path("/sys/kernel/btf/vmlinux")
PLUGINS = REPO / "plugins" / "objects"
needs_vmlinux = pytest.mark.skipif(not VMLINUX.exists(), reason="no kernel BTF")


@needs_vmlinux
def test_btf_min_writes_and_reports_sizes(tmp_path: Path) -> None:
    out = tmp_path / "min.btf"
    objs = [PLUGINS / "execsnoop.bpf.o", PLUGINS / "opensnoop.bpf.o"]
    proc = run_cli("btf", "min", *map(str, objs), "--btf", str(VMLINUX), "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    size, full = out.stat().st_size, len(VMLINUX.read_bytes())
    btf = BTF.from_file(str(out))
    line = proc.stdout.strip()
    assert "\n" not in line
    relos = sum(len(r) for o in objs for r in coreframe.open(o).btf_ext.core_relos.values())
    assert line.startswith(f"wrote {out}: {size} bytes, {len(btf) - 1} types for {relos} CO-RE "
                           "relocations in 2 object(s); full BTF /sys/kernel/btf/vmlinux: "
                           f"{full} bytes"), line
    assert btf.find("task_struct") and btf.find("fdtable")
    # the running kernel's BTF is the default
    again = tmp_path / "again.btf"
    assert run_cli("btf", "min", *map(str, objs), "-o", str(again)).returncode == 0
    assert again.read_bytes() == out.read_bytes()


def test_btf_min_refusals(tmp_path: Path) -> None:
    obj = str(PLUGINS / "execsnoop.bpf.o")
    usage = run_cli("btf", "min", obj)
    assert usage.returncode == 2 and "Missing option '-o'" in usage.stderr
    usage = run_cli("btf", "min", "-o", str(tmp_path / "x"))
    assert usage.returncode == 2 and "Missing argument 'OBJECT...'" in usage.stderr
    notbtf = tmp_path / "notes.txt"
    notbtf.write_text("hello\n")
    bad = run_cli("btf", "min", obj, "--btf", str(notbtf), "-o", str(tmp_path / "x"))
    assert bad.returncode == 1
    assert bad.stderr.count("\n") == 1 and f"--btf {notbtf}: not a BTF file" in bad.stderr
    assert not (tmp_path / "x").exists()


def test_run_btf_option_everywhere(tmp_path: Path) -> None:
    """--btf is offered by every tool (after NAME) and by run itself (before NAME); a
    missing file is a usage error."""
    helped = run_cli("run", "execsnoop", "--help")
    assert helped.returncode == 0 and "--btf FILE" in helped.stdout
    assert "--btf FILE" in run_cli("run", "--help").stdout
    for args in (["run", "execsnoop", "--btf", str(tmp_path / "nope")],
                 ["run", "--btf", str(tmp_path / "nope"), "execsnoop"]):
        proc = run_cli(*args)
        assert proc.returncode == 2, proc.stderr
        assert "'--btf': File" in proc.stderr and "does not exist" in proc.stderr
