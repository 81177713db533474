"""A tiny seed mutator for quick runs without atheris (and for the tests' seeds)."""

from __future__ import annotations

import random
import struct


def mutate(data: bytes, rng: random.Random, rounds: int = 4) -> bytes:
    """Apply a few byte-level mutations biased toward header-sized integers."""
    buf = bytearray(data)
    for _ in range(rng.randint(1, rounds)):
        if not buf:
            break
        op = rng.randrange(7)
        pos = rng.randrange(len(buf))
        if op == 0:
            buf[pos] = rng.randrange(256)
        elif op == 1:
            buf[pos] ^= 1 << rng.randrange(8)
        elif op == 2 and pos + 4 <= len(buf):
            val = rng.choice([0, 1, 0xFF, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF, 0x80000000,
                              len(buf), len(buf) + 1, rng.randrange(1 << 32)])
            struct.pack_into("<I", buf, pos - pos % 4, val)
        elif op == 3 and pos + 8 <= len(buf):
            val = rng.choice([0, 1 << 40, (1 << 64) - 1, len(buf) * 2, rng.randrange(1 << 64)])
            struct.pack_into("<Q", buf, pos - pos % 8, val)
        elif op == 4:
            del buf[pos:]
        elif op == 5:
            end = min(len(buf), pos + rng.randrange(1, 64))
            buf[pos:pos] = buf[pos:end]
        else:
            a = rng.randrange(len(buf))
            n = rng.randrange(1, 32)
            buf[pos:pos + n] = buf[a:a + n]
    return bytes(buf)
