#!/usr/bin/env bash
# Makes sure the PostgreSQL and Redis that the second CI pass uses are installed and running on
# this machine, and that the application's database role and test database exist.
# The role is an ordinary one (not a superuser): superusers bypass row-level security.
set -euo pipefail

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi

need=()
command -v pg_ctlcluster >/dev/null || need+=(postgresql)
command -v redis-server >/dev/null || need+=(redis-server)
if [ "${#need[@]}" -gt 0 ]; then
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${need[@]}" >/dev/null
fi

if ! pg_isready -q -h 127.0.0.1 -p 5432; then
  echo "==> starting PostgreSQL"
  "${sudo_cmd[@]}" pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -1)" main start
  for _ in $(seq 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
fi
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  echo "==> starting Redis"
  mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
  "${sudo_cmd[@]}" redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  for _ in $(seq 30); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break; sleep 1; done
fi

psql_admin() {
  if psql -h 127.0.0.1 -U postgres -d postgres -tAc "SELECT 1" >/dev/null 2>&1; then
    psql -h 127.0.0.1 -U postgres -d postgres -v ON_ERROR_STOP=1 -tAc "$1"
  else
    "${sudo_cmd[@]}" -u postgres psql -d postgres -v ON_ERROR_STOP=1 -tAc "$1" 2>/dev/null \
      || su postgres -c "psql -d postgres -v ON_ERROR_STOP=1 -tAc \"$1\""
  fi
}
[ "$(psql_admin "SELECT 1 FROM pg_roles WHERE rolname = 'minpan'")" = 1 ] \
  || psql_admin "CREATE ROLE minpan LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS"
for db in minpan_test; do
  [ "$(psql_admin "SELECT 1 FROM pg_database WHERE datname = '$db'")" = 1 ] \
    || psql_admin "CREATE DATABASE $db OWNER minpan"
done
echo "==> PostgreSQL and Redis ready"
