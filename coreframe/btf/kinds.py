"""BTF's kernel facts, one source: the constants of ``include/uapi/linux/btf.h``
(kinds, INT encodings, linkages, magic; named and numbered as in the header),
:class:`Kind` (the ``BTF_KIND_*`` numbers as named ints,
``Kind.STRUCT.name == "STRUCT"``), bpftool's spelling of each kind (``KIND_STR``)
and the kinds the sanitizer may have to rewrite (``SANITIZED_KINDS``).

The btf package owns its header, as cilium/ebpf's btf package does: the syscall
layer (``coreframe.sys``) only passes BTF blobs to the kernel and never needs
these, and reading a cached object (``btf.types``, ``btf.ext``) then needs this one
module and not the ``sys`` package.
"""

from __future__ import annotations

from ..runtime.startup import KernelEnum

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

_PREFIX = "BTF_KIND_"

Kind = type(KernelEnum)("Kind", (KernelEnum,), {
    "__doc__": "BTF kinds, numbered and named as ``BTF_KIND_*`` in linux/btf.h.",
    "__module__": __name__,
    **{k[len(_PREFIX):]: v for k, v in globals().items() if k.startswith(_PREFIX)},
})

# The BTF kinds and linkages an object may use that older kernels refuse: the sanitizer
# (btf.sanitize) rewrites each into something they take; coreframe.features.btf_kinds
# probes which of them the running kernel accepts.
SANITIZED_KINDS = ("func", "func_global", "datasec", "float", "decl_tag", "type_tag", "enum64")

# How bpftool spells each kind (its btf_kind_str[]): the kind's name, "UNKNOWN" for 0.
KIND_STR: dict[int, str] = {int(k): k.name for k in Kind} | {BTF_KIND_UNKN: "UNKNOWN"}
