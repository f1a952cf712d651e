#!/usr/bin/env bash
# Run a command against a throwaway PostgreSQL cluster, then stop and delete the cluster.
#   scripts/with-postgres.sh .venv/bin/pytest
# The command sees DATABASE_URL pointing at the cluster. Where PostgreSQL cannot be had this
# says so loudly; under CI=true that is a failure, never a silent skip.
set -euo pipefail

fail_or_warn() {
  echo "" >&2
  echo "!!! PostgreSQL: $1" >&2
  echo "!!! The PostgreSQL run of the test suite did NOT happen." >&2
  if [ "${CI:-}" = "true" ]; then
    exit 1
  fi
  echo "!!! (not under CI, so continuing; install PostgreSQL: apt-get install postgresql)" >&2
  exit 0
}

pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
if [ -z "$pg_bin" ] || [ ! -x "$pg_bin/initdb" ]; then
  fail_or_warn "server binaries not found under /usr/lib/postgresql/*/bin"
fi

workdir=$(mktemp -d /tmp/lunxun-pg.XXXXXX)
as_pg=()
if [ "$(id -u)" -eq 0 ]; then
  # PostgreSQL refuses to run as root: the cluster belongs to the postgres system user.
  id postgres >/dev/null 2>&1 || fail_or_warn "no 'postgres' system user to own the cluster"
  chown postgres "$workdir"
  as_pg=(runuser -u postgres --)
fi
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

cleanup() {
  "${as_pg[@]}" "$pg_bin/pg_ctl" -D "$workdir/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$workdir"
}
trap cleanup EXIT

"${as_pg[@]}" "$pg_bin/initdb" -D "$workdir/data" -A trust -U postgres -E UTF8 \
  --locale=C.UTF-8 >"$workdir/initdb.log" 2>&1 || { cat "$workdir/initdb.log" >&2; fail_or_warn "initdb failed"; }
"${as_pg[@]}" "$pg_bin/pg_ctl" -D "$workdir/data" -l "$workdir/server.log" -w -o \
  "-p $port -k $workdir -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
  start >/dev/null || { cat "$workdir/server.log" >&2; fail_or_warn "the server did not start"; }
"${as_pg[@]}" "$pg_bin/createdb" -h 127.0.0.1 -p "$port" -U postgres lunxun

echo "PostgreSQL $("$pg_bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port (throwaway cluster)"
export DATABASE_URL="postgres://postgres@127.0.0.1:$port/lunxun"
"$@"
