#!/usr/bin/env bash
# run.sh KDIR OUTDIR COMMAND... -- boot the kernel in KDIR under QEMU and run COMMAND.
#
# KDIR comes from fetch.sh (vmlinuz, release, lib/modules) and already holds an
# initramfs from initramfs.sh. The guest sees the host's root read-only (so the
# checkout and its venv are at the same paths) and OUTDIR read-write at
# /tmp/cf-results. COMMAND runs as root with /bin/sh -c in the guest, from the
# current directory, after loading the tc/veth modules tests may need. The
# guest console goes to stdout and OUTDIR/console.log;
# the exit status is COMMAND's, or 124 for a boot that timed out and 125 for a
# guest that died without reporting one.
#
# Environment: CF_BOOT_TIMEOUT seconds (default 900), CF_QEMU_MEM (1G),
#              CF_QEMU_SMP (2).
set -euo pipefail

kdir=$(cd "${1:?usage: run.sh KDIR OUTDIR COMMAND...}" && pwd)
mkdir -p "${2:?usage: run.sh KDIR OUTDIR COMMAND...}"
out=$(cd "$2" && pwd)
shift 2
[ $# -gt 0 ] || { echo "run.sh: no command" >&2; exit 2; }
case "$PWD" in
  /tmp|/tmp/*) echo "run.sh: the guest mounts its own /tmp; run from outside /tmp" >&2; exit 2 ;;
esac

# the guest bind-mounts its modules here, and a read-only 9p root cannot mkdir it
[ -d /usr/lib/modules ] || mkdir -p /usr/lib/modules

kernel=$kdir/vmlinuz
[ -f "$kdir/vmlinux" ] && kernel=$kdir/vmlinux

rm -f "$out/rc" "$out/console.log"
{
  echo "#!/bin/sh"
  echo "export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
  echo "export HOME=/root XDG_CACHE_HOME=/tmp/cf-results/.cache PYTHONDONTWRITEBYTECODE=1"
  echo "export CF_GUEST=1 CF_RESULTS=/tmp/cf-results"
  echo "modprobe -qa sch_ingress cls_bpf veth 2>/dev/null"
  printf 'cd %q || exit 2\n' "$PWD"
  printf '%s\n' "$*"
} > "$out/cmd.sh"

set +e
timeout --foreground -k 10 "${CF_BOOT_TIMEOUT:-900}" \
  qemu-system-x86_64 -accel tcg,thread=${CF_TCG_THREAD:-single} -cpu max \
    -smp "${CF_QEMU_SMP:-2}" -m "${CF_QEMU_MEM:-1G}" \
    -nodefaults -display none -monitor none -serial stdio -no-reboot \
    -kernel "$kernel" -initrd "$kdir/initramfs.cpio.gz" \
    -append "console=ttyS0 quiet panic=-1 mitigations=off cf.kdir=$kdir" \
    -virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap \
    -virtfs "local,path=$out,mount_tag=results,security_model=none" \
    </dev/null 2>&1 | tee "$out/console.log"
qrc=${PIPESTATUS[0]}
set -e

if [ "$qrc" = 124 ] || [ "$qrc" = 137 ]; then
  echo "run.sh: $(cat "$kdir/release") timed out after ${CF_BOOT_TIMEOUT:-900}s" >&2
  exit 124
fi
if [ ! -f "$out/rc" ]; then
  echo "run.sh: $(cat "$kdir/release") exited (qemu status $qrc) without a result" >&2
  exit 125
fi
exit "$(cat "$out/rc")"
