"""BTF kinds as named ints: :class:`Kind` (``Kind.STRUCT.name == "STRUCT"``).

Numbers and names are the ``BTF_KIND_*`` constants of ``linux/btf.h``
(:mod:`coreframe.sys.uapi_btf`), not spelled again here.
"""

from __future__ import annotations

from ..runtime.records import KernelEnum
from ..sys import uapi_btf

_PREFIX = "BTF_KIND_"

Kind = type(KernelEnum)("Kind", (KernelEnum,), {
    "__doc__": "BTF kinds, numbered and named as ``BTF_KIND_*`` in linux/btf.h.",
    "__module__": __name__,
    **{k[len(_PREFIX):]: v for k, v in vars(uapi_btf).items() if k.startswith(_PREFIX)},
})

# The BTF kinds and linkages an object may use that older kernels refuse: the sanitizer
# (btf.sanitize) rewrites each into something they take; coreframe.features.btf_kinds
# probes which of them the running kernel accepts.
SANITIZED_KINDS = ("func", "func_global", "datasec", "float", "decl_tag", "type_tag", "enum64")

# How bpftool spells each kind (its btf_kind_str[]): the kind's name, "UNKNOWN" for 0.
KIND_STR: dict[int, str] = {int(k): k.name for k in Kind} | {uapi_btf.BTF_KIND_UNKN: "UNKNOWN"}
