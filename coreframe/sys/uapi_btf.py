"""BTF constants, named and numbered as in the kernel's ``include/uapi/linux/btf.h``,
and :class:`Kind`, the ``BTF_KIND_*`` numbers as named ints
(``Kind.STRUCT.name == "STRUCT"``).

The one source of these facts: ``coreframe.sys.consts`` re-exports the constants
with the other UAPI constants (``__all__``: the ``BTF_*`` names), and the BTF
parser, sanitizer and CO-RE matcher compare against them. Kept apart from
``consts`` because reading a cached object needs only these; ``Kind`` is built
here, not in the btf package, so that a warm open (``btf.types`` needs the kinds
to define its type classes) loads one module for all of ``linux/btf.h``.
"""

from __future__ import annotations

from ..runtime.startup import KernelEnum as _KernelEnum

BTF_MAGIC = 0xEB9F
BTF_VERSION = 1
BTF_HDR_MIN = 24  # sizeof(struct btf_header); hdr_len may be larger

# BTF_INFO_KIND(): bits 24-28 of btf_type.info
BTF_KIND_UNKN = 0
BTF_KIND_INT = 1
BTF_KIND_PTR = 2
BTF_KIND_ARRAY = 3
BTF_KIND_STRUCT = 4
BTF_KIND_UNION = 5
BTF_KIND_ENUM = 6
BTF_KIND_FWD = 7
BTF_KIND_TYPEDEF = 8
BTF_KIND_VOLATILE = 9
BTF_KIND_CONST = 10
BTF_KIND_RESTRICT = 11
BTF_KIND_FUNC = 12
BTF_KIND_FUNC_PROTO = 13
BTF_KIND_VAR = 14
BTF_KIND_DATASEC = 15
BTF_KIND_FLOAT = 16
BTF_KIND_DECL_TAG = 17
BTF_KIND_TYPE_TAG = 18
BTF_KIND_ENUM64 = 19

# BTF_INT_ENCODING(): the encoding bits of a BTF_KIND_INT
BTF_INT_SIGNED = 1 << 0
BTF_INT_CHAR = 1 << 1
BTF_INT_BOOL = 1 << 2

# enum btf_func_linkage
BTF_FUNC_STATIC = 0
BTF_FUNC_GLOBAL = 1
BTF_FUNC_EXTERN = 2

# enum (variable linkage) of struct btf_var
BTF_VAR_STATIC = 0
BTF_VAR_GLOBAL_ALLOCATED = 1
BTF_VAR_GLOBAL_EXTERN = 2

# Only the kernel's names: ``sys.consts`` re-exports them with ``import *``.
__all__ = [name for name in globals() if name.startswith("BTF_")]

_PREFIX = "BTF_KIND_"

Kind = type(_KernelEnum)("Kind", (_KernelEnum,), {
    "__doc__": "BTF kinds, numbered and named as ``BTF_KIND_*`` in linux/btf.h.",
    "__module__": __name__,
    **{k[len(_PREFIX):]: v for k, v in globals().items() if k.startswith(_PREFIX)},
})
