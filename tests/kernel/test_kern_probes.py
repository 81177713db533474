"""kprobe, kretprobe, fentry and fexit links attach and fire, with exact counts.

The programs (tests/objects/kern_probes.bpf.c) count reads of exactly MAGIC
bytes by this process; the entry programs also record the inode number through
CO-RE reads of struct file / struct inode, which must match fstat().
"""

from __future__ import annotations

import os
import struct

import pytest
from kernkit import OBJECTS, Expect

import coreframe
from coreframe import features
from coreframe.errors import FeatureMissing

pytestmark = pytest.mark.kernel

OBJ = OBJECTS / "kern_probes.bpf.o"
MAGIC = 12347
READS = 7
HIT = struct.Struct("<QqQ")
# program name -> (map slot, link kind, sees the file, feature probe, feature name)
KINDS = {
    "kern_kprobe": (0, "kprobe", True, features.has_kprobe, "kprobes"),
    "kern_kretprobe": (1, "kprobe", False, features.has_kprobe, "kprobes"),
    "kern_fentry": (2, "fentry", True, features.has_trampoline, "BPF trampolines"),
    "kern_fexit": (3, "fexit", True, features.has_trampoline, "BPF trampolines"),
}


def _load_one(prog: str) -> coreframe.object.loader.Object:
    spec = coreframe.open(str(OBJ))
    for name, p in spec.programs.items():
        p.autoload = name == prog
    spec.rodata.targ_tgid = os.getpid()
    spec.rodata.magic_count = MAGIC
    return spec.load()


@pytest.mark.parametrize("prog", list(KINDS))
def test_probe_attaches_and_fires(prog: str, expect_feature: Expect) -> None:
    slot, kind, sees_file, probe, feature = KINDS[prog]
    if not expect_feature(probe(), feature):
        with pytest.raises(FeatureMissing):
            with _load_one(prog) as obj:
                obj.attach()
        return
    fd = os.open("/dev/zero", os.O_RDONLY)
    try:
        with _load_one(prog) as obj:
            links = obj.attach()
            if kind == "kprobe" and not features.has_bpf_link():
                kind += " (ioctl)"  # no BPF perf links before 5.15: libbpf's ioctl way
            assert [link.kind for link in links] == [kind]
            for _ in range(READS):
                assert len(os.read(fd, MAGIC)) == MAGIC
            hits, last, ino = HIT.unpack(obj.maps.hits.raw.lookup(slot))
            links[0].close()
            os.read(fd, MAGIC)
            after = HIT.unpack(obj.maps.hits.raw.lookup(slot))[0]
        assert hits == READS
        assert last == MAGIC
        assert after == READS, "the probe still fired after its link was closed"
        if sees_file:
            assert ino == os.fstat(fd).st_ino
    finally:
        os.close(fd)
