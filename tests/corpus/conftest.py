"""Makes the shared libbpf oracles (tests/bpf, tests/object) importable here, and
ends a corpus run with a count of what was compared, object by object."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

_TESTS = Path(__file__).resolve().parents[1]
for _helper_dir in (_TESTS / "bpf", _TESTS / "object"):
    if str(_helper_dir) not in sys.path:
        sys.path.append(str(_helper_dir))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    oracle = sys.modules.get("corpus_oracle")
    if oracle is None or not oracle.OUTCOMES:
        return
    from corpus_extract import default_cache_dir
    from corpus_summary import corpus_summary

    terminalreporter.section("corpus summary")
    for line in corpus_summary(oracle.OUTCOMES, default_cache_dir()):
        terminalreporter.write_line(line)
