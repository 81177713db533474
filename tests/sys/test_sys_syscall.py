"""The raw syscall layer against the real kernel: bpf(), perf_event_open(), ioctl, FD."""

from __future__ import annotations

import ctypes
import errno
import gc
import os
import subprocess
import sys

import pytest

from coreframe import asm
from coreframe.errors import Error, FeatureMissing, PermissionDenied
from coreframe.sys import attr as A
from coreframe.sys import bpf as B
from coreframe.sys import consts as C
from coreframe.sys.errors import raise_for
from coreframe.sys.fd import FD
from coreframe.sys.syscall import bpf, ioctl, perf_event_open

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")

TRIVIAL = asm.mov64_imm(asm.R0, 0) + asm.exit_()


def fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_attr_layouts_match_uapi() -> None:
    assert ctypes.sizeof(A.MapCreateAttr) == 72
    assert A.MapCreateAttr.map_name.offset == 28
    assert A.MapCreateAttr.map_extra.offset == 64
    assert ctypes.sizeof(A.MapElemAttr) == 32
    assert A.ProgLoadAttr.prog_name.offset == 48
    assert A.ProgLoadAttr.fd_array.offset == 120
    assert A.LinkCreateAttr.perf_event.offset == 16
    assert ctypes.sizeof(A.LinkCreateAttr) == 64
    assert ctypes.sizeof(A.PerfEventAttr) == C.PERF_ATTR_SIZE_VER8
    assert A.PerfEventAttr.config1.offset == 56
    assert ctypes.sizeof(A.BpfProgInfo) == 232
    assert A.BpfProgInfo.run_cnt.offset == 200
    assert ctypes.sizeof(A.BpfMapInfo) == 88


def test_attr_layouts_are_built_once_on_first_use() -> None:
    """sys.attr builds each Structure when first asked for (start-up time), exactly once."""
    names = sorted(A._BUILDERS)
    assert len(names) == 36 and set(names) <= set(dir(A))
    for name in names:
        cls = getattr(A, name)
        assert cls.__name__ == name and issubclass(cls, (ctypes.Structure, ctypes.Union))
        assert getattr(A, name) is cls
    assert A.LinkCreateAttr._fields_[-1][1] is A._LinkUnion
    with pytest.raises(AttributeError, match="NoSuchAttr"):
        A.NoSuchAttr  # noqa: B018


def test_ioctl_numbers() -> None:
    assert C.PERF_EVENT_IOC_ENABLE == 0x2400
    assert C.PERF_EVENT_IOC_DISABLE == 0x2401
    assert C.PERF_EVENT_IOC_SET_BPF == 0x40042408
    assert C.PERF_EVENT_IOC_ID == 0x80082407


def test_perf_event_attr_bits() -> None:
    pa = A.PerfEventAttr(type=C.PERF_TYPE_SOFTWARE, config=C.PERF_COUNT_SW_BPF_OUTPUT)
    pa.disabled = 1
    pa.watermark = 1
    pa.wakeup_watermark = 4096
    assert pa.size == 136
    raw = bytes(pa)
    assert int.from_bytes(raw[40:48], "little") == (1 << 0) | (1 << 14)
    assert int.from_bytes(raw[48:52], "little") == 4096
    pa.probe_offset = 0x1234
    assert pa.config2 == 0x1234


def test_bpf_bad_command_raises_oserror() -> None:
    with pytest.raises(OSError) as ei:
        bpf(9999, A.MapElemAttr())
    assert ei.value.errno == errno.EINVAL


def test_fd_owns_and_closes() -> None:
    before = fd_count()
    fd = B.map_create(C.BPF_MAP_TYPE_ARRAY, 4, 4, 1)
    assert isinstance(fd, FD) and fd.fd >= 0 and int(fd) == fd.fileno()
    dup = fd.dup()
    assert dup.fd != fd.fd
    assert fd_count() == before + 2
    fd.close()
    fd.close()  # idempotent
    assert fd.closed
    with pytest.raises(ValueError):
        _ = fd.fd
    with dup:
        pass
    assert dup.closed
    assert fd_count() == before


def test_fd_finalizer_closes_on_gc() -> None:
    before = fd_count()
    B.map_create(C.BPF_MAP_TYPE_ARRAY, 4, 4, 1)  # dropped immediately
    gc.collect()
    assert fd_count() == before


def test_fd_detach() -> None:
    fd = B.map_create(C.BPF_MAP_TYPE_ARRAY, 4, 4, 1)
    raw = fd.detach()
    assert fd.closed
    os.fstat(raw)
    os.close(raw)


def test_map_elem_commands() -> None:
    with B.map_create(C.BPF_MAP_TYPE_HASH, 4, 8, 8, name="t") as m:
        k = (7).to_bytes(4, "little")
        assert B.map_lookup_elem(m, k, 8) is None
        B.map_update_elem(m, k, (99).to_bytes(8, "little"))
        assert B.map_lookup_elem(m, k, 8) == (99).to_bytes(8, "little")
        assert B.map_get_next_key(m, None, 4) == k
        assert B.map_get_next_key(m, k, 4) is None
        with pytest.raises(OSError) as ei:
            B.map_update_elem(m, k, bytes(8), C.BPF_NOEXIST)
        assert ei.value.errno == errno.EEXIST
        res = B.map_lookup_batch(m, 4, 8, 8)
        assert res.count == 1 and res.keys == k and res.next_batch is None
        assert B.map_delete_elem(m, k) is True
        assert B.map_delete_elem(m, k) is False
        assert B.map_update_batch(m, k + (8).to_bytes(4, "little"), bytes(16), 2) == 2
        assert B.map_delete_batch(m, k + (8).to_bytes(4, "little"), 2) == 2
        info = B.map_info(m)
        assert (info.type, info.key_size, info.value_size, info.name) == (
            C.BPF_MAP_TYPE_HASH, 4, 8, b"t")


def test_map_freeze_blocks_writes() -> None:
    with B.map_create(C.BPF_MAP_TYPE_ARRAY, 4, 4, 1) as m:
        B.map_freeze(m)
        with pytest.raises(OSError) as ei:
            B.map_update_elem(m, bytes(4), bytes(4))
        assert ei.value.errno == errno.EPERM


def test_prog_load_and_ids() -> None:
    with B.prog_load(C.BPF_PROG_TYPE_SOCKET_FILTER, TRIVIAL, name="idtest") as p:
        pid = B.prog_info(p).id
        ids = []
        nxt = B.prog_get_next_id(0)
        while nxt is not None:
            ids.append(nxt)
            nxt = B.prog_get_next_id(nxt)
        assert pid in ids
        with B.prog_get_fd_by_id(pid) as again:
            assert B.prog_info(again).name == b"idtest"
        res = B.prog_test_run(p, data_in=bytes(64))
        assert res.retval == 0


def test_prog_load_failure_carries_log() -> None:
    with pytest.raises(OSError) as ei:
        B.prog_load(C.BPF_PROG_TYPE_SOCKET_FILTER, asm.exit_(), log_level=1, log_size=1 << 16)
    assert "R0 !read_ok" in ei.value.log  # type: ignore[attr-defined]


def test_btf_load_and_get_by_id() -> None:
    from coreframe.features import storage_btf

    blob, _, _ = storage_btf()
    with B.btf_load(blob) as btf:
        info = B.btf_info(btf)
        assert info.id > 0 and info.btf_size == len(blob)
        with B.btf_get_fd_by_id(info.id) as again:
            assert B.btf_info(again).id == info.id
        found = []
        nxt = B.btf_get_next_id(0)
        while nxt is not None:
            found.append(nxt)
            nxt = B.btf_get_next_id(nxt)
        assert info.id in found


def test_raw_tracepoint_link() -> None:
    with B.prog_load(C.BPF_PROG_TYPE_RAW_TRACEPOINT, TRIVIAL) as p, \
            B.raw_tracepoint_open("sys_enter", p) as link:
        info = B.link_info(link)
        assert info.type == C.BPF_LINK_TYPE_RAW_TRACEPOINT
        assert info.prog_id == B.prog_info(p).id
        ids = []
        nxt = B.link_get_next_id(0)
        while nxt is not None:
            ids.append(nxt)
            nxt = B.link_get_next_id(nxt)
        assert info.id in ids
        with B.link_get_fd_by_id(info.id) as again:
            assert B.link_info(again).id == info.id


def test_perf_event_open_and_link_create() -> None:
    pa = A.PerfEventAttr(type=C.PERF_TYPE_SOFTWARE, config=C.PERF_COUNT_SW_CPU_CLOCK,
                         sample_period=1_000_000)
    pa.disabled = 1
    with FD(perf_event_open(pa, -1, 0, -1, C.PERF_FLAG_FD_CLOEXEC)) as pe:
        ioctl(pe.fd, C.PERF_EVENT_IOC_ENABLE, 0)
        ioctl(pe.fd, C.PERF_EVENT_IOC_DISABLE, 0)
        with B.prog_load(C.BPF_PROG_TYPE_PERF_EVENT, TRIVIAL) as p, \
                B.link_create(p, pe, C.BPF_PERF_EVENT, bpf_cookie=0xC00C1E) as link:
            assert B.link_info(link).type == C.BPF_LINK_TYPE_PERF_EVENT


def test_enable_stats() -> None:
    with B.enable_stats() as stats:
        assert stats.fd >= 0


def test_raise_for_mapping() -> None:
    with pytest.raises(FeatureMissing):
        raise_for(OSError(errno.EINVAL, "x"), "op", feature="thing")
    with pytest.raises(Error, match="op: Invalid argument"):
        raise_for(OSError(errno.EINVAL, "x"), "op")
    # we are root: EPERM with a feature named means the kernel refuses, not us
    with pytest.raises(FeatureMissing):
        raise_for(OSError(errno.EPERM, "x"), "load fentry", feature="BPF trampolines")


UNPRIV = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all"]


@pytest.mark.unprivileged
def test_unprivileged_map_create_names_cap_bpf() -> None:
    code = (
        "from coreframe.maps import Map\n"
        "from coreframe.sys import consts as C\n"
        "from coreframe.errors import PermissionDenied\n"
        "try:\n"
        "    Map.create(C.BPF_MAP_TYPE_HASH, 4, 4, 1, name='x')\n"
        "except PermissionDenied as e:\n"
        "    print(e)\n"
    )
    out = subprocess.run(UNPRIV + [sys.executable, "-c", code], capture_output=True, text=True,
                         cwd="/", timeout=60)
    assert out.returncode == 0, out.stderr
    line = out.stdout.strip()
    assert "\n" not in line
    assert "CAP_BPF" in line and "permission denied" in line
    _ = PermissionDenied  # the class printed above


def test_500_cycles_do_not_leak_fds() -> None:
    before = fd_count()
    for _ in range(500):
        with B.map_create(C.BPF_MAP_TYPE_HASH, 4, 4, 4):
            pass
        p = B.prog_load(C.BPF_PROG_TYPE_SOCKET_FILTER, TRIVIAL)
        p.close()
    for _ in range(50):
        try:
            B.prog_load(C.BPF_PROG_TYPE_SOCKET_FILTER, asm.exit_(), log_level=1, log_size=4096)
        except OSError:
            pass
    assert fd_count() == before


def test_ioctl_set_bpf_accepts_fd_objects() -> None:
    """PERF_EVENT_IOC_SET_BPF with FD objects for both the event and the program."""
    tp_id_path = "/sys/kernel/tracing/events/syscalls/sys_enter_getpid/id"
    if not os.path.exists(tp_id_path):
        pytest.skip("tracefs syscall tracepoints not available")
    with open(tp_id_path) as f:
        tp_id = int(f.read())
    pa = A.PerfEventAttr(type=C.PERF_TYPE_TRACEPOINT, config=tp_id, sample_period=1)
    with FD(perf_event_open(pa, -1, 0, -1, C.PERF_FLAG_FD_CLOEXEC)) as pe, \
            B.prog_load(C.BPF_PROG_TYPE_TRACEPOINT, TRIVIAL) as prog:
        ioctl(pe, C.PERF_EVENT_IOC_SET_BPF, prog)
        ioctl(pe, C.PERF_EVENT_IOC_ENABLE, 0)
        os.getpid()
        ioctl(pe, C.PERF_EVENT_IOC_DISABLE)


def test_iterator_link_and_task_fd_query() -> None:
    from coreframe.features import _find_vmlinux_func

    btf_id = _find_vmlinux_func("bpf_iter_bpf_map")
    if btf_id is None:
        pytest.skip("no bpf_iter_bpf_map in vmlinux BTF")
    with B.prog_load(C.BPF_PROG_TYPE_TRACING, TRIVIAL, expected_attach_type=C.BPF_TRACE_ITER,
                     attach_btf_id=btf_id) as prog, \
            B.link_create(prog, 0, C.BPF_TRACE_ITER) as link:
        assert B.link_info(link).type == C.BPF_LINK_TYPE_ITER
        with B.iter_create(link) as it:
            assert os.read(it.fd, 4096) == b""  # the program prints nothing
    with B.prog_load(C.BPF_PROG_TYPE_RAW_TRACEPOINT, TRIVIAL) as prog, \
            B.raw_tracepoint_open("sys_enter", prog) as link:
        q = B.task_fd_query(os.getpid(), link.fd)
        assert q.name == "sys_enter" and q.prog_id == B.prog_info(prog).id


def test_capability_checks_as_root() -> None:
    from coreframe.sys.errors import CAPABILITY_FOR, has_capability

    for cap in CAPABILITY_FOR.values():
        assert has_capability(cap), cap
    assert not has_capability("CAP_UNKNOWN")
    with pytest.raises(Error, match="attach: Operation not permitted"):
        raise_for(OSError(errno.EPERM, "x"), "attach", capability=CAPABILITY_FOR["xdp"])


def _cgroup2_root() -> str | None:
    try:
        with open("/proc/self/mounts") as f:
            for line in f:
                parts = line.split()
                if parts[2] == "cgroup2":
                    return parts[1]
    except OSError:
        pass
    return None


def test_cgroup_attach_query_and_link_update() -> None:
    import uuid

    root = _cgroup2_root()
    if root is None:
        pytest.skip("no cgroup2 mount")
    path = os.path.join(root, f"cf_test_{uuid.uuid4().hex[:8]}")
    os.mkdir(path)
    try:
        cg = FD(os.open(path, os.O_RDONLY | os.O_DIRECTORY))
        ret1 = asm.mov64_imm(asm.R0, 1) + asm.exit_()
        with cg, B.prog_load(C.BPF_PROG_TYPE_CGROUP_SKB, ret1, name="a",
                             expected_attach_type=C.BPF_CGROUP_INET_INGRESS) as a, \
                B.prog_load(C.BPF_PROG_TYPE_CGROUP_SKB, ret1, name="b",
                            expected_attach_type=C.BPF_CGROUP_INET_INGRESS) as b:
            a_id, b_id = B.prog_info(a).id, B.prog_info(b).id
            B.prog_attach(cg, a, C.BPF_CGROUP_INET_INGRESS, C.BPF_F_ALLOW_MULTI)
            assert B.prog_query(cg, C.BPF_CGROUP_INET_INGRESS) == [a_id]
            B.prog_detach(cg, a, C.BPF_CGROUP_INET_INGRESS)
            assert B.prog_query(cg, C.BPF_CGROUP_INET_INGRESS) == []
            with B.link_create(a, cg, C.BPF_CGROUP_INET_INGRESS) as link:
                assert B.link_info(link).prog_id == a_id
                B.link_update(link, b)
                assert B.link_info(link).prog_id == b_id
                B.link_detach(link)
            assert B.prog_query(cg, C.BPF_CGROUP_INET_INGRESS) == []
    finally:
        os.rmdir(path)


def test_prog_bind_map_and_lookup_and_delete() -> None:
    with B.prog_load(C.BPF_PROG_TYPE_SOCKET_FILTER, TRIVIAL) as p, \
            B.map_create(C.BPF_MAP_TYPE_HASH, 4, 4, 4) as m:
        B.prog_bind_map(p, m)
        info = B.prog_info(p)
        ids = (ctypes.c_uint32 * info.nr_map_ids)()
        full = B.obj_get_info_by_fd(p, A.BpfProgInfo(nr_map_ids=info.nr_map_ids,
                                                     map_ids=ctypes.addressof(ids)))
        assert list(ids[: full.nr_map_ids]) == [B.map_info(m).id]
        key = (3).to_bytes(4, "little")
        B.map_update_elem(m, key, b"abcd")
        assert B.map_lookup_and_delete_elem(m, key, 4) == b"abcd"
        assert B.map_lookup_and_delete_elem(m, key, 4) is None
