"""BTF kinds as coreframe and bpftool name them: :class:`Kind` (re-exported from
:mod:`coreframe.sys.uapi_btf`, where the ``BTF_KIND_*`` numbers of ``linux/btf.h``
are named), ``KIND_STR`` (bpftool's spelling) and ``SANITIZED_KINDS``.
"""

from __future__ import annotations

from ..sys.uapi_btf import BTF_KIND_UNKN, Kind

__all__ = ["KIND_STR", "SANITIZED_KINDS", "Kind"]

# The BTF kinds and linkages an object may use that older kernels refuse: the sanitizer
# (btf.sanitize) rewrites each into something they take; coreframe.features.btf_kinds
# probes which of them the running kernel accepts.
SANITIZED_KINDS = ("func", "func_global", "datasec", "float", "decl_tag", "type_tag", "enum64")

# How bpftool spells each kind (its btf_kind_str[]): the kind's name, "UNKNOWN" for 0.
KIND_STR: dict[int, str] = {int(k): k.name for k in Kind} | {BTF_KIND_UNKN: "UNKNOWN"}
