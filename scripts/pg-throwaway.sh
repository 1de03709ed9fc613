# A throw-away PostgreSQL cluster for CI, the load test and the demo. Source it:
#
#   . scripts/pg-throwaway.sh
#   pg_throwaway_start /tmp/some-dir      # sets PG_URL (superuser URL to the `postgres` database)
#   pg_createdb runs                      # prints a URL to a new database `runs`
#   pg_throwaway_stop                     # stops the server, removes the folder
#
# initdb in a folder of its own, listening on 127.0.0.1 (a free port) and a unix socket in that
# folder, trust authentication, superuser `postgres`. initdb and the server refuse to run as root:
# as root, they run as the `postgres` user that Debian's package creates. PG_FAST=1 turns
# durability off (fsync, synchronous commit) for test suites.

pg_bindir() {
  if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
    dirname "$(readlink -f "$(command -v initdb)")"
    return 0
  fi
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [ -n "$d" ] && [ -x "$d/initdb" ] && echo "$d"
}

pg_as_owner() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

pg_free_port() {
  local p
  for p in $(shuf -i 20000-60000 -n 50); do
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      echo "$p"
      return 0
    fi
  done
  return 1
}

pg_throwaway_start() {
  PG_DIR=$1
  PG_BIN=$(pg_bindir) || { echo "PostgreSQL is not installed (apt-get install -y postgresql)" >&2; return 1; }
  mkdir -p "$PG_DIR"
  if [ "$(id -u)" = 0 ]; then chown postgres: "$PG_DIR"; fi
  pg_as_owner "$PG_BIN/initdb" -D "$PG_DIR/data" -U postgres --auth=trust -E UTF8 --locale=C \
    --no-sync >"$PG_DIR/initdb.log" 2>&1 || { cat "$PG_DIR/initdb.log" >&2; return 1; }
  PG_PORT=$(pg_free_port) || { echo "no free port" >&2; return 1; }
  local opts="-p $PG_PORT -k $PG_DIR -c listen_addresses=127.0.0.1 -c max_connections=200"
  if [ "${PG_FAST:-0}" = 1 ]; then
    opts="$opts -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
  fi
  pg_as_owner "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 60 -o "$opts" start \
    >/dev/null || { cat "$PG_DIR/server.log" >&2; return 1; }
  PG_URL="postgres://postgres@127.0.0.1:$PG_PORT/postgres"
  export PG_URL PG_DIR PG_BIN PG_PORT
}

pg_createdb() {
  "$PG_BIN/psql" -q -v ON_ERROR_STOP=1 "$PG_URL" -c "CREATE DATABASE $1" >/dev/null || return 1
  echo "postgres://postgres@127.0.0.1:$PG_PORT/$1"
}

pg_throwaway_stop() {
  [ -n "${PG_DIR:-}" ] && [ -d "$PG_DIR/data" ] || return 0
  pg_as_owner "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast -w stop >/dev/null 2>&1 || true
  rm -rf "$PG_DIR"
  PG_DIR=
}
