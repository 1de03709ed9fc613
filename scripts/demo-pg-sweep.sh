#!/usr/bin/env bash
# A sweep spread over processes with no coordinator, recorded in one PostgreSQL database: starts a
# throw-away PostgreSQL, runs three `clickprompt run --point I` processes at once (as three Slurm
# array tasks or three pods of an indexed Job would), each one point of a sweep over the seed, then
# lists the runs and the groups: the whole sweep, started by three processes, is one group.
#
#   scripts/demo-pg-sweep.sh            # builds clickprompt (debug) first; CLICKPROMPT_BIN=... to skip
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${CLICKPROMPT_BIN:-}" ]; then
  cargo build --bin clickprompt >&2
  CLICKPROMPT_BIN=$PWD/target/debug/clickprompt
fi
CP=$CLICKPROMPT_BIN
WORK=$(mktemp -d)
chmod 755 "$WORK"
. scripts/pg-throwaway.sh
pg_throwaway_start "$WORK/pg"
trap 'pg_throwaway_stop; rm -rf "$WORK"' EXIT
DB=$(pg_createdb sweeps)

cat >"$WORK/sweep.cp" <<'CP'
dataset clicks {
  source synthetic { users 200, items 300, rows 4000, seed 7 }
  label  label
  split  random 8:1:1 seed 1
  field user_id    "User"  id
  field user_taste "Taste" text
  field item_id    "Item"  id
  field genre      "Genre" category
}

experiment base {
  data clicks  plm none
  ctr dnn { embed 8, mlp [32] }
  device cpu  seed 1
  stage finetune ctr_only { epochs 2, batch 256, lr 1e-3 }
}

# A sweep over the seed: its points are replicates of one configuration, one group.
sweep replicas over base { seed in [1, 2, 3] }
CP

echo "\$ clickprompt plan sweep.cp --experiment replicas --list"
(cd "$WORK" && "$CP" plan sweep.cp --experiment replicas --list)
echo
echo "\$ for i in 0 1 2; do clickprompt run sweep.cp --experiment replicas --point \$i --db postgres://…/sweeps & done; wait"
pids=()
for i in 0 1 2; do
  (cd "$WORK" && mkdir -p "host$i" && cd "host$i" &&
    exec "$CP" run ../sweep.cp --experiment replicas --point "$i" --db "$DB" \
      >"../point-$i.out" 2>"../point-$i.err") &
  pids+=($!)
done
failed=0
for p in "${pids[@]}"; do wait "$p" || failed=1; done
for i in 0 1 2; do
  echo "--- point $i: $(grep -m1 "point $i of" "$WORK/point-$i.err" | sed 's/^info: //')"
  [ "$failed" = 0 ] || cat "$WORK/point-$i.err"
done
[ "$failed" = 0 ] || exit 1
echo
echo "\$ clickprompt runs list --db postgres://…/sweeps"
"$CP" runs list --db "$DB"
echo
echo "\$ clickprompt runs list --groups --db postgres://…/sweeps"
"$CP" runs list --groups --db "$DB"
echo
echo "\$ psql … -c 'SELECT group_id, group_name, COUNT(*) … FROM run_summary GROUP BY group_id, group_name'"
"$PG_BIN/psql" -q "$DB" -c "SELECT group_id, group_name, COUNT(*) AS runs, COUNT(DISTINCT host) AS hosts,
  ROUND(AVG(test_auc)::numeric, 4) AS mean_test_auc FROM run_summary GROUP BY group_id, group_name"
