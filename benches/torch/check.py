"""Checks that the PyTorch baseline computes what clickprompt computes.

    python benches/torch/check.py DIR

From the same initial weights (clickprompt's, exported to DIR) and the same
fixed batches, without dropout: the PA-MLM loss (clickprompt's own masking
of 16 rows), the joint loss (16 rows) and the DCNv2 and DeepFM losses (1024
rows), each before and after one AdamW step on that loss's gradients, must
agree with clickprompt's (`check-ours.json`) within TOLERANCE, relative.
The step after the first compares gradients as well: AdamW's first update
is lr · g / (|g| + eps), so a wrong gradient changes the second loss.
Exits 1 on a mismatch.
"""

import json
import os
import sys

import torch
import torch.nn.functional as F
from safetensors.torch import load_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import Data, clickprompt_model, ctr_model, optimizer  # noqa: E402

# f32 on both sides with different summation orders: the six-layer encoder's
# losses agree to ~1e-6 relative (measured); the bound leaves 10x room.
TOLERANCE = 1e-5


def before_after(model, meta, loss_fn):
    model.eval()
    opt = optimizer(model, meta)
    loss = loss_fn()
    before = loss.item()
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    with torch.no_grad():
        after = loss_fn().item()
    return [before, after]


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    d = sys.argv[1]
    torch.set_num_threads(int(os.environ.get("THREADS", os.cpu_count())))
    data = Data(d)
    meta = data.meta
    check = load_file(os.path.join(d, "check.safetensors"))
    with open(os.path.join(d, "check-ours.json")) as f:
        ours = json.load(f)

    rows = check["pa_mlm.rows"]
    single, multi, labels = data.ctr_inputs("train", rows)
    ids, mask = data.text("train", rows)
    masked = check["pa_mlm.ids"]
    mlm_labels = torch.full_like(ids, -100).view(-1)
    mlm_labels[check["pa_mlm.positions"]] = check["pa_mlm.targets"]
    mlm_labels = mlm_labels.view(ids.shape)

    got = {}
    m = clickprompt_model(data, True)
    got["pa_mlm"] = before_after(m, meta, lambda: m.mlm_loss(single, multi, masked, mask, mlm_labels))
    j = clickprompt_model(data, False)
    got["joint"] = before_after(
        j, meta, lambda: F.binary_cross_entropy_with_logits(j.joint_logit(single, multi, ids, mask), labels)
    )
    crow = torch.arange(meta["check_rows_ctr"])
    cs, cm, cl = data.ctr_inputs("train", crow)
    for backbone in ["dcnv2", "deepfm"]:
        c = ctr_model(data, backbone)
        got[backbone] = before_after(c, meta, lambda: F.binary_cross_entropy_with_logits(c(cs, cm)[0], cl))

    bad = 0
    print(f"{'model':<8} {'':<7} {'clickprompt':>12} {'pytorch':>12} {'rel. diff':>10}")
    for name in ["pa_mlm", "joint", "dcnv2", "deepfm"]:
        for i, when in enumerate(["before", "after"]):
            a, b = ours[name][i], got[name][i]
            rel = abs(a - b) / max(abs(a), 1e-12)
            ok = rel <= TOLERANCE
            bad += not ok
            print(f"{name:<8} {when:<7} {a:>12.6f} {b:>12.6f} {rel:>10.2e} {'ok' if ok else 'MISMATCH'}")
    if bad:
        print(f"FAIL: {bad} losses differ by more than {TOLERANCE:g} (relative)")
        sys.exit(1)
    print(f"PASS: every loss agrees within {TOLERANCE:g} (relative), before and after one AdamW step")


if __name__ == "__main__":
    main()
