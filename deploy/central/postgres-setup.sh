#!/bin/bash
# The centre's PostgreSQL: its database, an owner role that migrates and an app role the centre runs as
# (roles.sql), TLS for every connection from the centre, and pg_hba rules that let only those two roles in,
# only over TLS, only with a password (SCRAM). Run on the database host as root; run again any time.
#
#   VUORO_OWNER_PASSWORD=... VUORO_APP_PASSWORD=... \
#   deploy/central/postgres-setup.sh --tls-cert db.crt --tls-key db.key --allow 10.20.0.5/32
#
# Options (environment variables in brackets):
#   --db NAME            the database [VUORO_CENTRAL_DB, vuoro_central]
#   --owner ROLE         the owner role [VUORO_CENTRAL_OWNER, vuoro_central_owner]
#   --app ROLE           the app role [VUORO_CENTRAL_APP, vuoro_central]
#   --tls-cert/--tls-key the server's certificate (with intermediates) and key, PEM: copied next to the config
#   --allow CIDR         where the centre connects from [VUORO_CENTRE_NET, 127.0.0.1/32]; repeatable
#   --conf-dir DIR       the cluster's config [VUORO_PG_CONF_DIR, Debian's newest /etc/postgresql/<v>/main]
#   --pg-user USER       the user PostgreSQL runs as, owner of its key [VUORO_PG_USER, postgres]
#   --psql "COMMAND"     psql as a superuser [VUORO_PSQL, "runuser -u postgres -- psql"]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
db=${VUORO_CENTRAL_DB:-vuoro_central}
owner=${VUORO_CENTRAL_OWNER:-vuoro_central_owner}
app=${VUORO_CENTRAL_APP:-vuoro_central}
pg_user=${VUORO_PG_USER:-postgres}
psql_cmd=${VUORO_PSQL:-runuser -u postgres -- psql}
conf_dir=${VUORO_PG_CONF_DIR:-}
tls_cert='' tls_key=''
allow=()
while [ $# -gt 0 ]; do
  case $1 in
    --db) db=$2; shift 2 ;;
    --owner) owner=$2; shift 2 ;;
    --app) app=$2; shift 2 ;;
    --tls-cert) tls_cert=$2; shift 2 ;;
    --tls-key) tls_key=$2; shift 2 ;;
    --allow) allow+=("$2"); shift 2 ;;
    --conf-dir) conf_dir=$2; shift 2 ;;
    --pg-user) pg_user=$2; shift 2 ;;
    --psql) psql_cmd=$2; shift 2 ;;
    *) echo "postgres-setup.sh: unknown option $1 (see the top of this file)" >&2; exit 2 ;;
  esac
done
[ ${#allow[@]} -gt 0 ] || read -r -a allow <<<"${VUORO_CENTRE_NET:-127.0.0.1/32}"
: "${VUORO_OWNER_PASSWORD:?set VUORO_OWNER_PASSWORD (the password of the owner role)}"
: "${VUORO_APP_PASSWORD:?set VUORO_APP_PASSWORD (the password of the app role, which the centre uses)}"
if [ -z "$conf_dir" ]; then
  version=$(ls /etc/postgresql 2>/dev/null | sort -n | tail -1)
  [ -n "$version" ] || { echo "postgres-setup.sh: no /etc/postgresql/<version>: apt-get install postgresql, or give --conf-dir" >&2; exit 2; }
  conf_dir=/etc/postgresql/$version/main
fi
if { [ -n "$tls_cert" ] && [ -z "$tls_key" ]; } || { [ -z "$tls_cert" ] && [ -n "$tls_key" ]; }; then
  echo "postgres-setup.sh: --tls-cert and --tls-key go together" >&2; exit 2
fi
read -r -a psql <<<"$psql_cmd"

# 1. the roles and the database (the passwords go in as psql variables, never on a command line)
"${psql[@]}" -X -q -v ON_ERROR_STOP=1 -v db="$db" -v owner="$owner" -v app="$app" \
  -v owner_password="$VUORO_OWNER_PASSWORD" -v app_password="$VUORO_APP_PASSWORD" -d postgres -f "$here/roles.sql"

# 2. TLS: the key readable by PostgreSQL only
mkdir -p "$conf_dir/conf.d"
grep -q "^include_dir = 'conf.d'" "$conf_dir/postgresql.conf" || echo "include_dir = 'conf.d'" >>"$conf_dir/postgresql.conf"
{
  echo "# Written by deploy/central/postgres-setup.sh: the Vuoro centre's database"
  echo "password_encryption = 'scram-sha-256'"
  if [ -n "$tls_cert" ]; then
    install -m 0644 -o "$pg_user" "$tls_cert" "$conf_dir/vuoro-central.crt"
    install -m 0600 -o "$pg_user" "$tls_key" "$conf_dir/vuoro-central.key"
    echo "ssl = on"
    echo "ssl_cert_file = '$conf_dir/vuoro-central.crt'"
    echo "ssl_key_file = '$conf_dir/vuoro-central.key'"
    echo "ssl_min_protocol_version = 'TLSv1.2'"
  fi
} >"$conf_dir/conf.d/vuoro-central.conf"

# 3. who may connect: the two roles, over TLS, with a password; nobody to this database without TLS.
#    First in pg_hba.conf (the first matching line wins); the block is replaced on every run.
hba=$conf_dir/pg_hba.conf
block=$(
  echo "# BEGIN vuoro-central (deploy/central/postgres-setup.sh)"
  for net in "${allow[@]}"; do echo "hostssl $db $owner,$app $net scram-sha-256"; done
  echo "hostnossl $db all all reject"
  echo "host $db all all reject"
  echo "# END vuoro-central"
)
rest=$(sed '/^# BEGIN vuoro-central/,/^# END vuoro-central/d' "$hba")
printf '%s\n%s\n' "$block" "$rest" >"$hba.vuoro-new"
chmod --reference="$hba" "$hba.vuoro-new" && chown --reference="$hba" "$hba.vuoro-new"
mv "$hba.vuoro-new" "$hba"

"${psql[@]}" -X -q -d postgres -c "SELECT pg_reload_conf()" >/dev/null
sleep 1
ssl=$("${psql[@]}" -X -At -d postgres -c "SHOW ssl")
if [ -n "$tls_cert" ] && [ "$ssl" != on ]; then
  echo "postgres-setup.sh: PostgreSQL did not turn TLS on: see its log (is the key the certificate's?)" >&2; exit 1
fi
echo "postgres-setup.sh: database $db, owner $owner, app $app; TLS $ssl; allowed from ${allow[*]}"
