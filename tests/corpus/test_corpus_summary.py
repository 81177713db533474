"""The corpus summary counts objects by what was compared, not by what was found."""

from __future__ import annotations

from pathlib import Path

from corpus_summary import corpus_summary

CACHE = Path("/cache")
EPERM = ("oracle: libbpf cannot load it here (EPERM); coreframe: FeatureMissing: kernel "
         "feature missing: BPF trampolines (fentry/fexit/fmod_ret/lsm/freplace) (the kernel ...)")
ESRCH = ("oracle: libbpf cannot load it here (ESRCH); coreframe: AttachError: kernel "
         "function 'md_flush_request' not found in vmlinux or module BTF")


def test_objects_without_a_compared_program_are_counted_apart() -> None:
    lines = corpus_summary({
        "/cache/libbpf-tools/opensnoop.bpf.o": {"a": ("compared", ""), "b": ("skipped", EPERM)},
        "/cache/libbpf-tools/cachestat.bpf.o": {"x": ("skipped", EPERM), "y": ("skipped", EPERM)},
        "/cache/libbpf-tools/mdflush.bpf.o": {"m": ("skipped", ESRCH)},
        "/cache/libbpf-tools/broken.bpf.o": {"p": ("failed", "xlated insn 3 differs")},
        "/cache/variants/mcpu-v1/obj_calls.bpf.o": {"calls_a": ("compared", "")},
    }, CACHE)
    assert lines == [
        "corpus libbpf-tools: 4 objects checked, 1 with programs compared with libbpf "
        "(1 of 6 programs), 3 with none compared",
        "  broken (1 program): failed",
        "  cachestat (2 programs): EPERM: kernel feature missing: BPF trampolines",
        "  mdflush (1 program): ESRCH: kernel function 'md_flush_request' not found in "
        "vmlinux or module BTF",
        "corpus variants: 1 objects checked, 1 with programs compared with libbpf "
        "(1 of 1 programs), 0 with none compared",
    ]
