#!/usr/bin/env bash
# Creates one database per SevenTweets node on the first start of the postgres container.
# The official postgres image runs the scripts of /docker-entrypoint-initdb.d once, when the
# data volume is empty, against a temporary server on its Unix socket. SEVENTWEETS_DATABASES
# lists the databases, separated by spaces. Each name follows the node name rules.
set -euo pipefail

for database in ${SEVENTWEETS_DATABASES:-}; do
  if [[ ! "$database" =~ ^[a-z0-9_-]{1,32}$ ]]; then
    echo "create-databases: invalid database name '$database': use 1-32 of a-z, 0-9, _ and -" >&2
    exit 1
  fi
  echo "create-databases: creating database $database"
  psql -v ON_ERROR_STOP=1 --no-psqlrc --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    --command "CREATE DATABASE \"$database\""
done
