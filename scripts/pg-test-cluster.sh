#!/usr/bin/env bash
# pg-test-cluster.sh - starts and stops a throwaway PostgreSQL cluster for the test suite (Debian's postgresql).
# Usage: scripts/pg-test-cluster.sh start      prints the folder, then `export NFSCALE_TEST_PG=...` lines
#        scripts/pg-test-cluster.sh stop DIR   stops the cluster in DIR and deletes DIR
# The cluster lives in a mktemp -d folder owned by `postgres` (PostgreSQL refuses to run as root), listens only on a
# Unix socket in that folder (no TCP), and runs with fsync off (test data is thrown away). Authentication
# (pg_hba.conf): the superuser `postgres` connects without a password; every other role needs its password
# (scram-sha-256), so the credential tests exercise a real password.
set -euo pipefail

pg_bin() {
  local d
  for d in /usr/lib/postgresql/*/bin; do
    if [ -x "$d/initdb" ]; then echo "$d"; return; fi
  done
  echo "pg-test-cluster: no PostgreSQL server found (/usr/lib/postgresql/*/bin/initdb); run scripts/setup.sh" >&2
  exit 1
}

as_postgres() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  elif [ "$(id -un)" = postgres ]; then
    "$@"
  else
    sudo -u postgres -- "$@"
  fi
}

case "${1:-}" in
  start)
    BIN=$(pg_bin)
    DIR=$(mktemp -d /tmp/nfscale-pg.XXXXXX)
    chmod 755 "$DIR"
    chown postgres:postgres "$DIR" 2>/dev/null || true
    as_postgres "$BIN/initdb" -D "$DIR/data" -U postgres --auth-local=trust -E UTF8 --locale=C.UTF-8 >"$DIR/initdb.log" 2>&1
    cat >"$DIR/pg_hba.conf" <<'EOF'
# TYPE  DATABASE  USER      METHOD
local   all       postgres  trust
local   all       all       scram-sha-256
EOF
    chown postgres:postgres "$DIR/pg_hba.conf" 2>/dev/null || true
    as_postgres "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w -t 60 start \
      -o "-k $DIR -c listen_addresses='' -c hba_file=$DIR/pg_hba.conf -c fsync=off -c full_page_writes=off \
          -c synchronous_commit=off -c max_connections=200" >/dev/null
    echo "$DIR"
    echo "export NFSCALE_TEST_PG='postgresql://postgres@/postgres?host=$DIR'"
    ;;
  stop)
    DIR=${2:?usage: pg-test-cluster.sh stop DIR}
    BIN=$(pg_bin)
    if [ -f "$DIR/data/postmaster.pid" ]; then
      as_postgres "$BIN/pg_ctl" -D "$DIR/data" -m immediate -w stop >/dev/null || true
    fi
    case "$DIR" in /tmp/nfscale-pg.*) rm -rf "$DIR" ;; esac
    ;;
  *)
    echo "usage: $0 start | stop DIR" >&2
    exit 2
    ;;
esac
