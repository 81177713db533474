#!/usr/bin/env bash
# fetch.sh SERIES -- download and unpack the newest Debian kernel of one series.
#
# SERIES is a kernel series such as 6.1 or 6.12. Debian's ABI numbers rotate
# (6.1.0-56, 6.12.117+deb12, ...), so the package is chosen at run time: the
# highest linux-image-SERIES*-amd64-unsigned that apt knows (generic flavour:
# the cloud flavour lacks 9p). The .deb is kept in the cache, so a second run on
# the same machine downloads nothing.
#
# Prints the unpacked directory, which holds:
#   vmlinuz        the bzImage
#   vmlinux        the same kernel as a decompressed ELF (PVH entry), when it
#                  could be extracted: QEMU boots it without the guest first
#                  decompressing itself, which under TCG saves 5-15 s a boot
#   release        the kernel release string (uname -r in the guest)
#   version        the Debian package version (upstream version + Debian revision)
#   lib/modules/<release>/   the modules, with modules.dep (depmod was run here)
#
# Environment: CF_KERNEL_CACHE (default /var/cache/coreframe-kernels),
#              CF_APT_UPDATE=0 to skip apt-get update.
set -euo pipefail

series=${1:?usage: fetch.sh SERIES (e.g. 6.1 or 6.12)}
cache=${CF_KERNEL_CACHE:-/var/cache/coreframe-kernels}
mkdir -p "$cache/debs"
# one fetch at a time per cache: concurrent runs share the unpacked trees
exec 9>"$cache/.lock"
flock 9

log() { echo "fetch.sh: $*" >&2; }

# "6.1" must not match 6.12: require the series to be followed by "." or "-".
pattern="^linux-image-${series//./\\.}[.-][^ ]*-amd64-unsigned\$"
candidates() { apt-cache pkgnames linux-image- | grep -E "$pattern" | grep -v -e -cloud- -e -rt- || true; }

# The bzImage payload is one compressed stream (xz on 6.1, zstd on 6.12): find
# the first magic that decompresses to an ELF with the Xen/PVH notes QEMU needs.
extract_vmlinux() {
  local off tool
  for tool in xz zstd gzip; do
    off=$(python3 - "$1" "$tool" <<'PY'
import sys
magic = {"xz": b"\xfd7zXZ\x00", "zstd": b"\x28\xb5\x2f\xfd", "gzip": b"\x1f\x8b\x08"}
with open(sys.argv[1], "rb") as f:
    print(f.read().find(magic[sys.argv[2]]))
PY
)
    [ "$off" -ge 0 ] || continue
    tail -c +$(( off + 1 )) "$1" | "$tool" -dc > "$2" 2>/dev/null || true
    if [ "$(head -c 4 "$2" | od -An -tx1 | tr -d ' ')" = 7f454c46 ] \
       && readelf -n "$2" 2>/dev/null | grep -q Xen; then
      return 0
    fi
  done
  rm -f "$2"
  return 1
}

pkgs=$(candidates)
if [ -z "$pkgs" ] && [ "${CF_APT_UPDATE:-1}" = 1 ]; then
  log "no $series package known to apt; running apt-get update"
  apt-get update -qq >&2
  pkgs=$(candidates)
fi
if [ -z "$pkgs" ]; then
  log "no linux-image-$series*-amd64-unsigned in the apt sources (is bookworm-security enabled?)"
  exit 1
fi
pkg=$(printf '%s\n' "$pkgs" | sort -V | tail -n 1)
version=$(apt-cache policy "$pkg" | awk '/Candidate:/ {print $2}')
log "$series -> $pkg $version"

deb=$(ls "$cache/debs/${pkg}_${version//:/%3a}_"*.deb 2>/dev/null | head -n 1 || true)
if [ -z "$deb" ]; then
  # root downloads into a root-owned cache: skip the _apt sandbox (and its warning)
  (cd "$cache/debs" && apt-get download -q -o APT::Sandbox::User=root "$pkg=$version" >&2)
  deb=$(ls "$cache/debs/${pkg}_${version//:/%3a}_"*.deb | head -n 1)
fi

dir="$cache/$pkg"
if [ ! -f "$dir/.complete" ]; then
  rm -rf "$dir" "$dir.tmp"
  mkdir -p "$dir.tmp/root"
  log "unpacking $(basename "$deb")"
  dpkg-deb -x "$deb" "$dir.tmp/root"
  # bookworm ships /lib/modules, newer packages /usr/lib/modules
  moddir=
  for m in "$dir.tmp"/root/usr/lib/modules/* "$dir.tmp"/root/lib/modules/*; do
    [ -d "$m" ] && moddir=$m && break
  done
  [ -n "$moddir" ] || { log "no lib/modules in $(basename "$deb")"; exit 1; }
  release=$(basename "$moddir")
  mv "$dir.tmp/root/boot/vmlinuz-$release" "$dir.tmp/vmlinuz"
  mkdir -p "$dir.tmp/lib/modules"
  mv "$moddir" "$dir.tmp/lib/modules/$release"
  rm -rf "$dir.tmp/root"
  depmod -b "$dir.tmp" "$release"
  echo "$release" > "$dir.tmp/release"
  touch "$dir.tmp/.complete"
  mv "$dir.tmp" "$dir"
fi
if [ ! -f "$dir/vmlinux" ] && [ ! -f "$dir/.no-vmlinux" ]; then
  extract_vmlinux "$dir/vmlinuz" "$dir/vmlinux.tmp" && mv "$dir/vmlinux.tmp" "$dir/vmlinux" \
    || { log "no ELF vmlinux in the bzImage; booting the bzImage"; touch "$dir/.no-vmlinux"; }
fi
echo "$version" > "$dir/version"
echo "$dir"
