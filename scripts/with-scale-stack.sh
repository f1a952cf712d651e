#!/usr/bin/env bash
# Run a command against a throwaway scale-profile stack, then stop it and delete its files:
#   Redis          Debian's redis-server, on a free port, no persistence, in a temporary directory
#   object storage moto's standalone S3 server (PyPI moto[server], in the dev extra), free port
#   PostgreSQL     a throwaway cluster, through scripts/with-postgres.sh
#   scripts/with-scale-stack.sh .venv/bin/pytest -m scale tests/scale
# The command sees REDIS_URL, LUNXUN_S3_BUCKET, LUNXUN_S3_ENDPOINT_URL, LUNXUN_S3_ACCESS_KEY,
# LUNXUN_S3_SECRET_KEY, LUNXUN_S3_REGION and DATABASE_URL (the bucket itself is created by
# `manage.py storage_setup`). The story test also needs nginx, ffmpeg and pdftotext; their
# absence is reported here. Where a piece cannot be had this says so loudly; under CI=true that
# is a failure, never a silent skip.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")

fail_or_warn() {
  echo "" >&2
  echo "!!! Scale stack: $1" >&2
  echo "!!! The scale-profile test run did NOT happen." >&2
  if [ "${CI:-}" = "true" ]; then
    exit 1
  fi
  echo "!!! (not under CI, so continuing; see docs/operations.md for what to install)" >&2
  exit 0
}

find_tool() {
  # $1: a name looked up on PATH and in the sbin directories (nginx lives in /usr/sbin).
  PATH="$PATH:/usr/sbin:/sbin:/usr/local/sbin" command -v "$1" 2>/dev/null || true
}

redis_server=$(find_tool redis-server)
[ -n "$redis_server" ] || fail_or_warn "redis-server not found (apt-get install redis-server)"
moto_server="$root/.venv/bin/moto_server"
[ -x "$moto_server" ] || moto_server=$(find_tool moto_server)
[ -n "$moto_server" ] || fail_or_warn "moto_server not found (pip install -e '.[dev]')"
nginx_bin=$(find_tool nginx)
[ -n "$nginx_bin" ] || fail_or_warn "nginx not found (apt-get install nginx)"
for tool in ffmpeg ffprobe pdftotext; do
  [ -n "$(find_tool "$tool")" ] || fail_or_warn "$tool not found (scripts/system-deps.sh test)"
done

workdir=$(mktemp -d /tmp/lunxun-scale.XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$workdir"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_for_port() {
  # $1 name, $2 port, $3 pid, $4 log
  for _ in $(seq 1 300); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$2") 2>/dev/null; then
      return 0
    fi
    if ! kill -0 "$3" 2>/dev/null; then
      tail -n 30 "$4" >&2 || true
      fail_or_warn "$1 exited before it listened on port $2"
    fi
    sleep 0.1
  done
  tail -n 30 "$4" >&2 || true
  fail_or_warn "$1 did not listen on port $2 within 30 s"
}

redis_port=$(free_port)
"$redis_server" --port "$redis_port" --bind 127.0.0.1 --dir "$workdir" --save "" \
  --appendonly no --daemonize no --protected-mode yes --logfile "$workdir/redis.log" &
pids+=($!)
wait_for_port redis-server "$redis_port" "${pids[-1]}" "$workdir/redis.log"

s3_port=$(free_port)
"$moto_server" -H 127.0.0.1 -p "$s3_port" >"$workdir/moto.log" 2>&1 &
pids+=($!)
wait_for_port moto_server "$s3_port" "${pids[-1]}" "$workdir/moto.log"

echo "Redis $("$redis_server" --version | awk '{print $3}' | cut -d= -f2) on 127.0.0.1:$redis_port," \
  "S3 (moto $("$root/.venv/bin/python" -c 'import moto; print(moto.__version__)' 2>/dev/null || echo '?'))" \
  "on 127.0.0.1:$s3_port (throwaway)"
export REDIS_URL="redis://127.0.0.1:$redis_port/0"
export LUNXUN_S3_BUCKET="lunxun-scale-test"
export LUNXUN_S3_ENDPOINT_URL="http://127.0.0.1:$s3_port"
export LUNXUN_S3_ACCESS_KEY="scale-test"
export LUNXUN_S3_SECRET_KEY="scale-test-secret"
export LUNXUN_S3_REGION="us-east-1"
export LUNXUN_NGINX="$nginx_bin"

status=0
"$here/with-postgres.sh" "$@" || status=$?
exit "$status"
