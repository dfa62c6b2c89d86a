#!/usr/bin/env bash
# A private PostgreSQL 15 server for the tests, on 127.0.0.1 only; idempotent.
#   scripts/postgres.sh start    install Debian's postgresql when missing, initdb, start, create the test database
#   scripts/postgres.sh stop     stop the server (its data directory stays for the next start)
#   scripts/postgres.sh destroy  stop the server and delete its data directory (a throwaway server)
#   scripts/postgres.sh status   exit 0 when running
#   scripts/postgres.sh url      print the SQLAlchemy URL of the test database
# Settings: PGPORT (5433), PGDATA (/tmp/storecast-pg), PGDATABASE (storecast_test).
set -euo pipefail

PGPORT="${PGPORT:-5433}"
PGDATA="${PGDATA:-/tmp/storecast-pg}"
PGDATABASE="${PGDATABASE:-storecast_test}"
PGVERSION="${PGVERSION:-15}"
PGBIN="${PGBIN:-/usr/lib/postgresql/$PGVERSION/bin}"
PSQL="$PGBIN/psql"; [ -x "$PSQL" ] || PSQL=psql
URL="postgresql+psycopg://postgres@127.0.0.1:$PGPORT/$PGDATABASE"

# As root the server runs as the postgres user (initdb refuses root); otherwise as the caller.
as_owner() {
    if [ "$(id -u)" = 0 ]; then
        su postgres -s /bin/sh -c "$*"
    else
        sh -c "$*"
    fi
}

install_server() {
    [ -x "$PGBIN/pg_ctl" ] && return 0
    if [ "$(id -u)" != 0 ]; then
        echo "postgres.sh: $PGBIN/pg_ctl missing; install Debian's postgresql-$PGVERSION (as root)" >&2
        exit 1
    fi
    echo "postgres.sh: installing Debian's postgresql"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "postgresql-$PGVERSION" postgresql-client >/dev/null
}

running() {
    [ -f "$PGDATA/PG_VERSION" ] && as_owner "'$PGBIN/pg_ctl' -D '$PGDATA' status" >/dev/null 2>&1
}

psql_admin() {
    "$PSQL" "postgresql://postgres@127.0.0.1:$PGPORT/postgres" -v ON_ERROR_STOP=1 -qtA "$@"
}

start() {
    install_server
    if [ ! -f "$PGDATA/PG_VERSION" ]; then
        mkdir -p "$PGDATA"
        [ "$(id -u)" = 0 ] && chown postgres:postgres "$PGDATA"
        chmod 700 "$PGDATA"
        as_owner "'$PGBIN/initdb' -D '$PGDATA' -U postgres --auth=trust -E UTF8 --locale=C.UTF-8" >/dev/null
    fi
    if ! running; then
        # fsync off: a throwaway test server; max_connections: many short-lived test apps.
        as_owner "'$PGBIN/pg_ctl' -D '$PGDATA' -l '$PGDATA/server.log' -w -t 30 \
            -o '-c listen_addresses=127.0.0.1 -p $PGPORT -k $PGDATA -c fsync=off \
                -c synchronous_commit=off -c full_page_writes=off -c max_connections=300' start" >/dev/null
    fi
    if [ "$(psql_admin -c "SELECT 1 FROM pg_database WHERE datname = '$PGDATABASE'")" != 1 ]; then
        psql_admin -c "CREATE DATABASE \"$PGDATABASE\"" >/dev/null
    fi
    echo "postgres.sh: running on 127.0.0.1:$PGPORT ($URL)"
}

stop() {
    if running; then
        as_owner "'$PGBIN/pg_ctl' -D '$PGDATA' -m fast -w stop" >/dev/null
        echo "postgres.sh: stopped"
    fi
}

destroy() {
    stop
    case "$PGDATA" in
        /tmp/*) rm -rf "$PGDATA" ;;
        *) echo "postgres.sh: not deleting $PGDATA (outside /tmp)" >&2 ;;
    esac
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    destroy) destroy ;;
    status) running ;;
    url) echo "$URL" ;;
    *)
        echo "usage: $0 start|stop|destroy|status|url" >&2
        exit 2
        ;;
esac
