"""Bad user input: every case is one line on stderr/stdout, exit 1, no traceback."""

from __future__ import annotations

import struct
from pathlib import Path

import hardkit
import pytest

pytestmark = pytest.mark.skipif(not hardkit.have_clang(), reason="needs clang and bpf/vmlinux.h")


@pytest.fixture(scope="module")
def objs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("hard_cli")
    out = {
        "good": hardkit.build(d, "good"),
        "tp_btf_missing": hardkit.build(d, "tpbtf", sec="tp_btf/no_such_tracepoint_xyz"),
        "fentry_missing": hardkit.build(d, "fentry", sec="fentry/no_such_function_xyz"),
        "uprobe_missing": hardkit.build(d, "uprobe", sec="uprobe//bin/true:no_such_symbol_xyz"),
        "tp_missing": hardkit.build(d, "tp", sec="tracepoint/no_such_cat/no_such_event"),
        "bpfeb": hardkit.build(d, "bpfeb", target="bpfeb"),
        "x86": hardkit.build(d, "x86", target="x86_64"),
    }
    # The same BPF object relabelled as AArch64: another architecture, otherwise intact.
    data = bytearray(out["good"].read_bytes())
    struct.pack_into("<H", data, 18, 183)
    out["aarch64"] = d / "aarch64.o"
    out["aarch64"].write_bytes(bytes(data))
    out["text"] = d / "notes.txt"
    out["text"].write_text("not an object\n")
    return out


CASES = [
    # (id, argv with {object} placeholders, expected fragment)
    ("unknown-tool", ["run", "no_such_tool"], "unknown tool 'no_such_tool'"),
    ("unknown-tool-info", ["info", "no_such_tool"], "unknown tool 'no_such_tool'"),
    ("unknown-variable", ["object", "load", "{good}", "--set", "nope=1"],
     "no global variable 'nope'"),
    ("set-out-of-range", ["object", "load", "{good}", "--set", "hard_knob=4294967296"],
     "out of range"),
    ("set-negative-unsigned", ["object", "load", "{good}", "--set", "hard_knob=-1"],
     "out of range"),
    ("set-mistyped", ["object", "load", "{good}", "--set", "hard_knob=abc"], "not an integer"),
    ("non-bpf-elf", ["object", "load", "/bin/true"], "not a BPF object"),
    ("not-elf", ["object", "inspect", "{text}"], "not an ELF file"),
    ("x86-object", ["object", "load", "{x86}"], "machine is x86-64"),
    ("aarch64-object", ["object", "inspect", "{aarch64}"], "machine is AArch64"),
    ("big-endian-bpf", ["object", "load", "{bpfeb}"], "big-endian"),
    ("btf-dump-not-btf", ["btf", "dump", "{text}"],
     "neither raw BTF (magic 0xeb9f) nor an ELF object with a .BTF section"),
    ("btf-dump-no-btf-section", ["btf", "dump", "{x86}"], "no .BTF section"),
    ("tp-btf-missing-target", ["object", "load", "{tp_btf_missing}"],
     "no_such_tracepoint_xyz not found"),
    ("fentry-missing-function", ["object", "load", "{fentry_missing}"],
     "'no_such_function_xyz' not found"),
    ("uprobe-missing-symbol", ["object", "load", "{uprobe_missing}", "--attach",
                               "--duration", "0"], "symbol 'no_such_symbol_xyz' not found"),
    ("tracepoint-missing", ["object", "load", "{tp_missing}", "--attach", "--duration", "0"],
     "no tracepoint 'no_such_cat:no_such_event'"),
    ("kprobe-method-missing", ["run", "readhist", "--method", "kretprobe", "--duration", "0"],
     "kprobes"),
]


@pytest.mark.parametrize(("argv", "fragment"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_line(objs: dict[str, Path], argv: list[str], fragment: str) -> None:
    args = [a.format(**{k: str(v) for k, v in objs.items()}) for a in argv]
    res = hardkit.run_cli(*args)
    text = res.stdout + res.stderr
    lines = [ln for ln in text.splitlines() if ln.strip()]
    assert res.returncode == 1, text
    assert "Traceback" not in text
    assert len(lines) == 1, text
    assert fragment in lines[0], text


# What the command line alone shows wrong is a usage error: click's usage block, exit 2.
USAGE_CASES = [
    ("set-no-equals", ["object", "load", "{good}", "--set", "hard_knob"],
     "Error: Invalid value for '--set': 'hard_knob' is not NAME=VALUE (e.g. --set hard_knob=1)"),
    ("duration-without-attach", ["object", "load", "{good}", "--duration", "1"],
     "Error: --duration needs --attach"),
    ("missing-option-value", ["run", "readhist", "-p"], "Error: Option '-p' requires an argument."),
]


@pytest.mark.parametrize(("argv", "fragment"), [c[1:] for c in USAGE_CASES],
                         ids=[c[0] for c in USAGE_CASES])
def test_usage_error_is_exit_2(objs: dict[str, Path], argv: list[str], fragment: str) -> None:
    args = [a.format(**{k: str(v) for k, v in objs.items()}) for a in argv]
    res = hardkit.run_cli(*args)
    text = res.stdout + res.stderr
    assert res.returncode == 2, text
    assert "Traceback" not in text
    assert res.stderr.startswith("Usage: coreframe "), text
    errors = [ln for ln in text.splitlines() if ln.startswith("Error: ")]
    assert len(errors) == 1 and errors[0].startswith(fragment), text


def test_no_such_interface_is_attach_error(objs: dict[str, Path], tmp_path: Path) -> None:
    """The CLI has no interface option; the API names the missing interface."""
    import coreframe
    from coreframe.errors import AttachError
    from coreframe.links import attach_xdp

    d = tmp_path
    xdp = hardkit.build(d, "xdp", sec="xdp")
    with coreframe.open(str(xdp)).load() as obj:
        prog = obj.programs["hard_prog"]
        with pytest.raises(AttachError, match="no network interface 'hardnosuch0'"):
            attach_xdp(prog, "hardnosuch0")


def test_hostile_objects_through_the_cli(tmp_path: Path) -> None:
    """Mutated objects end to end: exit 0 or 1, at most one error line, never a bug report."""
    import random
    import sys

    sys.path.insert(0, str(hardkit.REPO / "fuzz"))
    import fuzzmutate
    import fuzztargets

    rng = random.Random(20261122)
    seeds = fuzztargets.seed_objects()
    for i in range(12):
        path = tmp_path / f"mutant{i}.bpf.o"
        path.write_bytes(fuzzmutate.mutate(rng.choice(seeds), rng))
        for argv in (["object", "inspect", str(path)], ["btf", "dump", str(path)]):
            res = hardkit.run_cli(*argv)
            assert res.returncode in (0, 1), res.stderr
            assert "Traceback" not in res.stderr and "internal error" not in res.stderr
            if res.returncode:
                assert len(res.stderr.strip().splitlines()) == 1, res.stderr
