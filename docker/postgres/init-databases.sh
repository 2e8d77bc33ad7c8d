#!/usr/bin/env bash
# Create one database and one login role per service (Airflow metadata, MLflow tracking,
# Feast SQL registry), each role owning only its own database.
#
# Run by the postgres image on the first start of an empty data volume
# (/docker-entrypoint-initdb.d). Against an existing server (RDS, or a compose volume
# created before this script changed) run it by hand with the same variables:
#   PGHOST=... POSTGRES_USER=... POSTGRES_DB=... PGPASSWORD=... \
#   AIRFLOW_DB_PASSWORD=... MLFLOW_DB_PASSWORD=... FEAST_DB_PASSWORD=... \
#   bash docker/postgres/init-databases.sh
# It is idempotent: existing roles get their password reset, existing databases are kept.
set -euo pipefail

: "${POSTGRES_USER:?POSTGRES_USER is required}"
: "${POSTGRES_DB:=${POSTGRES_USER}}"

create_database() {
  local name="$1" password="$2"
  if [[ -z "${password}" ]]; then
    echo "init-databases: the password for '${name}' is empty; refusing to create it" >&2
    exit 1
  fi
  # Values travel as psql variables (:'name' quoting), never spliced into SQL text.
  psql -v ON_ERROR_STOP=1 --no-psqlrc --username "${POSTGRES_USER}" --dbname "${POSTGRES_DB}" \
    -v name="${name}" -v password="${password}" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN', :'name')
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'name')
\gexec
SELECT format('ALTER ROLE %I WITH LOGIN PASSWORD %L', :'name', :'password')
\gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'name', :'name')
WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'name')
\gexec
SELECT format('REVOKE ALL ON DATABASE %I FROM PUBLIC', :'name')
\gexec
SQL
  echo "init-databases: database '${name}' ready"
}

create_database airflow "${AIRFLOW_DB_PASSWORD:-}"
create_database mlflow "${MLFLOW_DB_PASSWORD:-}"
create_database feast "${FEAST_DB_PASSWORD:-}"
