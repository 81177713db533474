"""A deterministic workload for the USDT tests, run by /usr/bin/python3.11.

It waits until the test says it is traced (a line on stdin, so every call below
happens while the probes are attached), then calls four functions known numbers
of times and prints one line with the counts it made; nothing else runs in
between, so a tracer must see exactly these calls of these functions.

alpha, beta and gamma_fn are called from Python code, which CPython 3.11 reports
at function__entry only while its `line` semaphore is set; keyfn is called from
C (by sorted()). catcher calls boom, which raises; gen is a generator.
"""

import gc
import sys


def alpha(n):
    return n + 1


def beta(n):
    return alpha(n) * 2


def gamma_fn(n):
    total = 0
    for i in range(n):
        total += beta(i)
    return total


def keyfn(n):
    return -n


def gen(n):
    yield from range(n)


def boom():
    raise ValueError("expected")


def catcher():
    try:
        boom()
    except ValueError:
        return 1


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    gcs = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    print("ready", flush=True)
    sys.stdin.readline()
    for _ in range(rounds):
        gamma_fn(5)
    sorted(range(rounds), key=keyfn)
    for _ in range(rounds):
        # a call that ends by raising, and a generator: entered at its first line, then
        # resumed (another function__entry, at the `yield` line) once per item and at the end
        catcher()
        list(gen(2))
    for _ in range(gcs):
        gc.collect()
    # gamma_fn: rounds, beta: 5 * rounds, alpha: 5 * rounds, keyfn: rounds
    print(f"done gamma_fn={rounds} beta={5 * rounds} alpha={5 * rounds} keyfn={rounds} "
          f"gc={gcs}", flush=True)
    sys.stdin.readline()


if __name__ == "__main__":
    main()
