#!/usr/bin/env bash
# End-to-end check of the live dashboard under tmux: start a short training
# run with `clickprompt run FILE.cp --dash` in a detached tmux pane, capture
# the pane, and require the run's name and an AUC value on screen; then leave
# with q and require a clean exit and the summary after the restore. Finally
# open `clickprompt dash` on the database the run wrote. Hostile endings:
# the terminal going away (tmux kill-session) after ? and q, SIGTERM
# (terminal restored, exit 130), and `run --dash` losing its terminal (run
# marked INTERRUPTED); each process must be gone within its limit.
# The panic and never-started cases drive `run_with_dashboard` through
# tests/dash_live.rs. Skips (exit 0) when tmux is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v tmux >/dev/null 2>&1; then
  echo "e2e-dash: skipped: tmux is not installed"
  exit 0
fi

TARGET="${CARGO_TARGET_DIR:-target}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/e2e-dash.XXXXXX")"
SESSION="e2e-dash-$$"
cleanup() {
  tmux kill-session -t "$SESSION" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'echo "e2e-dash: FAILED at line $LINENO: $BASH_COMMAND" >&2' ERR

echo "== e2e-dash: building"
# One cargo call builds the binary and the test harness (integration tests
# build the crate's binaries); copy both at once, since a shared target dir
# may be rebuilt from another checkout meanwhile.
cargo test --quiet --test dash_live --no-run
cp "$TARGET/debug/clickprompt" "$WORK/clickprompt"
TEST_BIN="$(ls -t "$TARGET"/debug/deps/dash_live-* | grep -v '\.d$' | head -1)"
cp "$TEST_BIN" "$WORK/dash_live"
BIN="$WORK/clickprompt"

pane() { tmux capture-pane -p -t "$SESSION" 2>/dev/null || true; }

fail() {
  echo "e2e-dash: FAILED: $*" >&2
  echo "---- pane ----" >&2
  pane >&2
  echo "--------------" >&2
  exit 1
}

# wait_for REGEX SECONDS: poll the pane until REGEX (extended) matches.
wait_for() {
  local re="$1" limit="$2" waited=0
  while (( waited < limit * 4 )); do
    if pane | grep -Eq -- "$re"; then return 0; fi
    sleep 0.25
    waited=$((waited + 1))
  done
  return 1
}

start_pane() {
  tmux new-session -d -s "$SESSION" -x 120 -y 40 -c "$WORK" \
    "env CLICKPROMPT_DB='$WORK/runs.db' $1; echo E2E-EXIT=\$?; sleep 600"
}

NAME=dash_e2e
cat > "$WORK/e2e.cp" <<'CP'
dataset syn {
  source synthetic { users 100, items 150, rows 8000, seed 3 }
  label  label
  split  by_time 8:1:1
  field user_id    "User ID" id
  field item_id    "Item ID" id
  field genre      "Genre"   category
}
experiment dash_e2e {
  data syn  plm none
  ctr dcnv2 { embed 8, cross 2, mlp [32] }
  device cpu  seed 1
  stage finetune ctr_only { epochs 3, batch 256, lr 3e-3 }
}
CP
"$BIN" check "$WORK/e2e.cp" >/dev/null || fail "the e2e experiment does not check"
echo "== e2e-dash: clickprompt run e2e.cp --dash (under tmux)"
start_pane "'$BIN' run '$WORK/e2e.cp' --dash"

# The live view comes up and follows the run.
wait_for "RUNNING|FINISHED" 120 || fail "the live view never showed the run"
wait_for "$NAME" 5 || fail "the run's name ($NAME) is not on screen"
# Training ends; the view stays, says so, and shows evaluation AUCs.
wait_for "training finished" 600 || fail "no 'training finished' banner"
wait_for "(valid|test @)[ 0-9]+ +0\.[0-9]{4}" 5 || fail "no AUC value on screen"
SCREEN="$(pane)"
grep -q "FINISHED" <<<"$SCREEN" || fail "the run did not finish"
AUC="$(grep -Eo "test @[0-9]+ +0\.[0-9]{4}" <<<"$SCREEN" | head -1 || true)"
echo "   on screen: run $NAME, ${AUC:-valid AUCs (no test row)}"

# q leaves; the terminal is restored, then the summary is printed.
tmux send-keys -t "$SESSION" q
wait_for "E2E-EXIT=" 60 || fail "the process did not exit after q"
pane | grep -q "E2E-EXIT=0" || fail "non-zero exit after q"
pane | grep -q "Live   Compare" && fail "the dashboard is still on screen after exit"
pane | grep -q "$NAME" || fail "no summary after the terminal was restored"
tmux kill-session -t "$SESSION"

# The database the run wrote, seen from a separate `clickprompt dash`.
echo "== e2e-dash: clickprompt dash --db (under tmux)"
start_pane "'$BIN' dash --db '$WORK/runs.db'"
wait_for "Runs · 1 of 1" 30 || fail "clickprompt dash did not list the run"
pane | grep -q "$NAME" || fail "the runs view lacks the run's name"
pane | grep -Eq "FINISHED +[a-z_][a-z0-9_]* +0\.[0-9]{4}" || fail "the runs view lacks the best stage and its test AUC"
tmux send-keys -t "$SESSION" Enter
wait_for "Validation" 10 || fail "Enter did not open the live view"
tmux send-keys -t "$SESSION" q
wait_for "E2E-EXIT=0" 10 || fail "clickprompt dash did not exit cleanly"

tmux kill-session -t "$SESSION"

# The process running in the pane (the shell's child), for signals and
# liveness checks.
pane_child() {
  local shell
  shell="$(tmux display -p -t "$SESSION" '#{pane_pid}')"
  pgrep -P "$shell" | head -1
}

# alive PID: the process exists and has not exited. An exited process whose
# parent died with the tmux session stays a zombie until PID 1 reaps it
# (seconds in some containers), and `kill -0` still succeeds on a zombie.
alive() {
  local stat
  stat="$(ps -o stat= -p "$1" 2>/dev/null)" || return 1
  [[ -n "$stat" && "$stat" != Z* ]]
}

# gone_within PID SECONDS: waits for PID to exit; prints the time it took.
gone_within() {
  local pid="$1" limit_ms=$(( $2 * 1000 )) start now
  start=$(date +%s%N)
  while alive "$pid"; do
    now=$(date +%s%N)
    if (( (now - start) / 1000000 > limit_ms )); then
      echo "   still running after $2 s: $(ps -o pid=,stat=,%cpu=,cmd= -p "$pid" || true)" >&2
      kill -KILL "$pid" 2>/dev/null || true
      return 1
    fi
    sleep 0.05
  done
  now=$(date +%s%N)
  echo "   gone after $(( (now - start) / 1000000 )) ms"
}

# The reported hang: open the help, close it with q, then lose the
# terminal (tmux kill-session, like a dropped SSH link). The dashboard
# must exit at once instead of spinning on the dead terminal.
echo "== e2e-dash: clickprompt dash exits when its terminal goes away"
start_pane "'$BIN' dash --db '$WORK/runs.db'"
wait_for "Runs · 1 of 1" 30 || fail "clickprompt dash did not start"
tmux send-keys -t "$SESSION" '?'
wait_for "any key closes" 5 || fail "? did not open the help"
tmux send-keys -t "$SESSION" q
sleep 0.5
pane | grep -q "any key closes" && fail "q did not close the help"
PID="$(pane_child)"
[[ -n "$PID" ]] || fail "no dashboard process in the pane"
tmux kill-session -t "$SESSION"
gone_within "$PID" 2 || fail "clickprompt dash kept running after its terminal went away"

# SIGTERM: the terminal is restored (no alternate screen, cooked mode with
# echo) and the process exits 130 with a message.
echo "== e2e-dash: clickprompt dash honours SIGTERM"
tmux new-session -d -s "$SESSION" -x 120 -y 40 -c "$WORK" \
  "'$BIN' dash --db '$WORK/runs.db'; echo E2E-EXIT=\$?; stty -a | tr ' ;' '\n\n' | grep -xE -- '-?(icanon|echo)' | tr '\n' ' '; echo; sleep 600"
wait_for "Runs · 1 of 1" 30 || fail "clickprompt dash did not start"
tmux send-keys -t "$SESSION" '?'
wait_for "any key closes" 5 || fail "? did not open the help"
tmux send-keys -t "$SESSION" q
sleep 0.5
PID="$(pane_child)"
[[ -n "$PID" ]] || fail "no dashboard process in the pane"
kill -TERM "$PID"
gone_within "$PID" 2 || fail "clickprompt dash ignored SIGTERM"
wait_for "E2E-EXIT=" 5 || fail "no exit status after SIGTERM"
pane | grep -q "E2E-EXIT=130" || fail "SIGTERM: exit status is not 130"
pane | grep -q "dashboard: stopped by a signal" || fail "SIGTERM: no message"
pane | grep -q "Live   Compare" && fail "SIGTERM: the dashboard is still on screen"
pane | grep -Eq "^icanon echo" || fail "SIGTERM: the terminal was left in raw mode"
tmux kill-session -t "$SESSION"

# `run --dash` losing its terminal mid-training: training stops and the run
# is marked INTERRUPTED (as with Ctrl-C), not left RUNNING.
echo "== e2e-dash: run --dash whose terminal goes away marks the run INTERRUPTED"
sed -e 's/rows 8000/rows 60000/' -e 's/epochs 3, batch 256/epochs 20, batch 64/' \
  -e 's/dash_e2e/dash_hup/' "$WORK/e2e.cp" > "$WORK/hup.cp"
start_pane "env CLICKPROMPT_DB='$WORK/hup.db' '$BIN' run '$WORK/hup.cp' --dash"
wait_for "RUNNING" 120 || fail "the live view never showed the run"
PID="$(pane_child)"
[[ -n "$PID" ]] || fail "no run process in the pane"
tmux kill-session -t "$SESSION"
gone_within "$PID" 10 || fail "run --dash kept running after its terminal went away"
STATUS="$("$BIN" runs list --db "$WORK/hup.db" | grep dash_hup || true)"
echo "   $STATUS"
grep -q INTERRUPTED <<<"$STATUS" || fail "the run is not marked INTERRUPTED: $STATUS"
# By the process itself as it stopped, not found dead later by `runs list`.
WHY="$("$BIN" runs show 1 --db "$WORK/hup.db" | grep -E '^ *error' || true)"
echo "   $WHY"
grep -q "stopped without finishing" <<<"$WHY" && fail "the run was left RUNNING and only found dead later: $WHY"

# A panic on the training thread restores the terminal and is reported.
echo "== e2e-dash: a training panic restores the terminal"
rm -f "$WORK"/panic.db*
start_pane "env DASH_E2E_DB='$WORK/panic.db' '$WORK/dash_live' --ignored --nocapture --test-threads 1 a_training_panic_restores_the_terminal"
wait_for "E2E-EXIT=" 60 || fail "the panic did not end the dashboard"
pane | grep -q "simulated trainer bug" || fail "the panic message was lost"
pane | grep -q "dashboard returned: the training thread panicked" || fail "the panic did not come back as an error"
pane | grep -q "Live   Compare" && fail "the dashboard is still on screen after the panic"
pane | grep -q "E2E-EXIT=0" || fail "the panic test failed"

tmux kill-session -t "$SESSION"

# Training that fails before recording a run closes the view by itself.
echo "== e2e-dash: a run that never starts closes the dashboard"
start_pane "env DASH_E2E_DB='$WORK/never.db' '$WORK/dash_live' --ignored --nocapture --test-threads 1 a_run_that_never_starts_closes_the_dashboard"
wait_for "E2E-EXIT=" 30 || fail "the dashboard stayed open with nothing to show"
pane | grep -q 'training returned: Err("e2e.cp:3:9: unknown source `nope`")' || fail "the training error was lost"
pane | grep -q "E2E-EXIT=0" || fail "the never-starting run test failed"

echo "e2e-dash: ok"
