#!/usr/bin/env python3
"""The study's results table (BENCHMARKS.md) from a run database.

    python3 scripts/study_table.py study.db [more.db ...]

For each part of experiments/study.cp (a prefix such as `syn` or `ml`) it
reads the FINISHED runs of `<prefix>_scratch` and `<prefix>_clickprompt`
(one per seed), and prints, as Markdown:
* test AUC and LogLoss, mean ± sample std over seeds, of the backbone from
  scratch, CTR-only after PA-MLM, and joint;
* the paired difference to scratch (same seed): mean, standard error
  (sd / sqrt(n)), mean / SE, and how many seeds it is positive for;
* PA-MLM's prompt gap on validation (masked-token accuracy with − without
  prompts), overall and per field, mean ± std.
Several databases may be given (e.g. one per machine or per seed, each run
with `--point`): runs are pooled, keyed by database and run id.
Only the standard library: the study runs on machines without the project's
Python tooling.
"""
import json
import re
import math
import sqlite3
import sys
from collections import defaultdict


def mean_sd(xs):
    n = len(xs)
    m = sum(xs) / n
    sd = math.sqrt(sum((x - m) ** 2 for x in xs) / (n - 1)) if n > 1 else float("nan")
    return m, sd


def runs(dbs, name):
    """seed -> (database, run id) of the latest FINISHED run named `name` or
    `name[seed=S]` (one experiment's seed repeats), per seed."""
    out = {}
    for db in dbs:
        rows = db.execute(
            "SELECT id, seed FROM runs WHERE status = 'FINISHED' "
            "AND (name = ? OR name LIKE ? ESCAPE '\\') ORDER BY id",
            (name, name.replace("_", "\\_") + "[seed=%]"),
        ).fetchall()
        out.update({seed: (db, rid) for rid, seed in rows})
    return out


def ladder(dbs, sweep):
    """PA-MLM budget -> {seed: (database, run id)} for `sweep[stages.pretrain.max_rows=N,seed=S]`."""
    out = {}
    for db in dbs:
        rows = db.execute(
            "SELECT id, seed, name FROM runs WHERE status = 'FINISHED' AND name LIKE ? ESCAPE '\\' ORDER BY id",
            (sweep.replace("_", "\\_") + "[%",),
        ).fetchall()
        for rid, seed, name in rows:
            m = re.search(r"max_rows=(\d+)", name)
            if m:
                out.setdefault(int(m.group(1)), {})[seed] = (db, rid)
    return out


def train_rows(run):
    db, rid = run
    row = db.execute("SELECT rows FROM stages WHERE run_id = ? AND stage = 'pretrain'", (rid,)).fetchone()
    return None if row is None else row[0]


def test_metric(run, stage, col):
    db, run = run
    row = db.execute(
        f"SELECT {col} FROM evaluations WHERE run_id = ? AND stage = ? AND split = 'test' "
        "ORDER BY epoch DESC LIMIT 1",
        (run, stage),
    ).fetchone()
    return None if row is None else row[0]


def gaps(run, stage="pretrain"):
    """Prompt gaps of the PA-MLM stage's best validation epoch (last if none)."""
    db, run = run
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


def part(dbs, prefix):
    scratch = runs(dbs, f"{prefix}_scratch")
    cp = runs(dbs, f"{prefix}_clickprompt")
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
    base = {s: test_metric(scratch[s], "ctr_only", "auc") for s in seeds}
    for name, group, stage in models:
        auc = [test_metric(group[s], stage, "auc") for s in seeds]
        ll = [test_metric(group[s], stage, "logloss") for s in seeds]
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
    per_seed = [gaps(cp[s]) for s in seeds]
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
    rungs = ladder(dbs, f"{prefix}_ladder")
    top = train_rows(cp[seeds[0]])
    if top is not None:
        rungs[top] = cp
    if len(rungs) > 1:
        lines += [
            "",
            "Budget ladder (PA-MLM rows; CTR-only after PA-MLM and joint against scratch, paired over seeds):",
            "",
            "| PA-MLM rows | seeds | prompt gap (points) | CTR-only − scratch | SE | joint − scratch | SE |",
            "|---|---|---|---|---|---|---|",
        ]
        for budget in sorted(rungs):
            group = rungs[budget]
            ss = [s for s in seeds if s in group]
            if not ss:
                continue
            cells = [f"{budget:,}", str(len(ss))]
            g = [gaps(group[s]).get("(all)") for s in ss]
            cells.append(fmt(*mean_sd([100 * x for x in g]), 1) if None not in g else "-")
            for stage in ("ctr_only", "joint"):
                d = [test_metric(group[s], stage, "auc") for s in ss]
                if None in d:
                    cells += ["-", "-"]
                    continue
                d = [a - base[s] for a, s in zip(d, ss)]
                m, sd = mean_sd(d)
                cells += [f"{m:+.4f}", f"{sd / math.sqrt(len(d)):.4f}" if len(d) > 1 else "-"]
            lines.append("| " + " | ".join(cells) + " |")
    per = ["", "Per seed (test AUC: scratch / CTR-only after PA-MLM / joint):", ""]
    for s in seeds:
        vals = [test_metric(scratch[s], "ctr_only", "auc"), test_metric(cp[s], "ctr_only", "auc"),
                test_metric(cp[s], "joint", "auc")]
        per.append(f"* seed {s}: " + " / ".join("-" if v is None else f"{v:.4f}" for v in vals))
    return "\n".join(lines + per) + "\n"


def main():
    if len(sys.argv) < 2:
        sys.exit("usage: study_table.py RUNS.db [MORE.db ...]")
    dbs = [sqlite3.connect(f"file:{p}?mode=ro", uri=True) for p in sys.argv[1:]]
    for prefix, title in [("syn", "Synthetic (mechanism check)"), ("ml", "MovieLens-100K, by-time 8:1:1")]:
        print(f"### {title}\n")
        print(part(dbs, prefix))


if __name__ == "__main__":
    main()
