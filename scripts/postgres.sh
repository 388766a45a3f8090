#!/usr/bin/env bash
# Installs PostgreSQL from Debian's packages if it is missing, starts it, makes sure the role
# livecov (password livecov, allowed to create databases) exists, and prints a URL for it.
# The tests create a fresh database per test through that URL. Needs root (or sudo).
set -euo pipefail

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
    echo "postgres.sh: installing PostgreSQL (apt-get install postgresql)" >&2
    as_root apt-get update -qq >&2
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
fi
version=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
if ! pg_lsclusters -h | awk '{print $1, $2}' | grep -qx "$version main"; then
    as_root pg_createcluster "$version" main >&2
fi
port=$(pg_lsclusters -h | awk -v v="$version" '$1 == v && $2 == "main" {print $3}')
if ! pg_lsclusters -h | awk -v v="$version" '$1 == v && $2 == "main" {print $4}' | grep -q online; then
    as_root pg_ctlcluster "$version" main start >&2
fi
for _ in $(seq 1 50); do
    pg_isready -q -h 127.0.0.1 -p "$port" && break
    sleep 0.2
done
pg_isready -h 127.0.0.1 -p "$port" >&2
# Tests run in parallel, each with a server whose pool may open 16 connections: the default
# of 100 connections is too few.
if [ "$(as_root runuser -u postgres -- psql -qtA -p "$port" -c 'SHOW max_connections')" -lt 500 ]; then
    as_root runuser -u postgres -- psql -q -p "$port" -c 'ALTER SYSTEM SET max_connections = 500' >&2
    as_root pg_ctlcluster "$version" main restart >&2
    for _ in $(seq 1 50); do
        pg_isready -q -h 127.0.0.1 -p "$port" && break
        sleep 0.2
    done
fi
as_root runuser -u postgres -- psql -q -p "$port" -v ON_ERROR_STOP=1 -c "
DO \$\$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'livecov') THEN
    CREATE ROLE livecov LOGIN CREATEDB PASSWORD 'livecov';
  END IF;
END \$\$;" >&2
echo "postgres://livecov:livecov@127.0.0.1:$port/postgres"
