#!/usr/bin/env bash
# Runs once, when the primary's data directory is first initialised
# (/docker-entrypoint-initdb.d of the official postgres image): creates the
# role the replica streams with and lets it in for replication. The image
# restarts the server after these scripts, so the pg_hba.conf line is live at
# the first real start.
set -euo pipefail
: "${REPLICATION_USER:=replicator}"
: "${REPLICATION_PASSWORD:?set REPLICATION_PASSWORD}"

psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -v user="$REPLICATION_USER" -v password="$REPLICATION_PASSWORD" <<'SQL'
CREATE ROLE :"user" WITH REPLICATION LOGIN PASSWORD :'password';
SQL

# Replication connections match only lines whose database is `replication`
# (the image's own `host all all all scram-sha-256` line does not cover them).
echo "host replication ${REPLICATION_USER} all scram-sha-256" >> "$PGDATA/pg_hba.conf"
