#!/bin/sh
# /init of the coreframe test initramfs (runs under busybox in the QEMU guest).
#
# Loads the virtio/9p modules listed in /modules.list, mounts the host's root
# read-only over 9p (tag "hostroot") and the host's per-kernel results directory
# read-write (tag "results", seen at /tmp/cf-results), gives the new root the
# writable and kernel filesystems BPF needs, then chroots and runs
# /tmp/cf-results/cmd.sh. Its exit status goes to /tmp/cf-results/rc, and the
# guest powers off. The host's boot script reads rc; no rc means the guest died.
export PATH=/bin:/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev

for m in $(cat /modules.list); do
  insmod "/lib/modules/$m" || echo "guest-init: insmod $m failed"
done

kdir=
for arg in $(cat /proc/cmdline); do
  case "$arg" in cf.kdir=*) kdir=${arg#cf.kdir=} ;; esac
done

r=/newroot
mkdir -p $r
opts=trans=virtio,version=9p2000.L,msize=512000
if ! mount -t 9p -o "$opts,ro,cache=loose" hostroot $r; then
  echo "guest-init: cannot mount the host root over 9p"
  poweroff -f
fi
mount -t tmpfs -o mode=1777 tmpfs $r/tmp
mkdir -p $r/tmp/cf-results
mount -t 9p -o "$opts" results $r/tmp/cf-results
for d in run var/tmp root/.cache; do
  [ -d "$r/$d" ] && mount -t tmpfs tmpfs "$r/$d"
done
mount -t proc proc $r/proc
mount -t sysfs sysfs $r/sys
mount -t devtmpfs devtmpfs $r/dev
mkdir -p $r/dev/pts $r/dev/shm
mount -t devpts devpts $r/dev/pts
mount -t tmpfs tmpfs $r/dev/shm
mount -t tracefs tracefs $r/sys/kernel/tracing
mount -t debugfs debugfs $r/sys/kernel/debug
mount -t bpf bpf $r/sys/fs/bpf
mount -t cgroup2 cgroup2 $r/sys/fs/cgroup
# the guest kernel's own modules, so modprobe in the chroot finds them
if [ -n "$kdir" ] && [ -d "$r$kdir/lib/modules" ]; then
  mount --bind "$r$kdir/lib/modules" $r/usr/lib/modules
fi
ip link set lo up
hostname "cf-guest"

echo "guest-init: $(uname -r) ready, running cmd.sh"
chroot $r /bin/sh -c 'cd / && exec /bin/sh /tmp/cf-results/cmd.sh' </dev/console
echo $? > $r/tmp/cf-results/rc
sync
umount $r/tmp/cf-results
poweroff -f
