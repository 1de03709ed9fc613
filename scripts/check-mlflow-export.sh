#!/usr/bin/env bash
# Checks that MLflow itself reads `clickprompt runs export --format mlflow`:
# records a few small runs (synthetic clicks, CTR backbones alone, two stages
# each, a sweep of two points), exports them into an MLflow file store, and
# reads them back with MLflow's client (mlflow.search_runs, MlflowClient):
# experiments, run names and statuses, params, metric values and histories,
# tags, artifacts, and a search filter on a stage metric.
#
# Needs python3; the first time it installs mlflow-skinny from PyPI into an
# ignored virtual environment ($MLFLOW_VENV, default target/mlflow-venv).
# Not part of .ci/run (it needs PyPI and a minute or two).
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${MLFLOW_VENV:-target/mlflow-venv}"
if ! "$VENV/bin/python" -c 'import mlflow' 2>/dev/null; then
  echo "check-mlflow-export: installing mlflow-skinny into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet mlflow-skinny
fi
echo "check-mlflow-export: $("$VENV/bin/python" -c 'import mlflow; print("mlflow", mlflow.__version__)')"

cargo build --quiet
BIN="$(cd "${CARGO_TARGET_DIR:-target}/debug" && pwd)/clickprompt"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

cat > "$WORK/tiny.cp" <<'CP'
dataset synth {
  source synthetic { users 60, items 80, rows 1500, seed 3, themes 3,
                     semantic 1.5, collaborative 1.5, noise 0.5 }
  label  label
  split  by_time 8:1:1
  field user_id "User"  id
  field item_id "Item"  id
  field genre   "Genre" category
}

experiment tiny_dnn {
  data synth
  ctr dnn { embed 8, mlp [32], dropout 0.0 }
  device cpu  seed 5
  stage finetune ctr_only as warm { epochs 2, batch 128, lr 3e-3 }
  stage finetune ctr_only as long { from warm, epochs 3, batch 128, lr 1e-3 }
}

sweep tiny_embed over tiny_dnn { ctr.embed in [4, 8] }
CP

export CLICKPROMPT_DB="$WORK/runs.db"
(cd "$WORK" && "$BIN" run tiny.cp >/dev/null)
"$BIN" runs list
"$BIN" runs list --json > "$WORK/runs.json"
(cd "$WORK" && "$BIN" runs export --format mlflow mlruns --checkpoints link)

MLFLOW_ALLOW_FILE_STORE=true "$VENV/bin/python" - "$WORK/mlruns" "$WORK/runs.json" <<'PY'
import json, math, sys
import mlflow
from mlflow.tracking import MlflowClient

root, runs_json = sys.argv[1], sys.argv[2]
ours = {r["id"]: r for r in json.load(open(runs_json))}
mlflow.set_tracking_uri("file://" + root)
client = MlflowClient()
problems = []

def check(cond, what):
    if not cond:
        problems.append(what)

names = sorted(e.name for e in client.search_experiments())
want = sorted({"Default"} | {r["experiment"] for r in ours.values()})
check(names == want, f"experiments {names} != {want}")

# output_format="list": Run objects, no pandas needed (mlflow-skinny).
found = mlflow.search_runs(search_all_experiments=True, output_format="list")
check(len(found) == len(ours), f"search_runs found {len(found)} runs, the database has {len(ours)}")
status = {"FINISHED": "FINISHED", "FAILED": "FAILED", "INTERRUPTED": "KILLED", "RUNNING": "RUNNING"}
steps_checked = 0
for found_run in found:
    rid = int(found_run.data.tags["clickprompt.run_id"])
    r = ours[rid]
    run = client.get_run(found_run.info.run_id)
    check(run.info.run_name == f'{r["name"]} #{rid}', f"run {rid}: name {run.info.run_name}")
    check(run.info.status == status[r["status"]], f"run {rid}: status {run.info.status}")
    for key in ("test_auc", "test_logloss", "best_valid_auc"):
        got, want_v = run.data.metrics.get(key), r[key]
        check(want_v is None or (got is not None and math.isclose(got, want_v, rel_tol=1e-12)),
              f"run {rid}: {key} {got} != {want_v}")
    check(run.data.params.get("ctr.backbone.name") == "dnn", f"run {rid}: params {sorted(run.data.params)[:5]}")
    check(run.data.tags.get("clickprompt.best_stage") == r["best_stage"], f"run {rid}: best_stage tag")
    hist = client.get_metric_history(run.info.run_id, "long.loss")
    check(len(hist) > 0 and [m.step for m in hist] == sorted(m.step for m in hist),
          f"run {rid}: long.loss history {len(hist)} points")
    valid = client.get_metric_history(run.info.run_id, "long.valid_auc")
    check([m.step for m in valid] == [1, 2, 3], f"run {rid}: long.valid_auc steps {[m.step for m in valid]}")
    steps_checked += len(hist) + len(valid)
    arts = {a.path for a in client.list_artifacts(run.info.run_id)}
    check({"plan.yaml", "experiment.cp"} <= arts, f"run {rid}: artifacts {arts}")
    ckpts = client.list_artifacts(run.info.run_id, "checkpoints")
    check(len(ckpts) == 2, f"run {rid}: checkpoint folders {[a.path for a in ckpts]}")

best = mlflow.search_runs(search_all_experiments=True,
                          filter_string="metrics.`long.test_auc` > 0.5",
                          order_by=["metrics.`long.test_auc` DESC"], output_format="list")
check(len(best) >= 1, "no run with long.test_auc > 0.5")

print(f"mlflow read {len(found)} runs in {len(names)} experiments; "
      f"{steps_checked} metric-history points and every summary metric matched the database; "
      f"{len(best)} run(s) with long.test_auc > 0.5")
if problems:
    print("PROBLEMS:\n  " + "\n  ".join(problems))
    sys.exit(1)
print("check-mlflow-export: OK")
PY
