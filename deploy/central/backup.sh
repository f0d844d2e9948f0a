#!/bin/bash
# The centre's database, dumped (pg_dump, custom format: one consistent snapshot, compressed), checked
# (pg_restore --list reads the whole archive), then kept for VUORO_BACKUP_KEEP_DAYS. Run by
# vuoro-central-backup.timer as postgres on the database host; restore with restore.sh.
#   VUORO_CENTRAL_DB       the database: a name (local socket) or a postgresql:// URL [vuoro_central]
#   VUORO_BACKUP_DIR       where the dumps go [/var/backups/vuoro-central]
#   VUORO_BACKUP_KEEP_DAYS dumps older than this are removed [14]
#   PG_BIN                 where pg_dump is, when not on PATH (Debian: /usr/lib/postgresql/<v>/bin)
set -euo pipefail
db=${VUORO_CENTRAL_DB:-vuoro_central}
dir=${VUORO_BACKUP_DIR:-/var/backups/vuoro-central}
keep=${VUORO_BACKUP_KEEP_DAYS:-14}
bin=${PG_BIN:+$PG_BIN/}
stamp=$(date -u +%Y%m%dT%H%M%SZ)
out=$dir/vuoro-central-$stamp.dump
partial=$dir/.vuoro-central-$stamp.dump.partial
mkdir -p "$dir"
trap 'rm -f "$partial"' EXIT
"${bin}pg_dump" --format=custom --compress=6 --file="$partial" --dbname="$db"
# A truncated or unreadable dump is found tonight, not on the day it is needed.
"${bin}pg_restore" --list "$partial" >/dev/null
mv "$partial" "$out"
find "$dir" -maxdepth 1 -name 'vuoro-central-*.dump' -mtime +"$keep" -delete
echo "backup.sh: $out ($(du -h "$out" | cut -f1))"
