"""Make the shared links/ringbuf/perf test kit (tests/links/evkit.py) importable."""

import os
import sys

_KIT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "links")
if _KIT not in sys.path:
    sys.path.insert(0, _KIT)
