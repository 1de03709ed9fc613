"""Runs clickprompt's and the PyTorch baseline's phases alternately and prints
one table (`scripts/bench-vs-torch.sh` is the entry point; see BENCHMARKS.md).

    python compare.py OURS_BINARY DIR

For every phase and round the two frameworks run one after the other, each
in its own process, the order swapped every round (ours first in odd rounds,
PyTorch first in even ones) so that a drift in machine speed hits both.
Before each phase the machine must be quiet: the CPU time that other
processes use, sampled over QUIET_WINDOW seconds from /proc/stat, must stay
under QUIET_BUSY (a fraction of all cores); after QUIET_TIMEOUT seconds of
waiting the phase goes ahead and the table says so. During each run the CPU
time of other processes is measured too (machine busy time minus the run's
own) and reported as `other load`; the `CPU-time ratio` column compares the
CPU seconds each framework spent per sample (every thread counted), which a
busy machine disturbs less than wall time.

Environment: ROUNDS (2), PHASES (all), THREADS (every core), QUIET_BUSY
(0.10), QUIET_WINDOW (3), QUIET_TIMEOUT (120).
"""

import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ALL_PHASES = ["pa_mlm", "joint", "joint_infer", "ctr_train_dcnv2", "ctr_train_deepfm", "ctr_infer"]
LABELS = {
    "pa_mlm": "PA-MLM train",
    "joint": "joint train",
    "joint_infer": "joint inference",
    "ctr_train_dcnv2": "CTR-only DCNv2 train",
    "ctr_train_deepfm": "CTR-only DeepFM train",
    "ctr_infer": "CTR-only DCNv2 inference",
}


def cpu_times():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + v[4]
    return sum(v[:8]) - idle, sum(v[:8])  # busy, total (jiffies)


def busy_fraction(window):
    b0, t0 = cpu_times()
    time.sleep(window)
    b1, t1 = cpu_times()
    return (b1 - b0) / max(t1 - t0, 1)


def wait_quiet(env):
    limit = float(env.get("QUIET_BUSY", 0.10))
    window = float(env.get("QUIET_WINDOW", 3))
    timeout = float(env.get("QUIET_TIMEOUT", 120))
    start = time.time()
    while True:
        busy = busy_fraction(window)
        if busy < limit:
            return True, busy, time.time() - start
        if time.time() - start > timeout:
            return False, busy, time.time() - start


def run(cmd, env):
    """Runs one phase; returns its RESULT dict plus the other processes' load."""
    ncpu = os.cpu_count()
    hz = os.sysconf("SC_CLK_TCK")
    b0, _ = cpu_times()
    r0 = os.times()
    w0 = time.time()
    p = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.time() - w0
    r1 = os.times()
    b1, _ = cpu_times()
    if p.returncode != 0:
        sys.stderr.write(p.stdout + p.stderr)
        raise SystemExit(f"failed: {' '.join(cmd)}")
    lines = [line for line in p.stdout.splitlines() if line.startswith("RESULT ")]
    if not lines:
        sys.stderr.write(p.stdout + p.stderr)
        raise SystemExit(f"no RESULT line from {' '.join(cmd)}")
    res = json.loads(lines[-1][len("RESULT "):])
    own = (r1.children_user - r0.children_user) + (r1.children_system - r0.children_system)
    machine = (b1 - b0) / hz
    res["other_load"] = max(machine - own, 0.0) / (wall * ncpu)
    res["wall"] = wall
    return res


def machine_line():
    model = "unknown CPU"
    flags = set()
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name") and model == "unknown CPU":
                model = line.split(":", 1)[1].strip()
            if line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
    if "avx512f" in flags:
        isa = "AVX-512 (avx512f" + (", amx" if "amx_tile" in flags else "") + ")"
    elif "avx2" in flags:
        isa = "AVX2 + FMA" if "fma" in flags else "AVX2"
    else:
        isa = "SSE only"
    return f"{model}, {os.cpu_count()} cores, {isa}, {platform.system()} {platform.release()}"


def fmt_range(v):
    return f"{statistics.median(v):,.1f} ({min(v):,.1f}–{max(v):,.1f})" if len(v) > 1 else f"{v[0]:,.1f}"


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    ours_bin, d = sys.argv[1], sys.argv[2]
    env = dict(os.environ)
    threads = env.setdefault("THREADS", str(os.cpu_count()))
    # Both frameworks get the same number of threads.
    env["RAYON_NUM_THREADS"] = threads
    env["OMP_NUM_THREADS"] = threads
    env["MKL_NUM_THREADS"] = threads
    rounds = int(env.get("ROUNDS", 2))
    phases = env.get("PHASES", " ".join(ALL_PHASES)).split()
    py = sys.executable
    cmds = {
        "ours": lambda ph: [ours_bin, ph],
        "pytorch": lambda ph: [py, os.path.join(HERE, "bench.py"), ph, d],
    }
    t_start = time.time()
    results = {}
    notes = []
    mm = {}
    for fw in ["ours", "pytorch"]:
        mm[fw] = run(cmds[fw]("matmul"), env)
    for ph in phases:
        results[ph] = {"ours": [], "pytorch": []}
        quiet, busy, waited = wait_quiet(env)
        if not quiet:
            notes.append(
                f"{ph}: machine not quiet after {waited:.0f} s "
                f"(other processes {100 * busy:.0f}% of the CPUs); ran anyway"
            )
        for rnd in range(rounds):
            order = ["ours", "pytorch"] if rnd % 2 == 0 else ["pytorch", "ours"]
            for fw in order:
                r = run(cmds[fw](ph), env)
                r["quiet_wait"] = waited
                results[ph][fw].append(r)
                print(
                    f"  {ph:<17} round {rnd + 1} {fw:<8} {r['samples_per_s']:>12,.1f} samples/s  "
                    f"cpu {r['cpu_seconds']:>7.2f} s  peak {r['peak_mib']:>7.0f} MiB  "
                    f"other load {100 * r['other_load']:.0f}%",
                    file=sys.stderr,
                    flush=True,
                )
    total = time.time() - t_start

    shapes = [k for k in mm["ours"] if re.match(r"^\d+x\d+x\d+$", k)]
    lines = []
    lines.append(f"Machine: {machine_line()}; {threads} threads each.")
    lines.append(
        "Matmul GFLOP/s (f32, best of 25), ours / PyTorch: "
        + ", ".join(f"{s} {mm['ours'][s]:.0f} / {mm['pytorch'][s]:.0f}" for s in shapes)
        + "."
    )
    lines.append("")
    lines.append(
        "| phase | ours samples/s | PyTorch samples/s | ours / PyTorch | CPU-time ratio | peak RSS ours / PyTorch (MiB) | RSS ratio | other load |"
    )
    lines.append("|---|---|---|---|---|---|---|---|")
    summary = {}
    for ph in phases:
        o, p = results[ph]["ours"], results[ph]["pytorch"]
        ratios = [a["samples_per_s"] / b["samples_per_s"] for a, b in zip(o, p)]
        rss_o = max(a["peak_mib"] for a in o)
        rss_p = max(b["peak_mib"] for b in p)
        load = max(x["other_load"] for x in o + p)
        ratio = statistics.median(ratios)
        cpu_ratio = statistics.median(
            (b["cpu_seconds"] / b["rows"]) / (a["cpu_seconds"] / a["rows"]) for a, b in zip(o, p)
        )
        rr = f"{ratio:.2f}" + (f" ({min(ratios):.2f}–{max(ratios):.2f})" if len(ratios) > 1 else "")
        lines.append(
            f"| {LABELS.get(ph, ph)} | {fmt_range([a['samples_per_s'] for a in o])} | "
            f"{fmt_range([b['samples_per_s'] for b in p])} | {rr} | {cpu_ratio:.2f} | {rss_o:.0f} / {rss_p:.0f} | "
            f"{rss_o / rss_p:.2f} | ≤ {100 * load:.0f}% |"
        )
        summary[ph] = {"ratio": ratio, "ratios": ratios, "cpu_ratio": cpu_ratio, "rss_ratio": rss_o / rss_p}
    lines.append("")
    lines.append(
        f"{rounds} alternating rounds per phase (ours / PyTorch ratio: median of the rounds' ratios); "
        f"the whole comparison took {total / 60:.1f} min."
    )
    lines.extend(notes)
    table = "\n".join(lines)
    print(table)
    with open(os.path.join(d, "table.md"), "w") as f:
        f.write(table + "\n")
    with open(os.path.join(d, "results.json"), "w") as f:
        json.dump({"matmul": mm, "results": results, "summary": summary, "seconds": total}, f, indent=1)


if __name__ == "__main__":
    main()
