"""BPF objects: the spec parsed from an ELF file, and the loader that makes it live.

``coreframe.object.spec`` holds :class:`ObjectSpec` and ``open()``; the reader
(``reader``, ``elf``, ``sections``, ``variables``) turns an ELF file into a spec
without a syscall, and ``loader`` turns a spec into a live :class:`Object`.
"""

from __future__ import annotations

from .parts import MapSpec, ProgramSpec, internal_map_name
from .spec import ObjectSpec, open

__all__ = ["MapSpec", "ObjectSpec", "ProgramSpec", "internal_map_name", "open"]
