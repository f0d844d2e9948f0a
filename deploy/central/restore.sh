#!/bin/bash
# Restore a dump made by backup.sh into the EMPTY database postgres-setup.sh made (its roles and grants
# are the cluster's, not the dump's), as the owner role, in one transaction: all or nothing.
#   restore.sh /var/backups/vuoro-central/vuoro-central-20261130T023000Z.dump
#   VUORO_CENTRAL_DB     the database: a name (local socket) or a postgresql:// URL [vuoro_central]
#   VUORO_CENTRAL_OWNER  the owner role the objects belong to [vuoro_central_owner]
#   PG_BIN               where pg_restore and psql are, when not on PATH
# Then start the centre. Each branch's next batch says it shipped more than the restored database has:
# the centre answers 409 (a gap) and the branch sends its whole store again; nothing is lost
# (docs/central.md, "Why every row arrives exactly once").
set -euo pipefail
dump=${1:?usage: restore.sh DUMP}
db=${VUORO_CENTRAL_DB:-vuoro_central}
owner=${VUORO_CENTRAL_OWNER:-vuoro_central_owner}
bin=${PG_BIN:+$PG_BIN/}
"${bin}pg_restore" --list "$dump" >/dev/null
tables=$("${bin}psql" -X -At --dbname="$db" -c "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
if [ "$tables" != 0 ]; then
  echo "restore.sh: the database already has $tables tables: restore only into the empty database of a fresh" \
       "postgres-setup.sh (or drop it first, knowingly)" >&2
  exit 2
fi
"${bin}pg_restore" --exit-on-error --single-transaction --no-owner --role="$owner" --dbname="$db" "$dump"
echo "restore.sh: $dump restored; start the centre (systemctl start vuoro-central)"
