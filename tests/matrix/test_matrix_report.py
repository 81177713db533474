"""kernels/report.py oracles: the per-kernel account of what the libbpf oracles compared.

test-kernels.sh fails a guest on its ``--guest`` verdict, so the verdict must
catch a guest that compared fewer CO-RE kinds or no trampoline/kprobe program,
and the lines must count exactly what the junit report recorded.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

from coreframe.btf.relo import BPF_CORE_TYPE_MATCHES, KIND_NAMES

ROOT = Path(__file__).resolve().parents[2]
EMITTED = ",".join(KIND_NAMES[k] for k in sorted(KIND_NAMES) if k != BPF_CORE_TYPE_MATCHES)


@pytest.fixture(scope="module")
def report() -> ModuleType:
    spec = importlib.util.spec_from_file_location("cf_report", ROOT / "kernels" / "report.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _case(name: str, props: list[tuple[str, str]], skipped: str | None = None) -> str:
    p = "".join(f'<property name="{k}" value="{v}"/>' for k, v in props)
    s = f'<skipped type="pytest.skip" message="{skipped}"/>' if skipped else ""
    return (f'<testcase classname="tests.kernel.test_kern_x" name="{name}">'
            f"<properties>{p}</properties>{s}</testcase>")


def _junit(tmp_path: Path, *cases: str) -> str:
    path = tmp_path / "junit.xml"
    path.write_text(f'<testsuites><testsuite tests="{len(cases)}">{"".join(cases)}'
                    "</testsuite></testsuites>")
    return str(path)


def test_complete_guest_run_passes_and_is_counted(report: ModuleType, tmp_path: Path) -> None:
    path = _junit(
        tmp_path,
        _case("a", [("core_relos", "71"), ("core_unsatisfied", "3"), ("core_kinds", EMITTED)]),
        _case("b", [("core_relos", "9"), ("core_unsatisfied", "0"), ("core_kinds", "byte_off")]),
        _case("c", [("xlated", "kern_probes.bpf.o:kern_fentry fentry 35")]),
        _case("d", [("xlated", "kern_probes.bpf.o:kern_kprobe kprobe 48")]),
    )
    lines, problems = report.oracles(path, guest=True)
    assert problems == []
    assert lines[0].startswith("CO-RE vs libbpf: 80 relocations in 2 objects (3 unsatisfiable")
    assert "kinds 12/12" in lines[0]
    assert "2 fentry/fexit/kprobe programs identical" in lines[1]
    assert "  kern_probes.bpf.o:kern_fentry (fentry, 35 insns)" in lines
    assert lines[-1] == "skipped: 0"
    assert report.main(["oracles", path, "--guest"]) == 0


def test_guest_missing_comparisons_is_a_problem(report: ModuleType, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    reason = "fexit program: no trampolines"
    path = _junit(
        tmp_path,
        _case("a", [("core_relos", "26"), ("core_kinds", "byte_off")]),
        _case("b[x]", [], skipped=reason),
        _case("b[y]", [], skipped=reason),
        _case("c", [("xlated", "readhist.bpf.o:vfs_read_kret kprobe 148")]),
    )
    lines, problems = report.oracles(path, guest=True)
    assert any(p.startswith("CO-RE kinds not compared: byte_sz,") for p in problems)
    assert "no fentry/fexit program was compared with libbpf" in problems
    assert "no kprobe program was compared with libbpf" not in problems
    assert "skipped: 2, by reason:" in lines
    assert f"  {reason}: test_kern_x::b[x], test_kern_x::b[y]" in lines
    assert report.oracles(path, guest=False)[1] == []  # the host may lack them
    assert report.main(["oracles", path, "--guest"]) == 1
    assert "PROBLEM: no fentry/fexit program" in capsys.readouterr().out


def test_no_report_is_a_problem(report: ModuleType, tmp_path: Path) -> None:
    assert report.oracles(str(tmp_path / "absent.xml"), guest=True)[1] == ["no junit report"]


def test_paths_lists_what_passed_and_every_fallback(report: ModuleType, tmp_path: Path) -> None:
    ioctl = "perf-event attach by ioctl [no BPF perf links]"
    path = _junit(
        tmp_path,
        _case("a", [("attach", "kprobe (ioctl)"), ("fallback", ioctl),
                    ("tool", "execsnoop --buffer perf")]),
        _case("b", [("attach", "kprobe (ioctl)"), ("attach", "raw_tracepoint"),
                    ("tool", "readhist (auto: fexit)"), ("tool", "execsnoop --buffer ringbuf")]),
        _case("c", [("attach", "uprobe (ioctl)"), ("fallback", ioctl),
                    ("tool", "syscount (raw_tp)")], skipped="no uprobes"),
    )
    lines = report.paths(path)
    assert lines[0] == "attach paths passed (tests): kprobe (ioctl) x2, raw_tracepoint x1"
    assert lines[1] == ("tools passed: execsnoop [--buffer perf; --buffer ringbuf], "
                        "readhist [auto: fexit]")
    # a fallback counts even in a test that then skipped: it was taken on this kernel
    assert lines[2:] == ["fallbacks taken:", f"  {ioctl} (in 2 tests)"]
    none = report.paths(_junit(tmp_path, _case("a", [("tool", "x")])))
    assert none[-1] == "fallbacks taken: none"


def test_junit_line_separates_listed_lacking_features(report: ModuleType,
                                                      tmp_path: Path) -> None:
    path = _junit(tmp_path, _case("a", [("feature_lacking_expected", "BPF perf links")]),
                  _case("b", []))
    line = report.junit(path)
    assert "FeatureMissing" not in line  # test-kernels.sh fails a guest whose line says so
    assert line.endswith("as listed for this series (tests took the missing-feature path): "
                         "BPF perf links x1")
