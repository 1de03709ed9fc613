#!/usr/bin/env bash
# The ClickPrompt study (experiments/study.cp): backbone from scratch vs
# CTR-only after PA-MLM vs joint, three seeds, on synthetic clicks and on
# MovieLens-100K; then the results table of BENCHMARKS.md.
#
#   scripts/study.sh [--db study.db]            # the study (under two hours on 2 cores)
#   scripts/study.sh [--db study.db] --ladder   # then the PA-MLM budget ladders (about as long again)
#
# Needs all-MiniLM-L6-v2 (scripts/fetch-plm.sh) and MovieLens-100K at
# $ML100K_DIR (default ../shared/data/ml-100k). Several machines can share
# the work: run `clickprompt run experiments/study.cp --point I` per index of
# `clickprompt plan experiments/study.cp --list` against one database.
set -euo pipefail
cd "$(dirname "$0")/.."
DB=study.db
LADDER=0
while [ $# -gt 0 ]; do
  case "$1" in
    --db) DB="$2"; shift 2 ;;
    --ladder) LADDER=1; shift ;;
    *) echo "usage: scripts/study.sh [--db PATH] [--ladder]" >&2; exit 2 ;;
  esac
done
[ -d assets/plm/all-MiniLM-L6-v2 ] || [ -n "${CLICKPROMPT_PLM:-}" ] || bash scripts/fetch-plm.sh
cargo build --release --quiet
start=$(date +%s)
runs=(syn_scratch syn_clickprompt ml_scratch ml_clickprompt)
[ "$LADDER" = 1 ] && runs+=(syn_ladder ml_ladder)
for e in "${runs[@]}"; do
  target/release/clickprompt run experiments/study.cp --db "$DB" --experiment "$e"
done
echo "study: $(( ($(date +%s) - start) / 60 )) min of training and evaluation"
python3 scripts/study_table.py "$DB"
