#!/usr/bin/env bash
# Build the arm64 Debian 12 (Bookworm) system that the ARM proof boots: what Raspberry Pi OS
# Lite (64-bit) is, less the Pi's firmware and kernel. Called by deploy/arm/prove.sh; run it
# alone to rebuild the image:
#
#   bash deploy/arm/image.sh [--rebuild]
#
# Output in var/arm/ (git-ignored; VUORO_ARM_VAR moves it):
#   base.img          the root file system (ext4, label vuoro-root), never booted itself:
#                     every boot of the proof runs on a copy-on-write overlay of it
#   vmlinuz, initrd   Debian's arm64 kernel and initramfs from that root (QEMU boots them directly)
#   ssh/id_ed25519    the key of the admin user "vuoro-admin" (sudo without password, as Pi Imager's user)
#   apt-cache/        downloaded .debs, so a rebuild downloads nothing again
#
# Second stage: the arm64 maintainer scripts run on this x86-64 machine through qemu-user-static
# and binfmt_misc (mmdebstrap does that when `arch-test arm64` passes). See docs/deploy.md.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
VAR="${VUORO_ARM_VAR:-$REPO/var/arm}"
MIRROR="${VUORO_ARM_MIRROR:-http://deb.debian.org/debian}"
SECURITY_MIRROR="${VUORO_ARM_SECURITY_MIRROR:-http://deb.debian.org/debian-security}"
ROOT_SIZE=8G

# Raspberry Pi OS Lite has these (python3 too: Ansible needs it); overlayroot is what
# raspi-config's "overlay file system" installs on Bookworm (`overlayroot=tmpfs` on the cmdline).
# busybox: overlayroot's initramfs script needs its grep (without it: "Unable to find a driver",
# and the root stays writable); initramfs-tools only recommends it.
PACKAGES=(
    systemd-sysv udev dbus kmod iproute2 iputils-ping procps less
    openssh-server sudo ca-certificates python3
    linux-image-arm64 initramfs-tools overlayroot busybox e2fsprogs
)

say() { printf '\033[1m[image] %s\033[0m\n' "$*"; }
die() { printf 'image.sh: %s\n' "$*" >&2; exit 1; }

if [[ "${1:-}" == -h || "${1:-}" == --help ]]; then
    sed -n '2,18p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
    exit 0
fi
if [[ -f "$VAR/base.img" && -f "$VAR/vmlinuz" && -f "$VAR/initrd" && "${1:-}" != --rebuild ]]; then
    say "kept $VAR/base.img (--rebuild to make it again)"
    exit 0
fi
[[ $EUID -eq 0 ]] || die "run as root (mmdebstrap --mode=root, mkfs of a root file system)"

# binfmt_misc lets the x86-64 kernel hand arm64 programs to qemu-aarch64-static.
if [[ ! -e /proc/sys/fs/binfmt_misc/status ]]; then
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc 2>/dev/null || true
fi
if [[ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]]; then
    update-binfmts --enable qemu-aarch64 2>/dev/null || true
fi
arch-test arm64 >/dev/null 2>&1 ||
    die "this machine cannot run arm64 programs (binfmt_misc with qemu-user-static): $(arch-test arm64 2>&1)"

mkdir -p "$VAR/apt-cache" "$VAR/ssh"
if [[ ! -f "$VAR/ssh/id_ed25519" ]]; then
    ssh-keygen -q -t ed25519 -N '' -C vuoro-arm-proof -f "$VAR/ssh/id_ed25519"
fi
# The root is assembled outside the checkout: while mmdebstrap works, /proc and /sys are mounted
# in it, and setuptools (pip install -e .) walks every file under the project folder.
# In VAR when that is a tmpfs (VUORO_ARM_VAR=/dev/shm/arm): the build then writes nothing to a
# shared machine's disk.
if [[ "$(stat -f -c %T "$VAR")" == tmpfs ]]; then
    ROOTDIR="$(mktemp -d "$VAR/rootfs.XXXXXX")"
else
    ROOTDIR="$(mktemp -d /var/tmp/vuoro-arm-rootfs.XXXXXX)"
fi
trap 'rm -rf "$ROOTDIR"' EXIT
rm -f "$VAR/base.img.new"

# The initramfs once, at the end. Made through qemu-user, one takes 15-45 min (a few hundred
# emulated modinfo/cp calls), and dpkg made it twice: at the kernel's install, then again for the
# trigger of the packages after it (busybox, overlayroot). update-initramfs is diverted to a no-op
# until the customize hook, which puts Debian's back (after the fstab: the fsck hook reads it).
# shellcheck disable=SC2016  # "$1" is for mmdebstrap's hook shell: the chroot's directory
INITRAMFS_LATER='chroot "$1" dpkg-divert --quiet --local --rename --add /usr/sbin/update-initramfs &&
    printf "#!/bin/sh\n# deploy/arm/image.sh: the initramfs is made once, at the end\nexit 0\n" >"$1/usr/sbin/update-initramfs" &&
    chmod 0755 "$1/usr/sbin/update-initramfs"'
# shellcheck disable=SC2016
INITRAMFS_NOW='rm -f "$1/usr/sbin/update-initramfs" &&
    chroot "$1" dpkg-divert --quiet --local --rename --remove /usr/sbin/update-initramfs &&
    chroot "$1" update-initramfs -c -k all'

say "mmdebstrap: Debian 12 arm64 into $ROOTDIR"
started=$SECONDS
packages="$(IFS=,; echo "${PACKAGES[*]}")"
# shellcheck disable=SC2016  # "$1" is for mmdebstrap's hook shell: the chroot's directory
mmdebstrap --mode=root --arch=arm64 --variant=apt --include="$packages" \
    --skip=essential/unlink --skip=download/empty \
    --setup-hook='mkdir -p "$1/var/cache/apt/archives"' \
    --setup-hook="sync-in '$VAR/apt-cache' /var/cache/apt/archives/" \
    --customize-hook="sync-out /var/cache/apt/archives '$VAR/apt-cache'" \
    --essential-hook="$INITRAMFS_LATER" \
    --customize-hook="HERE='$HERE' VAR='$VAR' bash '$HERE/image-customize.sh' \"\$1\"" \
    --customize-hook="$INITRAMFS_NOW" \
    bookworm "$ROOTDIR" \
    "deb $MIRROR bookworm main" \
    "deb $MIRROR bookworm-updates main" \
    "deb $SECURITY_MIRROR bookworm-security main"

say "kernel and initramfs"
kernel="$(find "$ROOTDIR/boot" -name 'vmlinuz-*-arm64' | sort -V | tail -n1)"
[[ -n "$kernel" ]] || die "no arm64 kernel in $ROOTDIR/boot"
cp "$kernel" "$VAR/vmlinuz"
cp "$ROOTDIR/boot/initrd.img-${kernel##*/vmlinuz-}" "$VAR/initrd"
cp "$ROOTDIR/boot/config-${kernel##*/vmlinuz-}" "$VAR/kernel-config"

say "root file system image ($ROOT_SIZE, ext4)"
rm -f "$VAR/base.img.new"
truncate -s "$ROOT_SIZE" "$VAR/base.img.new"
mkfs.ext4 -q -L vuoro-root -d "$ROOTDIR" "$VAR/base.img.new"
mv "$VAR/base.img.new" "$VAR/base.img"
say "done in $((SECONDS - started)) s: $VAR/base.img"
