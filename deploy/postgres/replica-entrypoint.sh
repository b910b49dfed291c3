#!/usr/bin/env bash
# The replica: on first start, clones the primary with pg_basebackup (as the
# replication role primary-init.sh created) and writes standby.signal and
# primary_conninfo (-R); then runs as a hot standby following the primary.
set -euo pipefail
export PGDATA=/var/lib/postgresql/data
: "${REPLICATION_USER:=replicator}"
: "${REPLICATION_PASSWORD:?set REPLICATION_PASSWORD}"
: "${PRIMARY_HOST:=postgres}"

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  mkdir -p "$PGDATA"
  chown postgres:postgres "$PGDATA"
  chmod 700 "$PGDATA"
  for attempt in $(seq 1 30); do
    if PGPASSWORD="$REPLICATION_PASSWORD" gosu postgres pg_basebackup -h "$PRIMARY_HOST" -U "$REPLICATION_USER" \
      -D "$PGDATA" -R -X stream -c fast; then
      break
    fi
    if [ "$attempt" = 30 ]; then
      echo "pg_basebackup from $PRIMARY_HOST failed 30 times: is replication allowed for $REPLICATION_USER?" >&2
      exit 1
    fi
    echo "pg_basebackup failed (attempt $attempt); retrying in 2 s" >&2
    find "$PGDATA" -mindepth 1 -delete
    sleep 2
  done
fi
exec gosu postgres postgres -c hot_standby=on
