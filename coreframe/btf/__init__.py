"""BTF: type information for BPF objects and the running kernel.

Heavy parts (the kernel index, pyelftools) load lazily; importing this package
only defines the types module.
"""

from __future__ import annotations

from .types import BTF, Kind

__all__ = ["BTF", "Kind", "btf_from_path"]


def btf_from_path(path: str) -> BTF:
    """Parse a raw BTF file, or the ``.BTF`` section of an ELF object."""
    from .kernel import btf_from_path as _impl

    return _impl(path)
