#!/usr/bin/env bash
# Set up this checkout on a fresh Debian 12 / Raspberry Pi OS Bookworm machine:
# the system packages the demo and the tests use, and a virtual environment
# in .venv with every Python package pinned by constraints.txt.
# Safe to run again: it installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

packages=(
  python3-venv python3-dev gcc           # the venv; a compiler for any wheel that must build
  mosquitto                              # the MQTT broker (tests start their own on a free port)
  libgl1 libegl1 libegl-mesa0 libgl1-mesa-dri libmtdev1 xvfb xauth xdotool   # Kivy windows, real or virtual
  fonts-dejavu-core                      # receipts rendered by the virtual printer
  espeak-ng sox                          # offline spoken calls on the screens
  chromium                               # browser tests of the staff page and web signage
  slapd ldap-utils                       # a real OpenLDAP for the staff sign-in tests (they start their own)
  systemd ansible ansible-lint shellcheck   # checks of the deploy/ files
  wrk                                    # load generator for bench/
  postgresql                             # the centre's database (tests initdb a private cluster of their own)
  nats-server                            # the clustered central broker (MQTT listener; tests start three nodes)
  iproute2                               # ip netns: branches on networks of their own (WAN-cut test, bench_branches)
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "Installing system packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[dev]'
echo "Ready: .venv is set up."
