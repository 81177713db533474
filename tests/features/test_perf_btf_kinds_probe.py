"""The sanitizer's one-shot BTF kinds probe agrees with the per-kind probes."""

from __future__ import annotations

import os

import pytest

from coreframe import features as F
from coreframe.btf import kinds as K
from coreframe.btf import sanitize

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")


def test_combined_probe_matches_per_kind_probes() -> None:
    per_kind = {
        "func": F.has_btf_kind(K.BTF_KIND_FUNC),
        "func_global": F.has_btf_func_global(),
        "datasec": F.has_btf_kind(K.BTF_KIND_DATASEC),
        "float": F.has_btf_kind(K.BTF_KIND_FLOAT),
        "decl_tag": F.has_btf_kind(K.BTF_KIND_DECL_TAG),
        "type_tag": F.has_btf_kind(K.BTF_KIND_TYPE_TAG),
        "enum64": F.has_btf_kind(K.BTF_KIND_ENUM64),
    }
    assert F.has_all_sanitized_btf_kinds() == all(per_kind.values())
    assert sanitize._kernel_kinds() == per_kind
    assert set(per_kind) == set(sanitize.KERNEL_KINDS)


def test_kernel_6_18_takes_every_kind_in_one_load() -> None:
    assert F.has_all_sanitized_btf_kinds() is True
