"""One mutant's test run (cosmic-ray's test-command): pytest -x on the given tests.

Each run gets its own empty COREFRAME_CACHE_DIR: a spec or BTF index cached while
one mutant was planted must not be read back while the next one is.
"""

from __future__ import annotations

import os
import sys
import tempfile

if __name__ == "__main__":
    with tempfile.TemporaryDirectory(prefix="cf-mutant-cache-") as cache:
        os.environ["COREFRAME_CACHE_DIR"] = cache
        import pytest

        sys.exit(pytest.main(["-x", "-q", "-p", "no:cacheprovider", *sys.argv[1:]]))
