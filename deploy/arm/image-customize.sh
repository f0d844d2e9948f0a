#!/usr/bin/env bash
# mmdebstrap's customize hook for deploy/arm/image.sh: make the fresh root what Raspberry Pi
# Imager leaves on a card (a host name, an admin user with sudo and an SSH key, DHCP on the
# wired network), plus what the proof needs (a serial console, a data disk for the hub).
#   image-customize.sh ROOTDIR      (HERE and VAR in the environment)
set -euo pipefail
ROOT="$1"

echo vuoro-arm >"$ROOT/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\tvuoro-arm\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$ROOT/etc/hosts"

# The root, and the hub's data on a disk of its own: with a read-only (overlay) root the store
# must live somewhere a power cut cannot undo. nofail: a box without that disk still boots (SSH,
# the screens); the hub does not, as it should not: its StateDirectory= makes it require the mount,
# so it never writes its store into the root's RAM overlay.
# A long x-systemd.device-timeout: a mount that times out fails for good, and with it the hub
# ("Dependency failed", no restart). Under emulation the disk took longer than 20 s to appear, and on
# a loaded host longer than the default 90 s (run of 2026-12-01: the hub dead at the read-only boot);
# a slow USB disk on a Pi is the same case. Waiting costs nothing: nofail keeps the boot going.
install -d "$ROOT/var/lib/vuoro"
cat >"$ROOT/etc/fstab" <<'EOF'
LABEL=vuoro-root  /               ext4  defaults,noatime                                       0 1
LABEL=vuoro-data  /var/lib/vuoro  ext4  defaults,noatime,nofail,x-systemd.device-timeout=10min  0 2
EOF

# DHCP on QEMU's user network (10.0.2.15, gateway 10.0.2.2, DNS 10.0.2.3).
cat >"$ROOT/etc/systemd/network/20-wired.network" <<'EOF'
[Match]
Name=en* eth*

[Network]
DHCP=ipv4
EOF
chroot "$ROOT" systemctl enable systemd-networkd.service
echo 'nameserver 10.0.2.3' >"$ROOT/etc/resolv.conf"

# The admin user, as Pi Imager's settings make it (never "vuoro": that is the service user).
chroot "$ROOT" useradd --create-home --shell /bin/bash --groups sudo vuoro-admin
echo 'vuoro-admin ALL=(ALL) NOPASSWD: ALL' >"$ROOT/etc/sudoers.d/010_vuoro-admin-nopasswd"
chmod 0440 "$ROOT/etc/sudoers.d/010_vuoro-admin-nopasswd"
install -d -m 0700 -o 1000 -g 1000 "$ROOT/home/vuoro-admin/.ssh"
install -m 0600 -o 1000 -g 1000 "$VAR/ssh/id_ed25519.pub" "$ROOT/home/vuoro-admin/.ssh/authorized_keys"
# Root on the serial console without a password: for looking around when SSH does not come up.
chroot "$ROOT" passwd -d root >/dev/null

# Fast SSH logins under emulation: no DNS look-up of the client.
echo 'UseDNS no' >"$ROOT/etc/ssh/sshd_config.d/vuoro-arm.conf"
# The journal survives reboots (the power-cut check reads the boot before).
install -d "$ROOT/var/log/journal"

# Raspberry Pi OS keeps the kernel command line in /boot/firmware/cmdline.txt (one line), and
# the installers add to it. Here QEMU boots the kernel directly: prove.sh reads this file back
# before every boot and passes it on, so the file works as it does on a Pi.
install -d "$ROOT/boot/firmware"
echo 'console=ttyAMA0 console=tty1 root=LABEL=vuoro-root rootfstype=ext4 fsck.repair=yes rootwait' \
    >"$ROOT/boot/firmware/cmdline.txt"
