#!/usr/bin/env bash
# test-kernels.sh -- run the kernel-facing test subset on every kernel of the matrix.
#
# For each series in CF_KERNELS (default "6.1 6.12"): fetch.sh resolves and
# caches the newest Debian kernel of that series, initramfs.sh builds its boot
# image, run.sh boots it under QEMU (TCG) and runs pytest on tests/kernel/ with
# the committed BPF objects, from this checkout and its .venv. Prints one summary
# line per kernel and fails if any kernel failed, timed out or ran no tests.
#
# Environment: CF_KERNELS, CF_KERNEL_CACHE (see fetch.sh), CF_KERNEL_OUT
# (default build/kernels: console logs, junit XML), CF_KERNEL_TESTS (pytest
# arguments, default tests/kernel), CF_BOOT_TIMEOUT (see run.sh).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
cd "$repo"
case "$repo" in
  /tmp|/tmp/*) echo "test-kernels: the guest mounts its own /tmp; use a checkout outside /tmp" >&2
               exit 2 ;;
esac
# a clean clone: the guest runs this checkout's own venv, so make it first
[ -x .venv/bin/python ] || ./setup.sh --dev

need=()
for p in qemu-system-x86 busybox-static cpio kmod zstd xz-utils; do
  dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
if [ "${#need[@]}" -gt 0 ]; then
  [ "$(id -u)" = 0 ] || { echo "test-kernels: need root to install: ${need[*]}" >&2; exit 2; }
  echo "test-kernels: installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

outroot=${CF_KERNEL_OUT:-$repo/build/kernels}
tests=${CF_KERNEL_TESTS:-tests/kernel}
summary=()
failed=0
mkdir -p "$outroot"
.venv/bin/python kernels/features.py dump > "$outroot/host-features.json" || true
tables=("host=$outroot/host-features.json")

for series in ${CF_KERNELS:-6.1 6.12}; do
  echo "=== kernel $series"
  start=$(date +%s)
  if ! kdir=$("$here/fetch.sh" "$series") || ! "$here/initramfs.sh" "$kdir" >/dev/null; then
    summary+=("$(printf '%-24s FAIL  could not fetch or prepare the kernel' "$series")")
    failed=1
    continue
  fi
  release=$(cat "$kdir/release")
  out="$outroot/$release"
  mkdir -p "$out"
  rm -f "$out/junit.xml"
  rc=0
  rm -f "$out/features.json"
  "$here/run.sh" "$kdir" "$out" \
    ".venv/bin/python -m pytest -p no:cacheprovider -q -rfEs --color=no --durations=8" \
    "--junitxml=/tmp/cf-results/junit.xml $tests; rc=\$?;" \
    ".venv/bin/python kernels/features.py dump > /tmp/cf-results/features.json; exit \$rc" \
    || rc=$?
  tables+=("$release=$out/features.json")
  secs=$(( $(date +%s) - start ))
  counts=$(.venv/bin/python - "$out/junit.xml" <<'PY'
import sys
import xml.etree.ElementTree as ET

try:
    root = ET.parse(sys.argv[1]).getroot()
except (OSError, ET.ParseError):
    print("no junit report")
    sys.exit()
suite = root if root.tag == "testsuite" else root.find("testsuite")
n = {k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")}
passed = n["tests"] - n["failures"] - n["errors"] - n["skipped"]
print(f"{passed} passed, {n['failures']} failed, {n['errors']} errors, {n['skipped']} skipped")
PY
)
  verdict=ok
  if [ "$rc" != 0 ] || [[ "$counts" != *passed* ]] || [[ "$counts" == "0 passed"* ]]; then
    verdict=FAIL
    failed=1
  fi
  [ "$rc" = 124 ] && counts="timed out; $counts"
  summary+=("$(printf '%-22s %-11s %-4s  %s  (%ss, log %s)' "$release" \
    "$(cat "$kdir/version" 2>/dev/null || echo '?')" "$verdict" "$counts" "$secs" \
    "${out#"$repo"/}/console.log")")
done

echo "=== test-kernels summary (kernel, Debian version, result, wall time incl. boot)"
printf '%s\n' "${summary[@]}"
echo "=== BPF features that differ (host $(uname -r) and guests)"
.venv/bin/python kernels/features.py diff "${tables[@]}" || true
exit "$failed"
