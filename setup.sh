#!/usr/bin/env bash
# Set up coreframe in ./.venv on a Debian machine (run as root).
#   ./setup.sh          what running tools needs: Python venv + runtime deps
#   ./setup.sh --dev    also clang/llvm (rebuild objects), bpftool + libbpf-tools (test
#                       oracles), gcc, iproute2, prometheus + promtool (a real server
#                       scrapes `coreframe serve` in tests/serve), chromium (opens
#                       profile's flame graphs in tests), systemd-analyze (the unit in
#                       docs/deploy.md is verified), the test dependencies and nox
#                       (`make test-matrix`: the suite under each Python 3.9-3.13 here)
set -euo pipefail
cd "$(dirname "$0")"

dev=0
[ "${1:-}" = "--dev" ] && dev=1

pkgs=(python3 python3-venv python3-pip)
if [ "$dev" = 1 ]; then
  pkgs+=(clang llvm libbpf-dev linux-libc-dev bpftool libbpf-tools gcc libc6-dev make
         iproute2 util-linux procps bpftrace prometheus systemd chromium)
fi

missing=()
for p in "${pkgs[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "setup.sh: need root to install: ${missing[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

py=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$py" -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -U pip setuptools wheel >/dev/null
# Start-up time is a feature (coreframe run should attach about as fast as a C tool):
# a regular install for users, and for --dev an editable install in setuptools'
# "strict" mode, whose plain .pth entry costs nothing at interpreter start (the
# default editable mode installs an import hook that costs ~20 ms per start).
# Strict mode links each file: after adding a new module, run ./setup.sh --dev again.
if [ "$dev" = 1 ]; then
  .venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test,matrix]' \
    --config-settings editable_mode=strict
else
  .venv/bin/python -m pip install -q --disable-pip-version-check .
fi
# Byte-compile what the interpreter will import: with PYTHONDONTWRITEBYTECODE set,
# every start would otherwise recompile the loader from source (~250 ms).
.venv/bin/python -m compileall -q coreframe plugins >/dev/null
for tree in build/__editable__.coreframe-*; do
  if [ -d "$tree" ]; then .venv/bin/python -m compileall -q "$tree" >/dev/null; fi
done
