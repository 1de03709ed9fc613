#!/usr/bin/env bash
# SQLite under load with the real commands (not part of CI): WRITERS concurrent
# `clickprompt run` loops recording the tiny experiment into one database while
# `clickprompt dash` runs in a detached tmux session and a reader loops
# `runs list --json` and `runs show ID --json`, for SECONDS_ seconds.
# Then: every command's exit code, lock errors (`database is locked`/busy)
# anywhere in their output (must be 0), and each stored run's metric rows
# against a reference run recorded alone (the experiment is deterministic, so
# every run must store exactly as many rows; must all be equal).
#
#   scripts/load-test.sh                 # 4 writers, 120 s
#   WRITERS=2 SECONDS_=30 scripts/load-test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
WRITERS=${WRITERS:-4}
SECONDS_=${SECONDS_:-120}
BIN=${BIN:-${CARGO_TARGET_DIR:-target}/release/clickprompt}
[ -x "$BIN" ] || cargo build --release --bin clickprompt >&2
WORK=$(mktemp -d)
SESSION=cp-load-$$
trap 'tmux kill-session -t "$SESSION" 2>/dev/null || true; rm -rf "$WORK"' EXIT
DB=$WORK/runs.db
EXP=scripts/tiny-ctr.cp
run_args=(--cache-dir "$WORK/cache" --checkpoints "$WORK/ckpt")

# The reference: the experiment alone, in its own database.
"$BIN" run "$EXP" --db "$WORK/ref.db" "${run_args[@]}" >/dev/null 2>"$WORK/ref.err"
ref=$(sqlite3 "$WORK/ref.db" "SELECT COUNT(*) FROM metrics")
echo "reference run: $ref metric rows" >&2

end=$((SECONDS + SECONDS_))
writer() {
  local w=$1 n=0
  while [ $SECONDS -lt $end ]; do
    n=$((n + 1))
    if ! "$BIN" run "$EXP" --db "$DB" "${run_args[@]}" >>"$WORK/w$w.out" 2>>"$WORK/w$w.err"; then
      echo "writer $w run $n: exit $?" >>"$WORK/failures"
    fi
  done
  echo "$n" >"$WORK/w$w.count"
}
reader() {
  local q=0
  while [ $SECONDS -lt $end ]; do
    if "$BIN" runs list --json --db "$DB" >"$WORK/list.json" 2>>"$WORK/reader.err"; then
      id=$(grep -o '"id": *[0-9]*' "$WORK/list.json" | head -1 | grep -o '[0-9]*$' || true)
      if [ -n "$id" ]; then
        "$BIN" runs show "$id" --json --db "$DB" >/dev/null 2>>"$WORK/reader.err" \
          || echo "runs show $id: exit $?" >>"$WORK/failures"
        q=$((q + 1))
      fi
    else
      echo "runs list: exit $?" >>"$WORK/failures"
    fi
    q=$((q + 1))
  done
  echo "$q" >"$WORK/reader.count"
}

# The database exists before the dashboard opens it.
"$BIN" run "$EXP" --db "$DB" "${run_args[@]}" >/dev/null 2>"$WORK/first.err"
tmux new-session -d -s "$SESSION" -x 160 -y 48 "'$BIN' dash --db '$DB' 2>'$WORK/dash.err'; echo \$? >'$WORK/dash.code'; sleep 600"
for w in $(seq 1 "$WRITERS"); do writer "$w" & done
reader &
wait
tmux capture-pane -p -t "$SESSION" >"$WORK/dash.screen" || true
tmux send-keys -t "$SESSION" q
sleep 2
dash_code=$(cat "$WORK/dash.code" 2>/dev/null || echo "still running")

runs=$(sqlite3 "$DB" "SELECT COUNT(*) FROM runs")
finished=$(sqlite3 "$DB" "SELECT COUNT(*) FROM runs WHERE status = 'FINISHED'")
unequal=$(sqlite3 "$DB" "SELECT COUNT(*) FROM runs r WHERE (SELECT COUNT(*) FROM metrics m WHERE m.run_id = r.id) != $ref")
locks=$(cat "$WORK"/*.err "$WORK"/*.out 2>/dev/null | grep -ciE 'database is locked|busy|code: 5\)' || true)
failures=0
[ -f "$WORK/failures" ] && failures=$(wc -l <"$WORK/failures")
writes=0
for w in $(seq 1 "$WRITERS"); do writes=$((writes + $(cat "$WORK/w$w.count"))); done
echo "LOAD writers=$WRITERS seconds=$SECONDS_ runs_started=$writes runs_stored=$runs finished=$finished" \
  "metric_rows_per_run=$ref runs_with_other_row_counts=$unequal lock_errors=$locks failed_commands=$failures" \
  "reader_queries=$(cat "$WORK/reader.count") dash_exit=$dash_code"
[ ! -s "$WORK/failures" ] || sed 's/^/  | /' "$WORK/failures" | head >&2
grep -q "tiny" "$WORK/dash.screen" || { echo "dashboard screen shows no run:" >&2; head -20 "$WORK/dash.screen" >&2; }
[ "$locks" -eq 0 ] && [ "$unequal" -eq 0 ] && [ "$failures" -eq 0 ] && [ "$finished" -eq "$runs" ]
