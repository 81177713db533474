#!/usr/bin/env bash
# initramfs.sh KDIR -- build KDIR/initramfs.cpio.gz for the kernel unpacked in KDIR.
#
# The image is tiny: a static busybox, kernels/guest-init.sh as /init, and the
# modules the guest needs before it can reach the host root (virtio_pci, 9p and
# their dependencies, decompressed so busybox insmod can load them). Everything
# else (Python, the venv, the project) comes from the host root over 9p.
# Rebuilt only when guest-init.sh or the module list changes.
set -euo pipefail

kdir=$(cd "${1:?usage: initramfs.sh KDIR}" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
release=$(cat "$kdir/release")
mods=${CF_GUEST_MODULES:-virtio_pci 9pnet_virtio 9p}
busybox=$(command -v busybox || true)
[ -n "$busybox" ] && ! ldd "$busybox" >/dev/null 2>&1 || {
  echo "initramfs.sh: needs a static busybox (apt-get install busybox-static)" >&2; exit 1; }

# The guest's root is this machine's / over 9p, so the libbpf oracles the kernel
# subset compares with in every guest (bpftool for CO-RE, libbpf.so.1 for xlated
# programs) are whatever is installed here: refuse to build an image whose guest
# would lack them (test-kernels.sh installs both).
command -v bpftool >/dev/null && [ -x "$(command -v bpftool)" ] || {
  echo "initramfs.sh: the guest would have no bpftool (CO-RE oracle): apt-get install bpftool" >&2
  exit 1; }
/sbin/ldconfig -p | grep -q 'libbpf\.so\.1 ' || {
  echo "initramfs.sh: the guest would have no libbpf.so.1 (xlated oracle): apt-get install libbpf1" >&2
  exit 1; }

out="$kdir/initramfs.cpio.gz"
exec 9>"$kdir/.initramfs.lock"
flock 9
stamp=$( { cat "$here/guest-init.sh"; echo "$mods"; sha256sum "$busybox"; } | sha256sum | cut -c1-16)
if [ -f "$out" ] && [ "$(cat "$out.stamp" 2>/dev/null)" = "$stamp" ]; then
  echo "$out"; exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work"/{bin,sbin,proc,sys,dev,newroot,lib/modules}
cp "$busybox" "$work/bin/busybox"
for applet in $("$busybox" --list); do
  [ "$applet" = busybox ] || ln -sf busybox "$work/bin/$applet"
done
cp "$here/guest-init.sh" "$work/init"
chmod 755 "$work/init"

# load order: each module's dependencies first, no module twice
: > "$work/modules.list"
for m in $mods; do
  modprobe -d "$kdir" -S "$release" --show-depends "$m" | while read -r kind path _; do
    [ "$kind" = insmod ] || continue
    name=$(basename "$path"); name=${name%.xz}; name=${name%.zst}
    grep -qx "$name" "$work/modules.list" && continue
    case "$path" in
      *.xz) xz -dc "$path" > "$work/lib/modules/$name" ;;
      *.zst) zstd -qdc "$path" > "$work/lib/modules/$name" ;;
      *) cp "$path" "$work/lib/modules/$name" ;;
    esac
    echo "$name" >> "$work/modules.list"
  done
done

(cd "$work" && find . -print0 | cpio --null -o -H newc --quiet) | gzip -1 > "$out.tmp"
mv -f "$out.tmp" "$out"
echo "$stamp" > "$out.stamp"
echo "$out"
