#!/usr/bin/env bash
# The ClickPrompt study (experiments/study.cp): backbone from scratch vs
# CTR-only after PA-MLM vs joint, three seeds, on synthetic clicks and on
# MovieLens-100K; then the results table of BENCHMARKS.md.
#
#   scripts/study.sh [--db study.db] [extra `clickprompt run` arguments]
#
# Needs all-MiniLM-L6-v2 (scripts/fetch-plm.sh) and MovieLens-100K at
# $ML100K_DIR (default ../shared/data/ml-100k). Under two hours on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
DB=study.db
if [ "${1:-}" = "--db" ]; then DB="$2"; shift 2; fi
[ -d assets/plm/all-MiniLM-L6-v2 ] || [ -n "${CLICKPROMPT_PLM:-}" ] || bash scripts/fetch-plm.sh
cargo build --release --quiet
start=$(date +%s)
target/release/clickprompt run experiments/study.cp --db "$DB" "$@"
echo "study: $(( ($(date +%s) - start) / 60 )) min of training and evaluation"
python3 scripts/study_table.py "$DB" syn ml
