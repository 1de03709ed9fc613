#!/usr/bin/env python3
"""The study's results table (BENCHMARKS.md) from a run database.

    python3 scripts/study_table.py study.db

For each part of experiments/study.cp (a prefix such as `syn` or `ml`) it
reads the FINISHED runs of `<prefix>_scratch` and `<prefix>_clickprompt`
(one per seed), and prints, as Markdown:
* test AUC and LogLoss, mean ± sample std over seeds, of the backbone from
  scratch, CTR-only after PA-MLM, and joint;
* the paired difference to scratch (same seed): mean, standard error
  (sd / sqrt(n)), mean / SE, and how many seeds it is positive for;
* PA-MLM's prompt gap on validation (masked-token accuracy with − without
  prompts), overall and per field, mean ± std.
Only the standard library: the study runs on machines without the project's
Python tooling.
"""
import json
import math
import sqlite3
import sys
from collections import defaultdict


def mean_sd(xs):
    n = len(xs)
    m = sum(xs) / n
    sd = math.sqrt(sum((x - m) ** 2 for x in xs) / (n - 1)) if n > 1 else float("nan")
    return m, sd


def runs(db, experiment):
    """seed -> run id of the latest FINISHED run of `experiment` per seed."""
    rows = db.execute(
        "SELECT r.id, r.seed FROM runs r JOIN experiments e ON e.id = r.experiment_id "
        "WHERE e.name = ? AND r.status = 'FINISHED' ORDER BY r.id",
        (experiment,),
    ).fetchall()
    return {seed: rid for rid, seed in rows}


def test_metric(db, run, stage, col):
    row = db.execute(
        f"SELECT {col} FROM evaluations WHERE run_id = ? AND stage = ? AND split = 'test' "
        "ORDER BY epoch DESC LIMIT 1",
        (run, stage),
    ).fetchone()
    return None if row is None else row[0]


def gaps(db, run, stage="pretrain"):
    """Prompt gaps of the PA-MLM stage's best validation epoch (last if none)."""
    best = db.execute(
        "SELECT best_epoch FROM stages WHERE run_id = ? AND stage = ?", (run, stage)
    ).fetchone()
    rows = db.execute(
        "SELECT epoch, extra_json FROM evaluations WHERE run_id = ? AND stage = ? "
        "AND split = 'valid' ORDER BY epoch",
        (run, stage),
    ).fetchall()
    if not rows:
        return {}
    pick = [r for r in rows if best and r[0] == best[0]] or rows[-1:]
    m = json.loads(pick[0][1] or "{}")
    out = {}
    for k, v in m.items():
        if v is None:
            continue
        if k == "prompt_gap":
            out["(all)"] = v
        elif k.startswith("prompt_gap[") and k.endswith("]"):
            out[k[len("prompt_gap["):-1]] = v
    return out


def fmt(m, sd, digits=4):
    return f"{m:.{digits}f} ± {sd:.{digits}f}"


def part(db, prefix):
    scratch = runs(db, f"{prefix}_scratch")
    cp = runs(db, f"{prefix}_clickprompt")
    seeds = sorted(set(scratch) & set(cp))
    if not seeds:
        return f"_{prefix}: no seed has finished runs of both `{prefix}_scratch` and `{prefix}_clickprompt`_\n"
    models = [
        ("DCNv2 from scratch", scratch, "ctr_only"),
        ("CTR-only after PA-MLM", cp, "ctr_only"),
        ("joint (ClickPrompt)", cp, "joint"),
    ]
    lines = [
        f"Seeds: {', '.join(map(str, seeds))} (n = {len(seeds)}).",
        "",
        "| model | test AUC | test LogLoss | AUC − scratch (paired) | SE | diff / SE | seeds better |",
        "|---|---|---|---|---|---|---|",
    ]
    base = {s: test_metric(db, scratch[s], "ctr_only", "auc") for s in seeds}
    for name, group, stage in models:
        auc = [test_metric(db, group[s], stage, "auc") for s in seeds]
        ll = [test_metric(db, group[s], stage, "logloss") for s in seeds]
        if any(v is None for v in auc + ll):
            lines.append(f"| {name} | (missing) | | | | | |")
            continue
        row = f"| {name} | {fmt(*mean_sd(auc))} | {fmt(*mean_sd(ll))} |"
        if group is scratch and stage == "ctr_only":
            row += " – | – | – | – |"
        else:
            d = [a - base[s] for a, s in zip(auc, seeds)]
            m, sd = mean_sd(d)
            se = sd / math.sqrt(len(d))
            better = sum(1 for x in d if x > 0)
            ratio = m / se if se > 0 else float("inf")
            row += f" {m:+.4f} | {se:.4f} | {ratio:+.1f} | {better} of {len(d)} |"
        lines.append(row)
    per_seed = [gaps(db, cp[s]) for s in seeds]
    fields = [f for f in per_seed[0] if all(f in g for g in per_seed)]
    if fields:
        lines += [
            "",
            "PA-MLM prompt gap on validation (masked-token accuracy with − without prompts, points):",
            "",
            "| field | " + " | ".join(fields) + " |",
            "|---|" + "---|" * len(fields),
            "| gap | "
            + " | ".join(fmt(*mean_sd([100 * g[f] for g in per_seed]), 1) for f in fields)
            + " |",
        ]
    per = ["", "Per seed (test AUC: scratch / CTR-only after PA-MLM / joint):", ""]
    for s in seeds:
        vals = [test_metric(db, scratch[s], "ctr_only", "auc"), test_metric(db, cp[s], "ctr_only", "auc"),
                test_metric(db, cp[s], "joint", "auc")]
        per.append(f"* seed {s}: " + " / ".join("-" if v is None else f"{v:.4f}" for v in vals))
    return "\n".join(lines + per) + "\n"


def main():
    if len(sys.argv) < 2:
        sys.exit("usage: study_table.py RUNS.db [PREFIX ...]")
    db = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
    prefixes = sys.argv[2:] or ["syn", "ml"]
    for p in prefixes:
        print(f"### {p}\n")
        print(part(db, p))


if __name__ == "__main__":
    main()
