"""Run one fuzz target under atheris (libFuzzer), seeded with the project's objects.

Usage: ``python fuzz/fuzz_<target>.py [CORPUS_DIR] [libFuzzer flags]``, e.g.
``-max_total_time=600 -timeout=10 -rss_limit_mb=2048``. Without a corpus
directory the seeds are written to a fresh temporary one. A crash is any
exception other than the target's allowed ones, a timeout or an allocation
over ``-rss_limit_mb``.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable, Iterable


def main(target: Callable[[bytes], None], seeds: Callable[[], Iterable[bytes]]) -> None:
    import atheris

    with atheris.instrument_imports(include=["coreframe", "elftools"]):
        import elftools.elf.elffile  # noqa: F401

        import coreframe.btf.core  # noqa: F401
        import coreframe.btf.ctypegen  # noqa: F401
        import coreframe.btf.dump  # noqa: F401
        import coreframe.btf.ext  # noqa: F401
        import coreframe.btf.types  # noqa: F401
        import coreframe.object.elf  # noqa: F401
        import coreframe.object.spec  # noqa: F401
        import coreframe.object.variables  # noqa: F401

    args = list(sys.argv)
    if not any(not a.startswith("-") for a in args[1:]):
        corpus = tempfile.mkdtemp(prefix="coreframe-fuzz-")
        for i, seed in enumerate(seeds()):
            with open(os.path.join(corpus, f"seed{i:03d}"), "wb") as f:
                f.write(seed)
        args.append(corpus)
    else:
        corpus = next(a for a in args[1:] if not a.startswith("-"))
        os.makedirs(corpus, exist_ok=True)
        if not os.listdir(corpus):
            for i, seed in enumerate(seeds()):
                with open(os.path.join(corpus, f"seed{i:03d}"), "wb") as f:
                    f.write(seed)
    sys.setrecursionlimit(2000)
    atheris.Setup(args, target)
    atheris.Fuzz()
