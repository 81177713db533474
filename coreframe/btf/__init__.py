"""BTF: type information for BPF objects and the running kernel.

``types`` (the BTF parser with lazy type decoding), ``kinds`` (BTF kinds as named
ints), ``ext`` (.BTF.ext), ``kernel`` (the running kernel's BTF and its cached name
index), ``core``/``relo``/``replay`` (CO-RE), ``sanitize``, ``dump``, ``ctypegen``.
Importing this package imports none of them: ``BTF`` and ``Kind`` are read from
their modules on first use, so a module needing only the kinds does not pay for
the parser.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from .types import BTF

__all__ = ["BTF", "Kind", "btf_from_path"]


def __getattr__(name: str) -> Any:
    if name == "BTF":
        from .types import BTF as value
    elif name == "Kind":
        from .kinds import Kind as value
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def btf_from_path(path: str) -> BTF:
    """Parse a raw BTF file, or the ``.BTF`` section of an ELF object."""
    from .kernel import btf_from_path as _impl

    return _impl(path)
