# shellcheck shell=bash
# The emulated arm64 machine for deploy/arm/prove.sh (sourced; not run by itself).
#
# QEMU's "virt" board under TCG (software emulation: no ARM accelerator on an x86-64 host),
# a Cortex-A72 like the Raspberry Pi 4's, 2 vCPUs and 2 GiB, niced so a shared machine stays
# usable. Devices, each standing in for a part of a Pi:
#   virtio disk 1   the root: a copy-on-write overlay (root.qcow2) of var/arm/base.img
#   virtio disk 2   data.img, mounted at /var/lib/vuoro (the hub's store; survives a read-only root)
#   i6300esb        a hardware watchdog on PCI (/dev/watchdog0) for systemd's RuntimeWatchdogSec;
#                   QEMU 7.2's virt board has no SBSA watchdog, and i6300esb is the one it offers
#   virtio-gpu x2   two KMS/DRM screens: card0 800x480 (the kiosk's touchscreen), card1
#                   1280x720 (the signage screen); QMP's screendump reads what they show
#   user network    the guest reaches Debian's mirror and PyPI through QEMU (slirp); the host
#                   reaches the guest's SSH, HTTP (8080) and MQTT (1883) on forwarded loopback ports
# Needs: VAR, RUN (folders), and sets SSH_PORT, HTTP_PORT, MQTT_PORT, VM_PID.

VM_MEMORY="${VUORO_ARM_MEMORY:-2048}"
VM_CPUS=2
SSH_KEY="$VAR/ssh/id_ed25519"
SSH_OPTS=(-i "$SSH_KEY" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR
          -o ConnectTimeout=20 -o ServerAliveInterval=30 -o ServerAliveCountMax=10)
VM_PID=""
VM_BOOTS=0

vm_pick_ports() {
    read -r SSH_PORT HTTP_PORT MQTT_PORT < <(python3 - <<'EOF'
import socket
socks = [socket.socket() for _ in range(3)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))
EOF
)
}

# vm_start: boot the machine with the kernel command line in $RUN/cmdline.txt and the initramfs
# in $RUN/initrd when there is one: the guest's /boot/firmware/cmdline.txt and current initramfs,
# read back before every shutdown, as a Pi's firmware reads them from the card. (Packages that
# change the initramfs, such as busybox for overlayroot, take effect at the next boot, as on a Pi.)
vm_start() {
    VM_BOOTS=$((VM_BOOTS + 1))
    local console="$RUN/console-$VM_BOOTS.log"
    rm -f "$RUN/qmp.sock"
    # romfile= on the NIC: the kernel is booted directly, so no iPXE boot ROM is needed, and a machine without
    # the ipxe-qemu package (qemu-system-arm only recommends it) refused to start: "failed to find romfile".
    nice -n 10 qemu-system-aarch64 \
        -M virt -accel tcg,thread=multi -cpu cortex-a72 -smp "$VM_CPUS" -m "$VM_MEMORY" \
        -kernel "$VAR/vmlinuz" -initrd "$(if [[ -s "$RUN/initrd" ]]; then echo "$RUN/initrd"; else echo "$VAR/initrd"; fi)" -append "$(cat "$RUN/cmdline.txt")" \
        -drive if=none,id=root,file="$RUN/root.qcow2",format=qcow2 -device virtio-blk-pci,drive=root \
        -drive if=none,id=data,file="$RUN/data.img",format=raw -device virtio-blk-pci,drive=data \
        -netdev "user,id=net,hostfwd=tcp:127.0.0.1:$SSH_PORT-:22,hostfwd=tcp:127.0.0.1:$HTTP_PORT-:8080,hostfwd=tcp:127.0.0.1:$MQTT_PORT-:1883" \
        -device virtio-net-pci,netdev=net,romfile= \
        -device virtio-rng-pci \
        -device i6300esb -action watchdog=reset \
        -device virtio-gpu-pci,id=kioskgpu,xres=800,yres=480 \
        -device virtio-gpu-pci,id=displaygpu,xres=1280,yres=720 \
        -display none -monitor none -serial "file:$console" \
        -qmp "unix:$RUN/qmp.sock,server=on,wait=off" \
        </dev/null >"$RUN/qemu-$VM_BOOTS.log" 2>&1 &
    VM_PID=$!
    echo "$VM_PID" >"$RUN/qemu.pid"
    # For --reuse: the QEMU of the last boot (the first boot's pid was kept, and --reuse found "no guest").
    echo "$SSH_PORT $HTTP_PORT $MQTT_PORT $VM_PID $VM_BOOTS" >"$RUN/vm.txt"
}

vm_running() { [[ -n "$VM_PID" ]] && kill -0 "$VM_PID" 2>/dev/null; }

vm_ssh() { ssh "${SSH_OPTS[@]}" -p "$SSH_PORT" vuoro-admin@127.0.0.1 "$@"; }

# vm_wait_ssh SECONDS: until the guest's sshd answers (a boot under emulation takes minutes).
vm_wait_ssh() {
    local deadline=$((SECONDS + $1))
    while ((SECONDS < deadline)); do
        vm_running || { echo "QEMU exited: $(tail -n 5 "$RUN/qemu-$VM_BOOTS.log")"; return 1; }
        if vm_ssh -o ConnectTimeout=10 true 2>/dev/null; then
            return 0
        fi
        sleep 5
    done
    echo "no SSH after $1 s; the console says: $(tail -n 5 "$RUN/console-$VM_BOOTS.log")"
    return 1
}

# vm_wait_boot SECONDS: SSH answers and systemd has finished starting (running or degraded).
vm_wait_boot() {
    vm_wait_ssh "$1" || return 1
    vm_ssh "timeout $1 systemctl is-system-running --wait" >/dev/null 2>&1 || true
}

vm_save_boot() {
    vm_ssh cat /boot/firmware/cmdline.txt >"$RUN/cmdline.txt"
    # shellcheck disable=SC2016  # $(uname -r) of the guest
    vm_ssh 'cat "/boot/initrd.img-$(uname -r)"' >"$RUN/initrd.new" && mv "$RUN/initrd.new" "$RUN/initrd"
}

# vm_poweroff: a clean shutdown, as a person pulling no plugs would do it.
vm_poweroff() {
    vm_save_boot
    vm_ssh 'sudo systemctl poweroff' >/dev/null 2>&1 || true
    local deadline=$((SECONDS + 300))
    while vm_running && ((SECONDS < deadline)); do sleep 2; done
    if vm_running; then
        echo "the guest did not power off in 300 s; killing QEMU" >&2
        vm_kill
    fi
    wait "$VM_PID" 2>/dev/null || true
    VM_PID=""
}

# vm_kill: a power cut. Whatever the guest had not written to its disks is gone.
vm_kill() {
    [[ -n "$VM_PID" ]] || return 0
    kill -KILL "$VM_PID" 2>/dev/null || true
    wait "$VM_PID" 2>/dev/null || true
    VM_PID=""
}

# vm_qmp JSON: one QMP command (after the capabilities handshake); prints the answer.
vm_qmp() {
    python3 - "$RUN/qmp.sock" "$1" <<'EOF'
import json, socket, sys
sock = socket.socket(socket.AF_UNIX)
sock.connect(sys.argv[1])
stream = sock.makefile("rw")
stream.readline()  # the greeting
for command in ('{"execute": "qmp_capabilities"}', sys.argv[2]):
    stream.write(command + "\n")
    stream.flush()
    while True:
        answer = json.loads(stream.readline())
        if "return" in answer or "error" in answer:
            break
print(json.dumps(answer))
sys.exit(1 if "error" in answer else 0)
EOF
}

# vm_screendump DEVICE FILE.png: what that virtual screen shows now.
vm_screendump() {
    vm_qmp "{\"execute\": \"screendump\", \"arguments\": {\"filename\": \"$2\", \"device\": \"$1\", \"format\": \"png\"}}"
}
