#!/bin/bash
# Runs once, when the postgres service initialises an empty data volume (docker-entrypoint-initdb.d):
# creates Warden's own user and database, separate from Temporal's. Warden's workers connect as
# this user only; `warden db migrate` (the warden-migrate service) creates the tables.
set -euo pipefail
: "${WARDEN_DB_USER:?}" "${WARDEN_DB_NAME:?}" "${WARDEN_DB_PASSWORD:?}"
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
  -v warden_user="$WARDEN_DB_USER" -v warden_db="$WARDEN_DB_NAME" -v warden_password="$WARDEN_DB_PASSWORD" <<'SQL'
CREATE ROLE :"warden_user" LOGIN PASSWORD :'warden_password';
CREATE DATABASE :"warden_db" OWNER :"warden_user";
REVOKE ALL ON DATABASE :"warden_db" FROM PUBLIC;
SQL
