#!/usr/bin/env bash
# test-kernels.sh -- run the kernel-facing test subset on every kernel of the matrix.
#
# For each series in CF_KERNELS (default "5.10 6.1 6.12"): fetch.sh resolves and
# caches the newest Debian kernel of that series, initramfs.sh builds its boot
# image, run.sh boots it under QEMU (TCG) and runs pytest on tests/kernel/ with
# the committed BPF objects, from this checkout and its .venv. Prints one summary
# line per kernel, and under it what the libbpf oracles compared there (CO-RE
# relocations and their kinds, xlated fentry/fexit/kprobe programs) and every
# skip with its reason. Fails if any kernel failed, timed out or ran no tests, or
# if a guest did not make every comparison (report.py oracles --guest).
#
# Environment: CF_KERNELS, CF_KERNEL_CACHE (see fetch.sh), CF_KERNEL_OUT
# (default build/kernels: console logs, junit XML), CF_KERNEL_TESTS (pytest
# arguments, default tests/kernel), CF_BOOT_TIMEOUT (see run.sh),
# CF_GUEST_PYTHON_<series with _ for .> (e.g. CF_GUEST_PYTHON_5_10): the Python the
# guest of that series runs pytest with (a path on this machine, which the guest
# sees over 9p, with this checkout importable; default this checkout's .venv, and for
# 5.10 the test matrix's Python 3.9 venv when there is a 3.9 here).
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

# bpftool and libbpf are the test oracles; the guests run this machine's root
# filesystem over 9p, so what is installed here is what the guests have
need=()
for p in qemu-system-x86 busybox-static cpio kmod zstd xz-utils bpftool libbpf1; do
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
# hypothesis' plugin alone costs ~30 s of imports in an emulated guest; junit
# xunit1 keeps the properties tests/kernel records
pytest_args="-m pytest -p no:cacheprovider -p no:hypothesispytest -q -rfEs --color=no \
-o junit_family=xunit1"
pytest=".venv/bin/python $pytest_args"

# What a guest kernel of a series may lack (comma-separated expect_feature names,
# tests/kernel/conftest.py): tests that need one take the missing-feature path there
# and are counted as such; anything else missing in a guest fails its test. Which
# way coreframe goes is always probed; this only says what the matrix expects.
may_lack() {
  case "$1" in
    5.10) echo "BPF perf links,BPF cookies,bpf_get_func_ip,lookup-and-delete on hash maps,kprobe_multi links,uprobe_multi links" ;;
    6.1) echo "uprobe_multi links" ;;
    *) echo "" ;;
  esac
}

# the same subset on the host first: there kprobes/fentry may be missing, and the
# summary shows which tests took the FeatureMissing path
mkdir -p "$outroot/host"
rm -f "$outroot/host/junit.xml" "$outroot/host/features.json"
echo "=== host $(uname -r)"
start=$(date +%s)
rc=0
CF_FEATURES_OUT="$outroot/host/features.json" $pytest --junitxml="$outroot/host/junit.xml" \
  $tests || rc=$?
tables=("host=$outroot/host/features.json")
counts=$(.venv/bin/python kernels/report.py junit "$outroot/host/junit.xml")
verdict=ok
[ "$rc" = 0 ] || { verdict=FAIL; failed=1; }
summary+=("$(printf '%-22s %-19s %-4s  %s  (%ss)' "$(uname -r)" host "$verdict" "$counts" \
  "$(( $(date +%s) - start ))")")
summary+=("$( { .venv/bin/python kernels/report.py oracles "$outroot/host/junit.xml" || true; } \
  | sed 's/^/    /')")
summary+=("$(.venv/bin/python kernels/report.py paths "$outroot/host/junit.xml" | sed 's/^/    /')")

for series in ${CF_KERNELS:-5.10 6.1 6.12}; do
  echo "=== kernel $series"
  start=$(date +%s)
  if ! kdir=$("$here/fetch.sh" "$series") || ! "$here/initramfs.sh" "$kdir" >/dev/null; then
    summary+=("$(printf '%-42s FAIL  could not fetch or prepare the kernel' "$series")")
    failed=1
    continue
  fi
  release=$(cat "$kdir/release")
  out="$outroot/$release"
  mkdir -p "$out"
  rm -f "$out/junit.xml" "$out/features.json"
  pyvar="CF_GUEST_PYTHON_${series//./_}"
  guest_py=${!pyvar:-}
  py_note=""
  if [ -z "$guest_py" ]; then
    guest_py=.venv/bin/python
    # 5.10 is Debian 11's kernel and Debian 11's Python is 3.9: that guest runs its
    # subset under 3.9 when this machine has one (the test matrix's venv, made here if
    # missing), else under .venv's and the summary says why.
    if [ "$series" = 5.10 ]; then
      if py39=$(.venv/bin/python tools/pythons.py venv 3.9); then guest_py=$py39
      else py_note=" ($py39)"; fi
    fi
  fi
  if [ ! -x "$guest_py" ]; then
    summary+=("$(printf '%-42s FAIL  %s=%s is not an executable' "$series" "$pyvar" "$guest_py")")
    failed=1
    continue
  fi
  rc=0
  "$here/run.sh" "$kdir" "$out" \
    "CF_FEATURES_OUT=/tmp/cf-results/features.json" \
    "CF_GUEST_MAY_LACK='$(may_lack "$series")'" \
    "$guest_py $pytest_args --durations=8 --junitxml=/tmp/cf-results/junit.xml $tests" || rc=$?
  tables+=("$release=$out/features.json")
  secs=$(( $(date +%s) - start ))
  counts=$(.venv/bin/python kernels/report.py junit "$out/junit.xml")
  orc=0
  compared=$(.venv/bin/python kernels/report.py oracles "$out/junit.xml" --guest) || orc=$?
  verdict=ok
  if [ "$rc" != 0 ] || [ "$orc" != 0 ] || [[ "$counts" != *passed* ]] \
     || [[ "$counts" == "0 passed"* ]] || [[ "$counts" == *FeatureMissing* ]]; then
    verdict=FAIL
    failed=1
  fi
  [ "$rc" = 124 ] && counts="timed out; $counts"
  summary+=("$(printf '%-22s %-19s %-4s  %s  (%ss, log %s)' "$release" \
    "$(cat "$kdir/version" 2>/dev/null || echo '?')" "$verdict" "$counts" "$secs" \
    "${out#"$repo"/}/console.log")")
  summary+=("$(printf '%s\n' "$compared" | sed 's/^/    /')")
  summary+=("$( { echo "python: $guest_py ($("$guest_py" -c 'import sys; print(sys.version.split()[0])' 2>/dev/null || echo '?'))${py_note:-}"
                .venv/bin/python kernels/report.py paths "$out/junit.xml"; } | sed 's/^/    /')")
done

echo "=== test-kernels summary (kernel, Debian version, result, wall time incl. boot)"
printf '%s\n' "${summary[@]}"
echo "=== BPF features that differ (host $(uname -r) and guests)"
.venv/bin/python kernels/report.py diff "${tables[@]}" || true
exit "$failed"
