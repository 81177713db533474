"""coreframe: a pure-Python CO-RE eBPF loader and plugin-based tool framework."""

from __future__ import annotations

from .errors import (
    AttachError,
    BTFError,
    Error,
    FeatureMissing,
    LinkError,
    MapError,
    ObjectError,
    PermissionDenied,
    ProgramError,
    RelocationError,
    ToolError,
    VerifierError,
)
from .runtime.startup import gc_paused

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from .object import ObjectSpec
    from .object.loader import Object

__version__ = "0.1.0"

__all__ = [
    "AttachError", "BTFError", "Error", "FeatureMissing", "LinkError", "MapError",
    "Object", "ObjectError", "ObjectSpec", "PermissionDenied", "ProgramError",
    "RelocationError", "ToolError", "VerifierError",
    "open", "__version__",
]


@gc_paused  # the loader's first import allocates like the open itself
def open(path: Any, **kwargs: Any) -> ObjectSpec:  # noqa: A001 - mirrors coreframe.open()
    """Parse a BPF ELF object; nothing reaches the kernel until ``.load()``."""
    from .object import open as _open

    return _open(path, **kwargs)


def __getattr__(name: str) -> Any:
    """``coreframe.ObjectSpec`` and ``coreframe.Object``, imported on first use (so
    ``import coreframe`` stays as light as the error classes)."""
    if name == "ObjectSpec":
        from .object.spec import ObjectSpec as value
    elif name == "Object":
        from .object.loader import Object as value
    else:
        raise AttributeError(f"module 'coreframe' has no attribute {name!r}")
    globals()[name] = value
    return value
