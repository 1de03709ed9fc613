#!/usr/bin/env bash
# clickprompt against the PyTorch baseline (benches/torch/) on this machine:
# the same rows, tokens, batches and initial weights, run alternately, one
# table out (see BENCHMARKS.md, "Against PyTorch").
#
#   scripts/bench-vs-torch.sh            # every phase, 2 rounds
#   ROUNDS=3 PHASES="ctr_train_dcnv2 ctr_infer" scripts/bench-vs-torch.sh
#
# Steps: build the release bench (cargo bench --no-run), export the workload
# (.cache/vs-torch/), check that both compute the same losses (check.py),
# then benches/torch/compare.py runs the phases. Environment: ROUNDS, PHASES,
# THREADS (threads of each framework; default every core), QUIET_BUSY,
# QUIET_WINDOW, QUIET_TIMEOUT (how quiet the machine must be before each run,
# and how long to wait for it), ML100K_DIR. Needs scripts/setup-torch.sh,
# scripts/fetch-plm.sh and ML-100K. Not part of CI: it ran 48 minutes on the
# shared 2-core VM under load (12 of them waiting for quiet, PyTorch's OpenMP
# threads slowed ~5x by the contention); on a quiet machine ~10 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=.venv-torch/bin/python
OUT=${OUT:-.cache/vs-torch}
if [ ! -x "$PY" ]; then
  echo "no PyTorch baseline installed: run scripts/setup-torch.sh first" >&2
  exit 1
fi
start=$(date +%s)
echo "== building the release bench" >&2
BIN=$(cargo bench --bench vs_torch --no-run --message-format=json 2>/dev/null \
  | "$PY" -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "vs_torch" and m.get("executable"):
        print(m["executable"])')
if [ -z "$BIN" ]; then
  echo "could not build benches/vs_torch.rs (cargo bench --bench vs_torch --no-run)" >&2
  exit 1
fi
echo "== exporting the workload to $OUT" >&2
"$BIN" export "$OUT" >&2
echo "== checking that both frameworks compute the same losses" >&2
"$PY" benches/torch/check.py "$OUT"
echo "== running the phases alternately" >&2
"$PY" benches/torch/compare.py "$BIN" "$OUT"
echo "(end to end, build included: $(( $(date +%s) - start )) s; table also in $OUT/table.md)"
