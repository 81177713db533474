"""Test kit for links/ringbuf/perf tests: maps and hand-assembled programs.

Until the object loader lands, tests build tiny programs with coreframe.asm and
load them straight through the syscall layer (real kernel, nothing mocked).
"""

from __future__ import annotations

import ctypes
import os
import socket
import struct
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from coreframe import asm as A
from coreframe.sys import consts as C
from coreframe.sys.attr import MapCreateAttr, MapElemAttr, ProgLoadAttr, TestRunAttr
from coreframe.sys.fd import FD
from coreframe.sys.syscall import bpf

BPF_FUNC_map_lookup_elem = 1
BPF_FUNC_get_current_pid_tgid = 14
BPF_FUNC_perf_event_output = 25
BPF_FUNC_ringbuf_output = 130
BPF_FUNC_ringbuf_reserve = 131
BPF_FUNC_ringbuf_discard = 133
BPF_F_CURRENT_CPU = 0xFFFFFFFF
BPF_JGT = 0x20


def is_root() -> bool:
    return os.geteuid() == 0


def map_create(map_type: int, key_size: int, value_size: int, max_entries: int,
               flags: int = 0) -> FD:
    attr = MapCreateAttr(map_type=map_type, key_size=key_size, value_size=value_size,
                         max_entries=max_entries, map_flags=flags)
    return FD(bpf(C.BPF_MAP_CREATE, attr))


def counter_map(entries: int = 1) -> FD:
    return map_create(C.BPF_MAP_TYPE_ARRAY, 4, 8, entries)


def lookup_u64(map_fd: FD, key: int = 0) -> int:
    k = ctypes.c_uint32(key)
    v = ctypes.c_uint64(0)
    attr = MapElemAttr(map_fd=map_fd.fd, key=ctypes.addressof(k), value=ctypes.addressof(v))
    bpf(C.BPF_MAP_LOOKUP_ELEM, attr)
    return v.value


def update_u64(map_fd: FD, key: int, value: int) -> None:
    k = ctypes.c_uint32(key)
    v = ctypes.c_uint64(value)
    attr = MapElemAttr(map_fd=map_fd.fd, key=ctypes.addressof(k), value=ctypes.addressof(v))
    bpf(C.BPF_MAP_UPDATE_ELEM, attr)


class LoadError(Exception):
    pass


def prog_load(prog_type: int, insns: bytes, *, expected_attach_type: int = 0,
              attach_btf_id: int = 0, name: str = "cf_test", prog_flags: int = 0) -> FD:
    buf = ctypes.create_string_buffer(bytes(insns), len(insns))
    lic = ctypes.create_string_buffer(b"GPL")
    log = ctypes.create_string_buffer(1 << 16)
    attr = ProgLoadAttr(prog_type=prog_type, insn_cnt=len(insns) // 8,
                        insns=ctypes.addressof(buf), license=ctypes.addressof(lic),
                        log_level=1, log_size=len(log), log_buf=ctypes.addressof(log),
                        expected_attach_type=expected_attach_type,
                        attach_btf_id=attach_btf_id, prog_name=name.encode()[:15],
                        prog_flags=prog_flags or (C.BPF_F_SLEEPABLE
                                                  if prog_type == C.BPF_PROG_TYPE_SYSCALL
                                                  else 0))
    try:
        return FD(bpf(C.BPF_PROG_LOAD, attr))
    except OSError as e:
        raise LoadError(f"prog_load: {e}\n{log.value.decode(errors='replace')}") from None


@dataclass
class Prog:
    """Stands in for coreframe.programs.Program: links only need ``.fd`` and ``.name``."""

    fd: FD
    name: str = "cf_test"
    type: int = 0
    expected_attach_type: int = 0

    def close(self) -> None:
        self.fd.close()


def run_syscall_prog(prog_fd: FD) -> int:
    attr = TestRunAttr(prog_fd=prog_fd.fd)
    bpf(C.BPF_PROG_RUN, attr)
    return attr.retval


class Asm:
    """Linear program builder with forward jumps to named labels."""

    def __init__(self) -> None:
        self.items: list[bytes | tuple[int, int, int, int, str]] = []
        self.labels: dict[str, int] = {}

    def __iadd__(self, insn: bytes) -> Asm:
        for i in range(0, len(insn), 8):
            self.items.append(insn[i:i + 8])
        return self

    def jmp(self, code: int, dst: int, imm: int, label: str, src: int = 0) -> None:
        self.items.append((code, dst, src, imm, label))

    def label(self, name: str) -> None:
        self.labels[name] = len(self.items)

    def build(self) -> bytes:
        out = bytearray()
        for idx, it in enumerate(self.items):
            if isinstance(it, bytes):
                out += it
            else:
                code, dst, src, imm, label = it
                out += A.encode(code, dst, src, self.labels[label] - idx - 1, imm)
        return bytes(out)


def _ldx(size: int, dst: int, src: int, off: int) -> bytes:
    return A.encode(A.BPF_LDX | A.BPF_MEM | size, dst, src, off, 0)


def _count(a: Asm, map_fd: FD) -> None:
    """map[0] += 1 (atomic); clobbers r0-r5."""
    a += A.encode(A.BPF_ST | A.BPF_MEM | A.BPF_W, A.R10, 0, -4, 0)
    a += A.mov64_reg(A.R2, A.R10)
    a += A.encode(A.BPF_ALU64 | A.BPF_ADD | A.BPF_K, A.R2, 0, 0, -4)
    a += A.ld_imm64(A.R1, map_fd.fd, A.BPF_PSEUDO_MAP_FD)
    a += A.call(BPF_FUNC_map_lookup_elem)
    a.jmp(A.BPF_JMP | A.BPF_JEQ | A.BPF_K, A.R0, 0, "out")
    a += A.mov64_imm(A.R1, 1)
    a += A.encode(A.BPF_STX | A.BPF_ATOMIC | A.BPF_DW, A.R0, A.R1, 0, A.BPF_ADD)


def counter_insns(map_fd: FD, *, pid: int | None = None, ctx_u64_1: int | None = None,
                  ret: int = 0) -> bytes:
    """Count hits in map[0]; optionally only for tgid ``pid`` and when ctx[1] == value."""
    a = Asm()
    a += A.mov64_reg(A.R6, A.R1)
    if ctx_u64_1 is not None:
        a += _ldx(A.BPF_DW, A.R2, A.R6, 8)
        a.jmp(A.BPF_JMP | A.BPF_JNE | A.BPF_K, A.R2, ctx_u64_1, "out")
    if pid is not None:
        a += A.call(BPF_FUNC_get_current_pid_tgid)
        a += A.encode(A.BPF_ALU64 | A.BPF_RSH | A.BPF_K, A.R0, 0, 0, 32)
        a.jmp(A.BPF_JMP | A.BPF_JNE | A.BPF_K, A.R0, pid, "out")
    _count(a, map_fd)
    a.label("out")
    a += A.mov64_imm(A.R0, ret)
    a += A.exit_()
    return a.build()


def udp_counter_insns(map_fd: FD, *, data_off: int, data_end_off: int, port: int,
                      ret: int) -> bytes:
    """Count IPv4/UDP packets to ``port`` (XDP: offsets 0/4; __sk_buff: 76/80)."""
    a = Asm()
    a += A.mov64_reg(A.R6, A.R1)
    a += _ldx(A.BPF_W, A.R2, A.R6, data_off)
    a += _ldx(A.BPF_W, A.R3, A.R6, data_end_off)
    a += A.mov64_reg(A.R4, A.R2)
    a += A.encode(A.BPF_ALU64 | A.BPF_ADD | A.BPF_K, A.R4, 0, 0, 38)
    a.jmp(A.BPF_JMP | BPF_JGT | A.BPF_X, A.R4, 0, "out", src=A.R3)
    a += _ldx(A.BPF_H, A.R4, A.R2, 12)
    a.jmp(A.BPF_JMP | A.BPF_JNE | A.BPF_K, A.R4, 0x0008, "out")
    a += _ldx(A.BPF_B, A.R4, A.R2, 23)
    a.jmp(A.BPF_JMP | A.BPF_JNE | A.BPF_K, A.R4, 17, "out")
    a += _ldx(A.BPF_H, A.R4, A.R2, 36)
    a.jmp(A.BPF_JMP | A.BPF_JNE | A.BPF_K, A.R4, socket.htons(port), "out")
    _count(a, map_fd)
    a.label("out")
    a += A.mov64_imm(A.R0, ret)
    a += A.exit_()
    return a.build()


# ---- producers for ring/perf buffer tests (BPF_PROG_TYPE_SYSCALL, run via BPF_PROG_RUN) ----
#
# Parameters live in params[0] = struct { u32 op; u32 size; u8 data[MAX_PAYLOAD]; }
# (helpers may not read a syscall program's ctx, so the test stages each record in a map).
# op 0: emit data[0:size]; op 1 (ringbuf only): reserve 16 bytes and discard them.
# A failed emit increments drops[0].

MAX_PAYLOAD = 512
OP_EMIT = 0
OP_DISCARD = 1


def params_map() -> FD:
    return map_create(C.BPF_MAP_TYPE_ARRAY, 4, 8 + MAX_PAYLOAD, 1)


def stage(params_fd: FD, op: int, payload: bytes = b"") -> None:
    raw = struct.pack("<II", op, len(payload)) + payload.ljust(MAX_PAYLOAD, b"\0")
    buf = ctypes.create_string_buffer(raw, len(raw))
    k = ctypes.c_uint32(0)
    attr = MapElemAttr(map_fd=params_fd.fd, key=ctypes.addressof(k),
                       value=ctypes.addressof(buf))
    bpf(C.BPF_MAP_UPDATE_ELEM, attr)


def _load_params(a: Asm, params_fd: FD) -> None:
    """r6 = &params[0] (or exit), r7 = op, r8 = size."""
    a += A.encode(A.BPF_ST | A.BPF_MEM | A.BPF_W, A.R10, 0, -4, 0)
    a += A.mov64_reg(A.R2, A.R10)
    a += A.encode(A.BPF_ALU64 | A.BPF_ADD | A.BPF_K, A.R2, 0, 0, -4)
    a += A.ld_imm64(A.R1, params_fd.fd, A.BPF_PSEUDO_MAP_FD)
    a += A.call(BPF_FUNC_map_lookup_elem)
    a.jmp(A.BPF_JMP | A.BPF_JEQ | A.BPF_K, A.R0, 0, "out")
    a += A.mov64_reg(A.R6, A.R0)
    a += _ldx(A.BPF_W, A.R7, A.R6, 0)
    a += _ldx(A.BPF_W, A.R8, A.R6, 4)


def ringbuf_producer_insns(rb_fd: FD, params_fd: FD, drops_fd: FD) -> bytes:
    a = Asm()
    _load_params(a, params_fd)
    a.jmp(A.BPF_JMP | A.BPF_JEQ | A.BPF_K, A.R7, OP_DISCARD, "discard")
    a.jmp(A.BPF_JMP | BPF_JGT | A.BPF_K, A.R8, MAX_PAYLOAD, "out")
    a += A.ld_imm64(A.R1, rb_fd.fd, A.BPF_PSEUDO_MAP_FD)
    a += A.mov64_reg(A.R2, A.R6)
    a += A.encode(A.BPF_ALU64 | A.BPF_ADD | A.BPF_K, A.R2, 0, 0, 8)
    a += A.mov64_reg(A.R3, A.R8)
    a += A.mov64_imm(A.R4, 0)
    a += A.call(BPF_FUNC_ringbuf_output)
    a.jmp(A.BPF_JMP | A.BPF_JEQ | A.BPF_K, A.R0, 0, "out")
    _count(a, drops_fd)
    a.jmp(A.BPF_JMP | A.BPF_JA, 0, 0, "out")
    a.label("discard")
    a += A.ld_imm64(A.R1, rb_fd.fd, A.BPF_PSEUDO_MAP_FD)
    a += A.mov64_imm(A.R2, 16)
    a += A.mov64_imm(A.R3, 0)
    a += A.call(BPF_FUNC_ringbuf_reserve)
    a.jmp(A.BPF_JMP | A.BPF_JEQ | A.BPF_K, A.R0, 0, "out")
    a += A.mov64_reg(A.R1, A.R0)
    a += A.mov64_imm(A.R2, 0)
    a += A.call(BPF_FUNC_ringbuf_discard)
    a.label("out")
    a += A.mov64_imm(A.R0, 0)
    a += A.exit_()
    return a.build()


def perf_producer_insns(pa_fd: FD, params_fd: FD, drops_fd: FD, pid: int) -> bytes:
    """Needs a ctx for bpf_perf_event_output: load as a tracepoint program (tgid ``pid``)."""
    a = Asm()
    a += A.mov64_reg(A.R9, A.R1)
    a += A.call(BPF_FUNC_get_current_pid_tgid)
    a += A.encode(A.BPF_ALU64 | A.BPF_RSH | A.BPF_K, A.R0, 0, 0, 32)
    a.jmp(A.BPF_JMP | A.BPF_JNE | A.BPF_K, A.R0, pid, "out")
    _load_params(a, params_fd)
    a.jmp(A.BPF_JMP | BPF_JGT | A.BPF_K, A.R8, MAX_PAYLOAD, "out")
    a.jmp(A.BPF_JMP | A.BPF_JEQ | A.BPF_K, A.R8, 0, "out")
    a += A.mov64_reg(A.R1, A.R9)
    a += A.ld_imm64(A.R2, pa_fd.fd, A.BPF_PSEUDO_MAP_FD)
    a += A.ld_imm64(A.R3, BPF_F_CURRENT_CPU)
    a += A.mov64_reg(A.R4, A.R6)
    a += A.encode(A.BPF_ALU64 | A.BPF_ADD | A.BPF_K, A.R4, 0, 0, 8)
    a += A.mov64_reg(A.R5, A.R8)
    a += A.call(BPF_FUNC_perf_event_output)
    a.jmp(A.BPF_JMP | A.BPF_JEQ | A.BPF_K, A.R0, 0, "out")
    _count(a, drops_fd)
    a.label("out")
    a += A.mov64_imm(A.R0, 0)
    a += A.exit_()
    return a.build()


# ---- network namespace fixture helpers ----

def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@dataclass
class VethNetns:
    netns: str
    host_if: str
    ns_if: str
    host_addr: str
    ns_addr: str


@contextmanager
def veth_netns(tag: str) -> Iterator[VethNetns]:
    """A netns with one end of a veth pair in it; host end stays here. Always removed."""
    pid = os.getpid()
    ns = f"cf-test-{pid}-{tag}"
    host_if = f"cfh{pid % 100000}{tag[:3]}"[:15]
    ns_if = f"cfn{pid % 100000}{tag[:3]}"[:15]
    sub = 1 + (pid + sum(map(ord, tag))) % 250
    host_addr, ns_addr = f"10.231.{sub}.1", f"10.231.{sub}.2"
    try:
        ip("netns", "add", ns)
        ip("link", "add", host_if, "type", "veth", "peer", "name", ns_if)
        ip("link", "set", ns_if, "netns", ns)
        ip("addr", "add", f"{host_addr}/24", "dev", host_if)
        ip("link", "set", host_if, "up")
        ip("-n", ns, "addr", "add", f"{ns_addr}/24", "dev", ns_if)
        ip("-n", ns, "link", "set", ns_if, "up")
        ip("-n", ns, "link", "set", "lo", "up")
        yield VethNetns(ns, host_if, ns_if, host_addr, ns_addr)
    finally:
        subprocess.run(["ip", "link", "del", host_if], capture_output=True)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def send_udp(src_addr: str, dst_addr: str, port: int, count: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((src_addr, 0))
        for i in range(count):
            s.sendto(b"cf-test-%d" % i, (dst_addr, port))
