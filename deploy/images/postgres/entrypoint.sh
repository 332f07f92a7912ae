#!/bin/sh
# Starts PostgreSQL as the official image does for the variables docker-compose.yml sets: on
# the first start the data folder is made, with POSTGRES_USER (password POSTGRES_PASSWORD,
# scram-sha-256 over TCP) owning the database POSTGRES_DB; then the server listens on every
# address of the container.
set -eu
: "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD}"
user=${POSTGRES_USER:-postgres}
db=${POSTGRES_DB:-$user}
data=${PGDATA:-/var/lib/postgresql/data}
if [ ! -s "$data/PG_VERSION" ]; then
	pwfile=$(mktemp)
	printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
	initdb -D "$data" -U "$user" --pwfile="$pwfile" -E UTF8 --auth-local=trust --auth-host=scram-sha-256
	rm -f "$pwfile"
	echo "host all all all scram-sha-256" >>"$data/pg_hba.conf"
	pg_ctl -D "$data" -o "-c listen_addresses='' -k /tmp" -w start
	if [ "$db" != postgres ]; then
		createdb -h /tmp -U "$user" "$db"
	fi
	pg_ctl -D "$data" -m fast -w stop
fi
exec postgres -D "$data" -c listen_addresses='*' -k /tmp
