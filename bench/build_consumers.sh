#!/bin/sh
# Build the benchmark's BPF producer and its libbpf C consumers into $1 (default: bench/build).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/build}
mkdir -p "$out"
arch=$(uname -m)
clang -O2 -g -target bpf -mcpu=v3 -I"/usr/include/$arch-linux-gnu" \
	-c "$here/../tests/objects/ev_bench.bpf.c" -o "$out/ev_bench.bpf.o"
for c in ringbuf_consumer perfbuf_consumer; do
	cc -O2 -Wall -o "$out/$c" "$here/c/$c.c" -lbpf -lelf -lz
done
echo "$out"
