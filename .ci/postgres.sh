#!/usr/bin/env bash
# Debian's PostgreSQL for the shared-state tests: `start` installs it when missing, creates a
# throw-away cluster under $PGTEST_DIR (default /tmp/warden-pg), listens on 127.0.0.1 only, and
# prints the database URL; `stop` stops that cluster. Idempotent. Runs as root (CI) or as any user.
set -euo pipefail
action="${1:-start}"
port="${WARDEN_PG_PORT:-55432}"
dir="${PGTEST_DIR:-/tmp/warden-pg}"
bindir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)"

as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case "$action" in
  start)
    # Test files run in parallel and each may ask for the server: one start at a time (the lock's
    # descriptor is closed for the server, which would otherwise hold the lock while it runs).
    exec 9>"/tmp/warden-pg-$port.lock"
    flock 9
    if [ -z "$bindir" ] || [ ! -x "$bindir/initdb" ]; then
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
      bindir="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"
      # The package starts a cluster of its own on 5432; the tests do not use it.
    fi
    # A PostgreSQL already answering on the port (a developer's, or an earlier run's) is reused.
    if [ -n "$bindir" ] && "$bindir/pg_isready" -q -h 127.0.0.1 -p "$port" 2>/dev/null; then
      echo "postgres://postgres@127.0.0.1:$port/postgres"
      exit 0
    fi
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown postgres:postgres "$dir" && chmod 700 "$dir"
    if [ ! -f "$dir/PG_VERSION" ]; then
      as_pg "$bindir/initdb" -D "$dir" -U postgres --auth=trust -E UTF8 >/dev/null
    fi
    if ! as_pg "$bindir/pg_ctl" -D "$dir" status >/dev/null 2>&1; then
      as_pg "$bindir/pg_ctl" -D "$dir" -l "$dir/server.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c max_connections=200 -c fsync=on" start >/dev/null 9>&-
    fi
    echo "postgres://postgres@127.0.0.1:$port/postgres"
    ;;
  stop)
    if [ -n "$bindir" ] && [ -f "$dir/PG_VERSION" ]; then as_pg "$bindir/pg_ctl" -D "$dir" -m fast -w stop >/dev/null 2>&1 || true; fi
    ;;
  *)
    echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
