#!/usr/bin/env bash
# The centre's Ansible role for real: a Debian 12 host with systemd as PID 1 (a systemd-nspawn container on a
# network of its own), deploy/ansible/centre.yml applied over SSH as a municipality's IT person would, twice,
# then checked from outside: the units, the centre's HTTPS and database, the central broker's TLS logins, a real
# branch hub shipping a ticket to it, the nightly backup.
#
#   sudo bash deploy/central/prove-role.sh           # about 5 minutes on 2 cores; prints PASS/FAIL per check
#   sudo bash deploy/central/prove-role.sh --keep    # leave the container running (the SSH command is printed)
#
# Exits 1 if any check failed. Everything it makes is in var/centre-proof/ (VUORO_CENTRE_PROOF_VAR): the root
# file system (built once with mmdebstrap; --rebuild to make it again), the SSH key, the certificates, the
# inventory, and run/ with the logs and results.txt. The branch hub runs from this checkout's .venv
# (deploy/setup-dev.sh). docs/central.md, "Deploy".
# shellcheck disable=SC2016,SC2317  # quoted commands run in the container; functions run through check()
set -euo pipefail

{
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
VAR="${VUORO_CENTRE_PROOF_VAR:-$REPO/var/centre-proof}"
RUN="$VAR/run"
NAME=vq-centre
HOST_IP=10.231.0.1 GUEST_IP=10.231.0.2 NET=10.231.0.0/30
KEEP=0 REBUILD=0
while [[ $# -gt 0 ]]; do
    case "$1" in
        --keep) KEEP=1; shift ;;
        --rebuild) REBUILD=1; shift ;;
        -h | --help) sed -n '2,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "prove-role.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
    esac
done
[[ $EUID -eq 0 ]] || { echo "prove-role.sh: run as root (it boots a container and sets up its network)" >&2; exit 2; }
[[ -x "$REPO/.venv/bin/python" ]] || { echo "prove-role.sh: run deploy/setup-dev.sh first (the branch hub)" >&2; exit 2; }

# shellcheck source=deploy/checks.sh
. "$HERE/../checks.sh"

NSPAWN_PID=""
# stop_container [NSPAWN_PID...]: this run's container, or (at the start) one a --keep run left.
stop_container() {
    local nspawn leader
    for nspawn in "$@"; do
        # SIGKILL to the container's PID 1 ends its whole PID namespace; then its veth goes too.
        leader="$(pgrep -P "$nspawn" | head -n 1 || true)"
        [[ -z "$leader" ]] || kill -KILL "$leader" 2>/dev/null || true
        kill "$nspawn" 2>/dev/null || true
        wait "$nspawn" 2>/dev/null || true
    done
    nft delete table ip "$NAME" 2>/dev/null || true
}
# The branch hub and its broker start inside a check (a subshell): their pids are kept in files.
stop_branch() {
    local pidfile
    for pidfile in "$RUN"/*.pid; do
        [[ -f "$pidfile" ]] || continue
        kill "$(cat "$pidfile")" 2>/dev/null || true
        rm -f "$pidfile"
    done
}
finish() {
    local status=$?
    stop_branch
    if [[ $KEEP -eq 0 && -n "$NSPAWN_PID" ]]; then stop_container "$NSPAWN_PID"; fi
    exit "$status"
}
trap finish EXIT

# -- the host ----------------------------------------------------------------------------------------------------
say "host: systemd-nspawn, mmdebstrap, nftables, Ansible, openssl, mosquitto-clients"
need=(systemd-container mmdebstrap nftables ansible openssl openssh-client mosquitto-clients curl)
host_packages "${need[@]}"
mkdir -p "$VAR" && stop_branch && rm -rf "$RUN" && mkdir -p "$RUN"
[[ -f "$VAR/ssh/id_ed25519" ]] || { mkdir -p "$VAR/ssh"; ssh-keygen -q -t ed25519 -N "" -f "$VAR/ssh/id_ed25519"; }

# -- a Debian 12 server, as a municipality's IT would hand it over: systemd, SSH, an admin with sudo -------------
if [[ $REBUILD -eq 1 || ! -d "$VAR/base" ]]; then
    say "root file system (mmdebstrap, Debian 12 amd64)"
    rm -rf "$VAR/base.new"
    mmdebstrap --variant=minbase --include=systemd,systemd-sysv,dbus,openssh-server,python3,sudo,iproute2,ca-certificates \
        --customize-hook='chroot "$1" useradd --create-home --shell /bin/bash --groups sudo vuoro-admin' \
        --customize-hook='echo "vuoro-admin ALL=(ALL) NOPASSWD: ALL" > "$1/etc/sudoers.d/010_vuoro-admin"' \
        --customize-hook='echo vuoro-centre > "$1/etc/hostname"' \
        bookworm "$VAR/base.new" http://deb.debian.org/debian >"$VAR/mmdebstrap.log" 2>&1 ||
        { tail -n 20 "$VAR/mmdebstrap.log"; exit 1; }
    mv "$VAR/base.new" "$VAR/base"
fi
say "a fresh container from it"
# shellcheck disable=SC2046  # one pid per word
stop_container $(pgrep -f "systemd-nspawn .*-M $NAME " || true)
rm -rf "$VAR/root" && cp -a "$VAR/base" "$VAR/root"
ROOT="$VAR/root"
install -d -m 0700 -o 1000 -g 1000 "$ROOT/home/vuoro-admin/.ssh"
install -m 0600 -o 1000 -g 1000 "$VAR/ssh/id_ed25519.pub" "$ROOT/home/vuoro-admin/.ssh/authorized_keys"
echo 'UseDNS no' >"$ROOT/etc/ssh/sshd_config.d/vuoro-proof.conf"
printf '127.0.0.1\tlocalhost\n127.0.1.1\tvuoro-centre\n' >"$ROOT/etc/hosts"  # as Debian's installer writes it
# Its network: a veth to the host, which forwards and masquerades it to the mirror and PyPI. (10-: before systemd's
# own 80-container-host0.network, which would ask for DHCP and settle for a link-local address.)
cat >"$ROOT/etc/systemd/network/10-host0.network" <<EOF
[Match]
Name=host0

[Network]
Address=$GUEST_IP/30
Gateway=$HOST_IP
EOF
chroot "$ROOT" systemctl enable systemd-networkd.service >/dev/null 2>&1
# Where the network inspects TLS with a CA of its own (this one does), the server trusts it, as a municipality's
# servers trust theirs.
if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
    cp /usr/local/share/ca-certificates/*.crt "$ROOT/usr/local/share/ca-certificates/"
    chroot "$ROOT" update-ca-certificates >/dev/null 2>&1
fi

say "boot (systemd-nspawn -b, private network)"
setsid systemd-nspawn -q -b -D "$ROOT" -M "$NAME" --register=no --keep-unit --network-veth \
    --resolv-conf=copy-host >"$RUN/console.log" 2>&1 &
NSPAWN_PID=$!
for _ in $(seq 1 50); do ip link show "ve-$NAME" >/dev/null 2>&1 && break; sleep 0.2; done
ip addr add "$HOST_IP/30" dev "ve-$NAME"
ip link set "ve-$NAME" up
sysctl -qw net.ipv4.ip_forward=1
nft add table ip "$NAME"
nft add chain ip "$NAME" post '{ type nat hook postrouting priority 100; }'
nft add rule ip "$NAME" post ip saddr "$NET" masquerade
SSH=(ssh -q -i "$VAR/ssh/id_ed25519" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null
     -o ConnectTimeout=5 -o BatchMode=yes "vuoro-admin@$GUEST_IP")
guest() { "${SSH[@]}" "$@"; }
wait_ssh() {
    local deadline=$((SECONDS + 120))
    until guest true 2>/dev/null; do
        ((SECONDS < deadline)) || { echo "no SSH in 120 s"; tail -n 20 "$RUN/console.log"; return 1; }
        sleep 1
    done
    guest 'echo "$(. /etc/os-release; echo "$PRETTY_NAME"), PID 1 = $(ps -o comm= -p 1), $(uname -m)"'
}
check "container boots, SSH answers" wait_ssh

# -- certificates, as docs/central.md makes them -------------------------------------------------------------
say "certificates (a municipality's CA; the database, the broker, the centre's HTTPS)"
CERTS="$VAR/inventory/certs"
rm -rf "$VAR/inventory" && mkdir -p "$CERTS" "$VAR/inventory/group_vars"
(
    cd "$CERTS"
    openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=Proof Kommune CA" -keyout ca.key -out ca.pem
    for name in centre-db mqtt centre; do
        san="DNS:localhost,IP:$GUEST_IP"
        openssl req -newkey rsa:2048 -nodes -subj "/CN=$name" -keyout "$name.key" -out "$name.csr"
        printf 'subjectAltName=%s\n' "$san" >"$name.ext"
        openssl x509 -req -in "$name.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 30 -extfile "$name.ext" \
            -out "$name.crt"
    done
) >"$RUN/certs.log" 2>&1

# -- the inventory: the example's, with this container and these certificates ---------------------------------
BRANCH_TOKEN="proof-uplink-token-sonderbro"
ADMIN_TOKEN="proof-admin-token-0123456789"
cat >"$VAR/inventory/hosts.yml" <<EOF
all:
  vars:
    ansible_user: vuoro-admin
    ansible_ssh_private_key_file: $VAR/ssh/id_ed25519
    ansible_ssh_common_args: -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null
  children:
    centre:
      hosts:
        vuoro-centre:
          ansible_host: $GUEST_IP
EOF
cat >"$VAR/inventory/group_vars/all.yml" <<EOF
vuoro_centre_name: Proof Kommune
vuoro_centre_admin_token: $ADMIN_TOKEN
vuoro_centre_db_owner_password: proof-owner-password-0123
vuoro_centre_db_app_password: proof-app-password-012345
vuoro_centre_db_ca: $CERTS/ca.pem
vuoro_centre_db_tls_cert: $CERTS/centre-db.crt
vuoro_centre_db_tls_key: $CERTS/centre-db.key
vuoro_centre_tls_cert: $CERTS/centre.crt
vuoro_centre_tls_key: $CERTS/centre.key
vuoro_centre_mqtt_cert: $CERTS/mqtt.crt
vuoro_centre_mqtt_key: $CERTS/mqtt.key
vuoro_centre_branches:
  - id: sonderbro
    token: $BRANCH_TOKEN
    site: $REPO/deploy/ansible/inventory/example/site.toml
EOF

# -- Ansible, twice --------------------------------------------------------------------------------------------
say "deploy/ansible/centre.yml over SSH, twice"
playbook() {
    local log="$RUN/ansible-$1.log" started=$SECONDS
    (cd "$REPO/deploy/ansible" && ANSIBLE_FORCE_COLOR=0 ansible-playbook -i "$VAR/inventory/hosts.yml" centre.yml) \
        >"$log" 2>&1 || { grep -E "fatal|FAILED|ERROR" "$log" | tail -n 15; tail -n 5 "$log"; return 1; }
    local recap
    recap="$(grep -A1 "PLAY RECAP" "$log" | tail -n 1 | tr -s ' ')"
    echo "run $1 in $((SECONDS - started)) s:$recap"
    if [[ "$1" == second ]] && ! grep -q "changed=0 " <<<"$recap"; then
        grep -B2 "^changed:" "$log" | grep "TASK" | sed 's/^/changed: /'
        return 1
    fi
}
check "centre.yml: first run" playbook first
check "centre.yml: second run changes nothing" playbook second

# -- from outside ---------------------------------------------------------------------------------------------
say "checks from the host"
check "units active" guest 'set -e
    for u in vuoro-central.service mosquitto.service postgresql.service vuoro-central-backup.timer; do
        s=$(systemctl is-active "$u"); echo "$u: $s"; [ "$s" = active ]; done
    [ "$(systemctl show -p Type --value vuoro-central.service)" = notify ]
    for u in vuoro-central.service mosquitto.service; do
        n=$(systemctl show -p NRestarts --value "$u"); [ "$n" = 0 ] || { echo "$u restarted $n times"; exit 1; }; done
    echo "vuoro-central (Type=notify: READY sent), mosquitto, postgresql, the backup timer: active, no restarts"'
health() {
    local body
    body="$(curl -sS --fail --cacert "$CERTS/ca.pem" "https://$GUEST_IP:8700/api/v1/health")"
    echo "$body"
    grep -q '"database":"ok"' <<<"$body"
    # [broker]: the role's copy of the centre password logs the nudge publisher in to the central Mosquitto
    grep -q '"broker":{[^}]*"connected":true' <<<"$body"
}
check "centre: HTTPS with its certificate, database ok, its nudges' broker connected" health
check "centre: the app role cannot change the schema" guest 'set -e
    out=$(sudo -u vuoro env PGPASSFILE=/etc/vuoro/central.pgpass psql -X -v ON_ERROR_STOP=1 \
        "host=localhost dbname=vuoro_central user=vuoro_central sslmode=verify-full sslrootcert=/etc/vuoro/centre-db-ca.pem" \
        -c "DROP TABLE tickets" 2>&1) && { echo "DROP TABLE succeeded"; exit 1; }
    echo "$out" | grep -q "must be owner" || { echo "$out"; exit 1; }
    echo "DROP TABLE refused: $out"'
mqtt_logins() {
    local args=(-h "$GUEST_IP" -p 8883 --cafile "$CERTS/ca.pem" -q 0 -t "branches/sonderbro/bridge/state" -m 1)
    mosquitto_pub "${args[@]}" -u sonderbro -P "$BRANCH_TOKEN" -i proof-sonderbro
    if mosquitto_pub "${args[@]}" -u sonderbro -P "not-the-token-at-all" -i proof-wrong 2>/dev/null; then
        echo "a wrong password was let in"; return 1
    fi
    if mosquitto_pub -h "$GUEST_IP" -p 1883 -u sonderbro -P "$BRANCH_TOKEN" -t x -m 1 -i proof-plain 2>/dev/null; then
        echo "plain MQTT reached from outside"; return 1
    fi
    echo "the branch logs in over TLS (8883) with its token; a wrong password is refused; 1883 is loopback only"
}
check "central broker: TLS logins from the centre.toml" mqtt_logins

# A real branch hub (this checkout's) on the host, its [central] pointing at the container, with a broker of its own:
# it ships to the centre over HTTPS (the municipality's CA); a ticket it issues is counted there.
ship_a_ticket() {
    local hub_dir="$RUN/branch" port=18431 mqtt=18432 deadline
    mkdir -p "$hub_dir"
    printf 'listener %s 127.0.0.1\nallow_anonymous true\n' "$mqtt" >"$hub_dir/mosquitto.conf"
    mosquitto -c "$hub_dir/mosquitto.conf" >"$RUN/branch-mosquitto.log" 2>&1 &
    echo $! >"$RUN/branch-mosquitto.pid"
    sed -e "s|^listen = .*|listen = \"127.0.0.1:$port\"|" -e "s|^broker = .*|broker = \"mqtt://127.0.0.1:$mqtt\"|" \
        "$REPO/deploy/ansible/inventory/example/site.toml" >"$hub_dir/site.toml"
    printf '\n[central]\nurl = "https://%s:8700"\ntoken = "%s"\nca_file = "%s"\nheartbeat_s = 1\n' \
        "$GUEST_IP" "$BRANCH_TOKEN" "$CERTS/ca.pem" >>"$hub_dir/site.toml"
    "$REPO/.venv/bin/vuoro" hub --config "$hub_dir/site.toml" --data-dir "$hub_dir" >"$RUN/branch-hub.log" 2>&1 &
    echo $! >"$RUN/branch-hub.pid"
    deadline=$((SECONDS + 90))
    until curl -sf "http://127.0.0.1:$port/api/v1/health" >/dev/null; do
        ((SECONDS < deadline)) || { echo "the branch hub did not start"; tail -n 20 "$RUN/branch-hub.log"; return 1; }
        sleep 0.5
    done
    local issued
    issued="$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$port/api/v1/tickets" \
        -H "Authorization: Bearer example-kiosk1-token-change-me" -H "Idempotency-Key: proof-ticket-0001" \
        -H "Content-Type: application/json" -d '{"service": "kvik", "language": "da"}')"
    # 201: a ticket; 409: KVIK is closed at this hour in Copenhagen (then the branch's heartbeat must still arrive).
    [[ "$issued" == 201 || "$issued" == 409 ]] || { echo "the branch hub answered $issued to a ticket"; return 1; }
    deadline=$((SECONDS + 60))
    while ((SECONDS < deadline)); do
        if curl -sf --cacert "$CERTS/ca.pem" -H "Authorization: Bearer $ADMIN_TOKEN" \
            "https://$GUEST_IP:8700/api/v1/branches" >"$RUN/branches.json" &&
            "$REPO/.venv/bin/python" - "$RUN/branches.json" "$issued" <<'PY'
import json, sys
branch = next(b for b in json.load(open(sys.argv[1]))["branches"] if b["branch"] == "sonderbro")
want = 1 if sys.argv[2] == "201" else 0
if branch["last_seen"] is None or branch["tickets_today"] < want:
    sys.exit(1)
print(f"the centre saw the branch {branch['seconds_since_seen']} s ago: {branch['tickets_today']} ticket(s) today,"
      f" {branch['shipped']} rows shipped (ticket: HTTP {sys.argv[2]})")
PY
        then return 0; fi
        sleep 1
    done
    echo "the centre did not see the branch's rows in 60 s"; cat "$RUN/branches.json"; tail -n 10 "$RUN/branch-hub.log"
    return 1
}
check "a branch hub ships to the centre over HTTPS" ship_a_ticket
check "the nightly backup runs" guest 'set -e
    sudo systemctl start vuoro-central-backup.service
    f=$(sudo ls -t /var/backups/vuoro-central | head -n 1)
    [ -n "$f" ] && echo "backup: $f, $(sudo du -h "/var/backups/vuoro-central/$f" | cut -f1)"'
echo "$PASSED passed, $FAILED failed" | tee -a "$RUN/results.txt"
if [[ $KEEP -eq 1 ]]; then echo "the container runs on: ${SSH[*]}"; fi
[[ $FAILED -eq 0 ]]
exit
}
