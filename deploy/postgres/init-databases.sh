#!/bin/sh
# Run once by the postgres image on an empty data directory (/docker-entrypoint-initdb.d/):
# one login role and one database per service, each database owned by its own role, so no
# service can read another's store. Passwords come from <SERVICE>_DB_PASSWORD (docker-compose.yml).
set -eu

for service in ingest classification aggregation notification; do
  var="$(echo "$service" | tr '[:lower:]' '[:upper:]')_DB_PASSWORD"
  password="$(printenv "$var" || true)"
  if [ -z "$password" ]; then
    echo "init-databases: $var is not set" >&2
    exit 1
  fi
  echo "init-databases: role and database $service"
  psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
       -v role="$service" -v password="$password" <<'SQL'
CREATE ROLE :"role" LOGIN PASSWORD :'password';
CREATE DATABASE :"role" OWNER :"role";
REVOKE ALL ON DATABASE :"role" FROM PUBLIC;
SQL
done
