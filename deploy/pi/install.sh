#!/usr/bin/env bash
# Install one Vuoro part on a Raspberry Pi (Raspberry Pi OS Bookworm Lite, 64-bit).
#
#   sudo deploy/pi/install.sh ROLE [options]        ROLE: hub | kiosk | display | button
#
# Run it from an unpacked Vuoro checkout (git clone or release tarball) on the Pi.
# It is safe to run again (to upgrade, or after changing an option): config files that
# exist are kept, everything else is brought up to date. See docs/deploy.md.
#
# Options (kiosk, display, button):
#   --device ID        this device's id in the site config's [devices]     (required)
#   --token TOKEN      that device's token                                  (required)
#   --hub URL          the hub, e.g. http://10.0.0.2:8080                   (required)
#   --broker URL       default: mqtt://<the hub's host>:1883
#   --site ID          the site id                                          (required)
#   --language LANG    da, sv, fi, nl or en (default da)
#   --printer URL      kiosk only, e.g. usb://04b8:0e15
#   --rotation DEG     0, 90, 180 or 270: a screen mounted the other way (kiosk, display)
# Options (hub):
#   --site-config FILE your site.toml (default: keep /etc/vuoro/site.toml, or start from the sample)
# Any role:
#   --no-boot-config   leave /boot/firmware/cmdline.txt and the default target alone
#   --no-start         install and enable, but do not (re)start the service now
set -euo pipefail

PREFIX=/opt/vuoro
ETC=/etc/vuoro
STATE=/var/lib/vuoro
SERVICE_USER=vuoro
SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
die() { printf 'install.sh: %s\n' "$*" >&2; exit 1; }
usage() { sed -n '2,26p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }

ROLE="${1:-}"
[[ -n "$ROLE" ]] || usage 2
[[ "$ROLE" == "-h" || "$ROLE" == "--help" ]] && usage 0
shift
case "$ROLE" in hub | kiosk | display | button) ;; *) die "unknown role '$ROLE' (hub, kiosk, display or button)" ;; esac

DEVICE="" TOKEN="" HUB_URL="" BROKER_URL="" SITE="" LANGUAGE="da" PRINTER="" ROTATION=0 SITE_CONFIG=""
BOOT_CONFIG=1 START=1
while [[ $# -gt 0 ]]; do
    case "$1" in
        --device) DEVICE="${2:?}"; shift 2 ;;
        --token) TOKEN="${2:?}"; shift 2 ;;
        --hub) HUB_URL="${2:?}"; shift 2 ;;
        --broker) BROKER_URL="${2:?}"; shift 2 ;;
        --site) SITE="${2:?}"; shift 2 ;;
        --language) LANGUAGE="${2:?}"; shift 2 ;;
        --printer) PRINTER="${2:?}"; shift 2 ;;
        --rotation) ROTATION="${2:?}"; shift 2 ;;
        --site-config) SITE_CONFIG="${2:?}"; shift 2 ;;
        --no-boot-config) BOOT_CONFIG=0; shift ;;
        --no-start) START=0; shift ;;
        -h | --help) usage 0 ;;
        *) die "unknown option '$1' (see --help)" ;;
    esac
done

[[ $EUID -eq 0 ]] || die "run as root: sudo $0 $ROLE ..."
[[ -f "$SRC/pyproject.toml" && -d "$SRC/deploy/systemd" ]] || die "run from a Vuoro checkout ($SRC is not one)"
case "$ROTATION" in 0 | 90 | 180 | 270) ;; *) die "--rotation must be 0, 90, 180 or 270" ;; esac
if [[ "$ROLE" != hub ]]; then
    for pair in "device:$DEVICE" "token:$TOKEN" "hub:$HUB_URL" "site:$SITE"; do
        [[ -n "${pair#*:}" ]] || die "--${pair%%:*} is required for a $ROLE"
    done
    [[ "$DEVICE" =~ ^[a-z0-9][a-z0-9_-]{0,39}$ ]] || die "--device '$DEVICE' is not an id (a-z, 0-9, - and _)"
    if [[ -z "$BROKER_URL" ]]; then
        hub_host="${HUB_URL#*://}"
        hub_host="${hub_host%%/*}"
        hub_host="${hub_host%:*}"
        BROKER_URL="mqtt://${hub_host}:1883"
    fi
fi
if [[ -r /etc/os-release ]]; then
    # shellcheck disable=SC1091
    . /etc/os-release
    [[ "${VERSION_CODENAME:-}" == bookworm ]] || echo "warning: made for Bookworm; this is ${PRETTY_NAME:-unknown}" >&2
fi

# -- packages ------------------------------------------------------------------------------
APT=(python3 python3-venv python3-pip ca-certificates)
EXTRA="$ROLE"
GROUPS_WANTED=()
case "$ROLE" in
    hub) APT+=(mosquitto mosquitto-clients sqlite3) ;;
    kiosk)
        APT+=(libgl1 libegl1 libgles2 libgl1-mesa-dri libmtdev1 libusb-1.0-0 espeak-ng alsa-utils)
        GROUPS_WANTED=(video render input lp dialout audio) ;;
    display)
        APT+=(libgl1 libegl1 libgles2 libgl1-mesa-dri libmtdev1 espeak-ng sox alsa-utils)
        GROUPS_WANTED=(video render input audio) ;;
    button)
        # gpiozero's lgpio back end is the lgpio wheel of the [button] extra: python3-lgpio is
        # Raspberry Pi OS's own package, not Debian's, and the wheel works on both.
        GROUPS_WANTED=(gpio dialout) ;;
esac
say "apt packages: ${APT[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${APT[@]}"

# -- the service user ------------------------------------------------------------------------
if ! id "$SERVICE_USER" >/dev/null 2>&1; then
    say "user $SERVICE_USER"
    useradd --system --user-group --home-dir "$STATE" --no-create-home --shell /usr/sbin/nologin "$SERVICE_USER"
fi
for group in "${GROUPS_WANTED[@]}"; do
    if getent group "$group" >/dev/null; then
        usermod -aG "$group" "$SERVICE_USER"
    else
        echo "warning: group $group does not exist here; $ROLE may lack access to its hardware" >&2
    fi
done

# -- the code: a copy of this checkout in $PREFIX/src, a venv in $PREFIX -----------------------
say "Vuoro into $PREFIX (pip extra [$EXTRA])"
install -d -m 0755 "$PREFIX" "$PREFIX/src"
tar -C "$SRC" --exclude=./.venv --exclude=./.git --exclude='*.egg-info' --exclude=__pycache__ -cf - . |
    tar -C "$PREFIX/src" --no-same-owner --no-same-permissions -xf -
if [[ ! -x "$PREFIX/bin/python" ]]; then
    python3 -m venv "$PREFIX"
fi
"$PREFIX/bin/pip" install --quiet --upgrade pip
# The versions the tests ran with (constraints.txt), and wheels only: every pinned package has a
# wheel for arm64 (and armv7l) on PyPI, so a Pi never compiles, needs no compiler, and a package
# without a wheel fails here at once instead of building for an hour (deploy/arm/ proves it).
"$PREFIX/bin/pip" install --quiet --upgrade --only-binary=:all: -c "$PREFIX/src/constraints.txt" \
    "$PREFIX/src[$EXTRA]" ||
    die "pip could not install Vuoro's Python packages (above); a network problem, or one without a wheel here"
"$PREFIX/bin/vuoro" --help >/dev/null

# -- config -------------------------------------------------------------------------------------
install -d -m 0750 -o root -g "$SERVICE_USER" "$ETC"

# install_config NAME: copy deploy/config/NAME to /etc/vuoro/NAME with the placeholders filled
# in, unless it exists already (then it is left alone: it may have been edited on purpose).
install_config() {
    local name="$1" target="$ETC/$1"
    if [[ -e "$target" ]]; then
        echo "keeping $target (delete it to start again from the template)"
        return
    fi
    sed -e "s|@DEVICE@|$DEVICE|g" -e "s|@TOKEN@|$TOKEN|g" -e "s|@HUB_URL@|$HUB_URL|g" \
        -e "s|@BROKER_URL@|$BROKER_URL|g" -e "s|@SITE@|$SITE|g" -e "s|@LANGUAGE@|$LANGUAGE|g" \
        -e "s|@PRINTER@|$PRINTER|g" "$SRC/deploy/config/$name" >"$target.new"
    if [[ "$name" == display.toml ]]; then
        sed -i "s|^rotation = 0 |rotation = $ROTATION |" "$target.new"
    fi
    chown root:"$SERVICE_USER" "$target.new"
    chmod 0640 "$target.new"
    mv "$target.new" "$target"
    echo "wrote $target"
}

# kivy_config ROLE: Kivy's own settings for a full-screen app on KMS/DRM without a desktop.
kivy_config() {
    local home="$STATE/$1/kivy"
    install -d -m 0750 -o "$SERVICE_USER" -g "$SERVICE_USER" "$STATE" "$STATE/$1" "$home"
    cat >"$home/config.ini" <<EOF
; Written by deploy/pi/install.sh. KIVY_HOME=$home (see vuoro-$1.service).
[graphics]
fullscreen = auto
borderless = 1
show_cursor = 0
; the picture and the touch coordinates turn together
rotation = $ROTATION
[input]
; touchscreens through mtdev (multi-touch); no mouse provider, so a touch is not seen twice
mtdev_%(name)s = probesysfs,provider=mtdev
[kivy]
log_level = info
log_enable = 0
exit_on_escape = 0
EOF
    chown "$SERVICE_USER:$SERVICE_USER" "$home/config.ini"
}

case "$ROLE" in
    hub)
        if [[ -n "$SITE_CONFIG" ]]; then
            install -m 0640 -o root -g "$SERVICE_USER" "$SITE_CONFIG" "$ETC/site.toml"
        elif [[ ! -e "$ETC/site.toml" ]]; then
            install -m 0640 -o root -g "$SERVICE_USER" "$SRC/server/sites/sample.toml" "$ETC/site.toml"
            echo "wrote $ETC/site.toml from the sample: edit it (services, counters, devices, tokens)!"
        fi
        sed -i 's|^listen = "127.0.0.1:8080"|listen = "0.0.0.0:8080"|' "$ETC/site.toml"
        "$PREFIX/bin/vuoro" hub --config "$ETC/site.toml" --check
        install -d -m 0750 -o "$SERVICE_USER" -g "$SERVICE_USER" "$STATE"

        say "Mosquitto: config, users and ACLs from $ETC/site.toml"
        if [[ -f /etc/mosquitto/mosquitto.conf && ! -f /etc/mosquitto/mosquitto.conf.dpkg-vuoro-orig ]]; then
            cp -p /etc/mosquitto/mosquitto.conf /etc/mosquitto/mosquitto.conf.dpkg-vuoro-orig
        fi
        install -m 0644 "$SRC/deploy/mosquitto/mosquitto.conf" /etc/mosquitto/mosquitto.conf
        install -d -m 0750 -o root -g mosquitto /etc/mosquitto/vuoro
        (cd "$PREFIX/src" && "$PREFIX/bin/python" -m deploy.mosquitto_acl --config "$ETC/site.toml" \
            --out /etc/mosquitto/vuoro)
        umask 027
        printf 'VUORO_MQTT_USERNAME=hub\nVUORO_MQTT_PASSWORD=%s\n' \
            "$(cat /etc/mosquitto/vuoro/hub.password)" >"$ETC/hub.env.new"
        chown root:"$SERVICE_USER" "$ETC/hub.env.new"
        mv "$ETC/hub.env.new" "$ETC/hub.env"
        umask 022
        systemctl enable mosquitto
        systemctl restart mosquitto
        ;;
    kiosk)
        install_config kiosk.toml
        kivy_config kiosk
        install -m 0644 "$SRC/deploy/udev/99-vuoro-printer.rules" /etc/udev/rules.d/99-vuoro-printer.rules
        udevadm control --reload
        udevadm trigger --subsystem-match=usb --subsystem-match=usbmisc
        # Speech mode's output (deploy/alsa/asound.conf): the jack on a Pi 4, a USB adapter on a Pi 5.
        # An /etc/asound.conf of the site's own is left alone.
        if [[ ! -e /etc/asound.conf ]]; then
            install -m 0644 "$SRC/deploy/alsa/asound.conf" /etc/asound.conf
            if grep -qs "Raspberry Pi 5" /proc/device-tree/model; then
                sed -i 's/CARD=Headphones/CARD=Device/; s/card Headphones/card Device/' /etc/asound.conf
            fi
        fi
        ;;
    display)
        install_config display.toml
        kivy_config display
        ;;
    button)
        install_config button.toml
        install -d -m 0750 -o "$SERVICE_USER" -g "$SERVICE_USER" "$STATE"
        ;;
esac

# -- systemd: the service, the hardware watchdog --------------------------------------------------
say "systemd: vuoro-$ROLE.service, hardware watchdog"
install -m 0644 "$SRC/deploy/systemd/vuoro-$ROLE.service" "/etc/systemd/system/vuoro-$ROLE.service"
install -d -m 0755 /etc/systemd/system.conf.d
WATCHDOG_CONF=/etc/systemd/system.conf.d/vuoro-watchdog.conf
REEXEC=0
cmp -s "$SRC/deploy/systemd/system.conf.d/vuoro-watchdog.conf" "$WATCHDOG_CONF" || REEXEC=1
install -m 0644 "$SRC/deploy/systemd/system.conf.d/vuoro-watchdog.conf" "$WATCHDOG_CONF"
# Everything above onto the card before PID 1 re-reads itself: while it does, it does not feed
# the hardware watchdog, and a board reset then left empty files behind (a "masked" unit, a venv
# whose vuoro gave "Exec format error": seen in the ARM proof, deploy/arm/). Re-execute only
# when the watchdog setting changed; a reload is enough for the unit.
sync
if [[ $REEXEC -eq 1 ]]; then
    systemctl daemon-reexec
fi
systemctl daemon-reload
systemctl enable "vuoro-$ROLE.service"

# -- boot: straight into the app, no desktop, no blanking, no cursor --------------------------------
if [[ $BOOT_CONFIG -eq 1 && ( "$ROLE" == kiosk || "$ROLE" == display ) ]]; then
    say "boot: console only, no screen blanking, no cursor"
    systemctl set-default multi-user.target
    CMDLINE=/boot/firmware/cmdline.txt
    [[ -f "$CMDLINE" ]] || CMDLINE=/boot/cmdline.txt
    if [[ -f "$CMDLINE" ]]; then
        # cmdline.txt is one line; add what is missing, keep what is there.
        for arg in consoleblank=0 vt.global_cursor_default=0 logo.nologo quiet loglevel=3; do
            grep -qw -- "$arg" "$CMDLINE" || sed -i "1 s|\$| $arg|" "$CMDLINE"
        done
    else
        echo "warning: no cmdline.txt found; add consoleblank=0 vt.global_cursor_default=0 yourself" >&2
    fi
    # The console must not blank before the app takes the screen either.
    setterm --blank 0 --powerdown 0 >/dev/null 2>&1 || true
fi

if [[ $START -eq 1 && "$ROLE" == button ]] &&
    ! "$PREFIX/bin/vuoro" button --config "$ETC/button.toml" --check >/dev/null 2>&1; then
    # A fresh button.toml has no buttons yet (which pin calls for which counter is for a person
    # to say): starting would only fail. Say what to do instead of ending on systemd's error.
    START=0
    echo "not starting vuoro-button yet: set its buttons in $ETC/button.toml, check them with"
    echo "    $PREFIX/bin/vuoro button --config $ETC/button.toml --check"
    echo "then: sudo systemctl restart vuoro-button"
fi
if [[ $START -eq 1 ]]; then
    systemctl restart "vuoro-$ROLE.service"
fi

say "done: vuoro-$ROLE"
cat <<EOF
  status:  systemctl status vuoro-$ROLE        logs: journalctl -u vuoro-$ROLE -f
  check:   $PREFIX/bin/vuoro doctor --config $ETC/site.toml   (on the hub; elsewhere add --hub $HUB_URL)
EOF
if [[ "$ROLE" == hub ]]; then
    cat <<EOF
  The hub keeps its database in $STATE: do NOT put the hub on a read-only (overlay) root.
  After changing [devices] in $ETC/site.toml, run this script again (it regenerates the broker's
  users and ACLs) or: cd $PREFIX/src && $PREFIX/bin/python -m deploy.mosquitto_acl \\
      --config $ETC/site.toml --out /etc/mosquitto/vuoro && systemctl reload mosquitto
EOF
else
    cat <<EOF
  When it works: protect the SD card from power cuts with a read-only root (overlay file system):
      sudo raspi-config nonint do_overlayfs 0 && sudo reboot      (0 = enable; 1 = disable again)
  Changes after that are lost at reboot: disable it before an upgrade (docs/deploy.md).
EOF
fi
