"""Makes the shared libbpf oracles (tests/bpf, tests/object) importable here."""

from __future__ import annotations

import sys
from pathlib import Path

_TESTS = Path(__file__).resolve().parents[1]
for _helper_dir in (_TESTS / "bpf", _TESTS / "object"):
    if str(_helper_dir) not in sys.path:
        sys.path.append(str(_helper_dir))

