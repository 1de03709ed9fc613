#!/usr/bin/env bash
# Concurrency check of the PostgreSQL run store (not part of CI): 8 writer processes and 2 reader
# processes against one throw-away PostgreSQL for 2 minutes, then every row each writer reported
# is counted in the database. Prints the figures; exits non-zero on any error or lost row.
#
#   scripts/pg-load.sh                      # 8 writers × 500 steps/s, 2 readers, 120 s
#   WRITERS=4 READERS=1 SECONDS_=30 RATE=200 scripts/pg-load.sh
#   PG_LOAD_DB=postgres://user@host/db scripts/pg-load.sh   # against an existing database
set -euo pipefail
cd "$(dirname "$0")/.."
WRITERS=${WRITERS:-8}
READERS=${READERS:-2}
SECONDS_=${SECONDS_:-120}
RATE=${RATE:-500}

# The load generator is I/O-bound: a debug build of our crate (dependencies are optimised
# in every profile) is enough; PROFILE=release for a release build.
PROFILE=${PROFILE:-debug}
if [ "$PROFILE" = release ]; then
  cargo build --release --example store_load >&2
else
  cargo build --example store_load >&2
fi
BIN=target/$PROFILE/examples/store_load
WORK=$(mktemp -d)
chmod 755 "$WORK"

. scripts/pg-throwaway.sh
if [ -n "${PG_LOAD_DB:-}" ]; then
  DB=$PG_LOAD_DB
else
  pg_throwaway_start "$WORK/pg"
  trap 'pg_throwaway_stop; rm -rf "$WORK"' EXIT
  DB=$(pg_createdb load)
fi
echo "PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}'), durable settings (fsync on)," \
  "$WRITERS writers × $RATE steps/s, $READERS readers, ${SECONDS_}s" >&2

# The schema first, so the processes start on equal terms.
"$BIN" verify --db "$DB" >/dev/null 2>&1 || true

pids=()
for w in $(seq 1 "$WRITERS"); do
  "$BIN" writer --db "$DB" --id "$w" --seconds "$SECONDS_" --rate "$RATE" \
    >"$WORK/writer-$w.jsonl" 2>"$WORK/writer-$w.err" &
  pids+=($!)
done
sleep 2
for r in $(seq 1 "$READERS"); do
  "$BIN" reader --db "$DB" --seconds "$((SECONDS_ - 2))" \
    >"$WORK/reader-$r.json" 2>"$WORK/reader-$r.err" &
  pids+=($!)
done
failed=0
for p in "${pids[@]}"; do
  wait "$p" || failed=$((failed + 1))
done

for f in "$WORK"/writer-*.err "$WORK"/reader-*.err; do
  [ -s "$f" ] && { echo "--- $f" >&2; cat "$f" >&2; }
done
echo "readers:"
cat "$WORK"/reader-*.json
echo "writers: $(cat "$WORK"/writer-*.jsonl | wc -l) runs recorded"
echo "verify:"
"$BIN" verify --db "$DB" "$WORK"/writer-*.jsonl || failed=$((failed + 1))
if [ -z "${PG_LOAD_DB:-}" ]; then
  "$PG_BIN/psql" -qtA "$DB" -c "SELECT 'metric rows in the database: ' || COUNT(*) FROM metrics"
fi
echo "processes that failed: $failed"
exit "$failed"
