#!/usr/bin/env bash
# fetch.sh SERIES -- download and unpack the newest Debian kernel of one series.
#
# SERIES is a kernel series such as 5.10, 6.1 or 6.12. Debian's ABI numbers rotate
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
# The packages are resolved and downloaded through this script's own apt source
# ($cache/apt: a sources list, package lists and apt cache of its own, passed to
# apt with -o options), never the machine's /etc/apt: the matrix needs suites the
# machine does not carry (bullseye for 5.10), and adding them to the machine's
# sources would change what the machine itself upgrades to.
#
# Environment: CF_KERNEL_CACHE (default /var/cache/coreframe-kernels),
#              CF_APT_SUITES (default "bookworm bookworm-updates bookworm-security
#                bullseye bullseye-security"; *-security from CF_DEBIAN_SECURITY_MIRROR),
#              CF_DEBIAN_MIRROR (default http://deb.debian.org/debian),
#              CF_DEBIAN_SECURITY_MIRROR (default http://deb.debian.org/debian-security),
#              CF_APT_MAX_AGE hours before the lists are refreshed (default 24),
#              CF_APT_UPDATE=0 to never run apt-get update.
set -euo pipefail

series=${1:?usage: fetch.sh SERIES (e.g. 5.10, 6.1 or 6.12)}
cache=${CF_KERNEL_CACHE:-/var/cache/coreframe-kernels}
mkdir -p "$cache/debs"
# one fetch at a time per cache: concurrent runs share the unpacked trees
exec 9>"$cache/.lock"
flock 9

log() { echo "fetch.sh: $*" >&2; }

# This script's own apt source: its sources list, lists and cache under $cache/apt.
aptdir=$cache/apt
suites=${CF_APT_SUITES:-bookworm bookworm-updates bookworm-security bullseye bullseye-security}
mirror=${CF_DEBIAN_MIRROR:-http://deb.debian.org/debian}
secmirror=${CF_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
mkdir -p "$aptdir/lists/partial" "$aptdir/cache/archives/partial" "$aptdir/sources.list.d"
sources=$(for s in $suites; do
  case "$s" in *-security) m=$secmirror ;; *) m=$mirror ;; esac
  echo "deb [signed-by=$keyring] $m $s main"
done)
if [ "$(cat "$aptdir/sources.list" 2>/dev/null)" != "$sources" ]; then
  printf '%s\n' "$sources" > "$aptdir/sources.list"
  rm -f "$aptdir/updated"  # other suites: the lists must be fetched again
fi
aptopts=(-o "Dir::Etc::SourceList=$aptdir/sources.list"
         -o "Dir::Etc::SourceParts=$aptdir/sources.list.d"
         -o "Dir::State::Lists=$aptdir/lists" -o "Dir::Cache=$aptdir/cache"
         -o "APT::Sandbox::User=root")
apt_update() {
  log "apt-get update of this script's sources ($suites)"
  apt-get "${aptopts[@]}" update -qq >&2 && touch "$aptdir/updated"
}

# "6.1" must not match 6.12: require the series to be followed by "." or "-".
pattern="^linux-image-${series//./\\.}[.-][^ ]*-amd64-unsigned\$"
candidates() {
  apt-cache "${aptopts[@]}" pkgnames linux-image- 2>/dev/null | grep -E "$pattern" \
    | grep -v -e -cloud- -e -rt- || true
}

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

# Refresh the lists when they are missing or older than CF_APT_MAX_AGE hours: the
# newest ABI of a series changes with every Debian point and security release.
if [ "${CF_APT_UPDATE:-1}" = 1 ] && [ -z "$(find "$aptdir/updated" \
     -mmin -$(( ${CF_APT_MAX_AGE:-24} * 60 )) 2>/dev/null)" ]; then
  apt_update || log "apt-get update failed; using the lists already here"
fi
pkgs=$(candidates)
if [ -z "$pkgs" ]; then
  log "no linux-image-$series*-amd64-unsigned in this script's apt sources ($suites," \
      "$aptdir/sources.list); add the suite that carries it to CF_APT_SUITES"
  exit 1
fi
pkg=$(printf '%s\n' "$pkgs" | sort -V | tail -n 1)
version=$(apt-cache "${aptopts[@]}" policy "$pkg" | awk '/Candidate:/ {print $2}')
log "$series -> $pkg $version"

deb=$(ls "$cache/debs/${pkg}_${version//:/%3a}_"*.deb 2>/dev/null | head -n 1 || true)
if [ -z "$deb" ]; then
  # root downloads into a root-owned cache: no _apt sandbox (APT::Sandbox::User)
  (cd "$cache/debs" && apt-get "${aptopts[@]}" download -q "$pkg=$version" >&2)
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
