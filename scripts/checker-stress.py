#!/usr/bin/env python3
"""Hostile experiment files for the checker, just under its 128 KiB cap:
every construct that could be quadratic, multiplied by a sweep's or
`seeds`' runs, or copied by `extends`. Time them with the fuzzer's replay:

    python3 scripts/checker-stress.py /tmp/stress
    cargo run --release --example fuzz -- --target checker --replay /tmp/stress/*.cp

Each line is the best CPU time of five checks; anything over 50 ms, a panic
or an error without a position makes the replay exit 1. Results are in
docs/reliability.md.
"""
import os
import re
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
LIM = 126_000


def main(out):
    os.makedirs(out, exist_ok=True)
    q = open(os.path.join(ROOT, "experiments/quickstart.cp")).read()
    ev = open(os.path.join(ROOT, "experiments/ml100k_eval.cp")).read()
    study = open(os.path.join(ROOT, "experiments/study.cp")).read()
    base = re.findall(r"^experiment (\w+)", q, re.M)[0]
    nums = lambda n: ", ".join(str(i) for i in range(1, n + 1))
    sweep = "\nsweep s over %s { prompts in [%s], seed in [%s] }\n" % (base, nums(40), nums(50))
    thousand = nums(1000)

    def w(name, text):
        with open(os.path.join(out, name + ".cp"), "w") as f:
            f.write(text)

    def fill(unit, head="", tail="", lim=LIM):
        parts, size, i = [], len(head) + len(tail), 0
        while True:
            u = unit(i)
            if size + len(u.encode()) > lim:
                return head + "".join(parts) + tail
            parts.append(u)
            size += len(u.encode())
            i += 1

    genre = '  field genre      "Genre"        category\n'
    gender_map = 'map { M: "male", F: "female" }'
    big_mlp = lambda n: re.sub(r"mlp \[[^\]]*\]", "mlp [" + "8, " * n + "8]", q, count=1)
    children = lambda n, parent: "".join(
        "experiment k%d extends %s {}\n" % (i, parent) for i in range(n))

    # Declarations by the thousand, and duplicates among them.
    w("fields", q.replace(genre, fill(lambda i: '  field f%d "F" category column "genre"\n' % i)
                          + '  field genre "Genre" category\n'))
    w("dupfields", q.replace(genre, fill(lambda i: '  field g "F" category column "genre"\n')))
    w("map", ev.replace(gender_map, fill(lambda i: 'k%d: "v", ' % i, "map { ", " }")))
    w("dupmap", ev.replace(gender_map, fill(lambda i: 'k: "v", ', "map { ", " }")))
    w("ctrdup", q.replace("ctr dcnv2 {", fill(lambda i: "embed 8, ", "ctr dcnv2 { ", ""), 1))
    w("ctrunknown", q.replace("ctr dcnv2 {", "ctr dcnv2 { " + "".join(
        "zz%d 1, " % i for i in range(12500)), 1))
    w("ctrnear", q.replace("ctr dcnv2 {", "ctr dcnv2 { " + "".join(
        "embd%d 1, " % (i % 10) for i in range(11000)), 1))
    w("plmparams", q.replace("{ max_len", fill(lambda i: "max_len 32, ", "{ ", "") + " max_len", 1))
    w("templates", q + fill(lambda i: 'template t%d = "x {title}"\n' % i))
    w("datasets", q + fill(lambda i: 'dataset d%d { source synthetic { users 3 } label label '
                                     'split by_time 8:1:1 field user_id "U" id }\n' % i))
    w("exps", q + fill(lambda i: "experiment z%d extends %s { seed %d }\n" % (i, base, i)))
    w("extends", q + fill(lambda i: "experiment x%d extends %s { seed %d }\n"
                          % (i, "x%d" % (i - 1) if i else base, i)))
    w("sweeps", q + fill(lambda i: "sweep s%d over %s { prompts in [1, 2] }\n" % (i, base)))
    w("axes", q + "\nsweep s over %s { " % base + fill(lambda i: "prompts in [1], ") + "}\n")
    w("stages", q.replace("experiment %s {" % base, "experiment %s {\n" % base + fill(
        lambda i: "  stage finetune ctr_only as c%d { epochs 1 }\n" % i, lim=120_000), 1))
    # A file of valid experiments cut off at the cap, mid-declaration: it
    # fails to parse at its end, so it is parsed twice (the second time
    # recording what was expected there).
    many = q + fill(lambda i: ("experiment c%d {\n  data synth  plm none\n"
                               "  ctr dcnv2 { embed 8, cross 2, mlp [32] }\n"
                               "  device cpu  seeds [1, 2]\n"
                               "  stage finetune ctr_only { epochs 1, batch 256, lr 3e-3 }\n}\n") % i,
                    lim=140_000)
    w("cut", many.encode()[:128 * 1024].decode("utf-8", "ignore"))
    # Unknown names, each searched among thousands.
    w("unknowns", q + fill(lambda i: "experiment u%d { data nope%d }\n" % (i, i)))
    w("extends_unknown", q + "".join(
        "experiment k%d extends nope%d {}\n" % (i, i) for i in range(3500)))
    w("sweep_unknown", q + children(1500, base) + "".join(
        "sweep s%d over nope%d { prompts in [1] }\n" % (i, i) for i in range(1500)))
    w("data_unknown", q + "".join(
        'dataset d%d { source synthetic { users 3 } label label split by_time 8:1:1 '
        'field user_id "U" id }\n' % i for i in range(600))
      + "".join("experiment u%d { data nope%d }\n" % (i, i) for i in range(1000)))
    # Multiplied by runs: sweeps, seeds, extends.
    w("sweep_2000", study + "\nsweep big over ml_clickprompt { prompts in [%s], seed in [%s] }\n"
      % (nums(40), nums(50)))
    w("seeds_2000", study.replace("seeds [1, 2, 3]", "seeds [%s]" % thousand))
    w("seeds", q + "".join("experiment y%d extends %s { seeds [%s] }\n" % (i, base, thousand)
                           for i in range(25)))
    w("mlp_sweep", big_mlp(20000) + sweep)
    w("mlp_seeds", big_mlp(20000) + "experiment many extends %s { seeds [%s] }\n" % (base, thousand))
    w("stages_sweep", q.replace("experiment %s {" % base, "experiment %s {\n" % base + fill(
        lambda i: "  stage finetune ctr_only as c%d { epochs 1 }\n" % i, lim=60_000), 1) + sweep)
    w("metrics_sweep", q.replace("experiment %s {" % base,
                                 "experiment %s {\n  metrics [%slogloss]\n" % (base, "auc, " * 15000), 1)
      + sweep)
    w("map_sweep", ev.replace(gender_map, fill(lambda i: 'k%d: "v", ' % i, "map { ", " }", LIM - 3000))
      + sweep.replace(base, "eval_clickprompt"))
    w("bigtemplate", q + 'template big = "' + "{title} " * 13000 + '"\n'
      + "experiment bt extends %s { text big }\n" % base + sweep.replace("over " + base, "over bt"))
    w("extends_amp", big_mlp(18000) + children(1800, base))
    w("extends_err", q.replace("ctr dcnv2 {", "ctr dcnv2 { " + "".join(
        "zz%d 1, " % i for i in range(6000)), 1) + children(1500, base))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: checker-stress.py OUT_DIR")
    main(sys.argv[1])
