"""The PyTorch side of `scripts/bench-vs-torch.sh`: one phase per process.

    python benches/torch/bench.py PHASE DIR

DIR is what `cargo bench --bench vs_torch -- export DIR` wrote: the encoded
rows and tokens, the batch orders, the initial weights and the phase
parameters. Phases (the same as the Rust side's): matmul, pa_mlm, joint,
joint_infer, ctr_train_dcnv2, ctr_train_deepfm, ctr_infer. Each prints one
`RESULT {json}` line with samples/s and peak resident memory (VmHWM).

Threads: `torch.set_num_threads($THREADS)` (default: every core), one
inter-op thread.
"""

import json
import os
import sys
import time

import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import load_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from models import ClickPrompt, CtrModel, bert_config, param_groups  # noqa: E402


def vm_hwm_mib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


class Timer:
    """Wall and CPU seconds (every thread) of a timed section."""

    def __init__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def stop(self):
        return time.perf_counter() - self.wall, time.process_time() - self.cpu


def result(phase, rows, timed, **extra):
    seconds, cpu = timed
    r = {
        "framework": "pytorch",
        "phase": phase,
        "rows": rows,
        "seconds": round(seconds, 4),
        "cpu_seconds": round(cpu, 4),
        "samples_per_s": round(rows / seconds, 2),
        "peak_mib": round(vm_hwm_mib(), 1),
    }
    r.update(extra)
    print("RESULT " + json.dumps(r), flush=True)


class Data:
    def __init__(self, d):
        self.dir = d
        with open(os.path.join(d, "meta.json")) as f:
            self.meta = json.load(f)
        # Tensors are read on first use: a phase holds only what it needs.
        self._file = safe_open(os.path.join(d, "data.safetensors"), framework="pt")
        self._t = {}
        self.orders = load_file(os.path.join(d, "orders.safetensors"))
        self.n_multi = sum(1 for f in self.meta["fields"] if f["layout"] == "multi")

    def tensor(self, name):
        if name not in self._t:
            self._t[name] = self._file.get_tensor(name)
        return self._t[name]

    def ctr_inputs(self, split, rows):
        single = self.tensor(f"{split}.single")[rows]
        multi = [self.tensor(f"{split}.multi.{j}")[rows] for j in range(self.n_multi)]
        return single, multi, self.tensor(f"{split}.labels")[rows]

    def text(self, split, rows):
        """Token ids padded to the batch's longest row, and the mask (HF's dynamic padding)."""
        lengths = self.tensor(f"{split}.lengths")[rows]
        width = int(lengths.max())
        ids = self.tensor(f"{split}.tokens")[rows, :width]
        mask = (torch.arange(width).unsqueeze(0) < lengths.unsqueeze(1)).to(torch.long)
        return ids, mask

    def plm_batches(self, split):
        name = "plm_train" if split == "train" else "plm_test"
        n = sum(1 for k in self.orders if k.startswith(name + "."))
        return [self.orders[f"{name}.{i}"] for i in range(n)]

    def weights(self, name):
        return load_file(os.path.join(self.dir, f"weights-{name}.safetensors"))


def mask_tokens(ids, mask, text, ratio, gen):
    """BERT masking as HF's DataCollatorForLanguageModeling: each real,
    non-special token chosen with p `ratio`; 80% [MASK], 10% random, 10% kept."""
    special = torch.zeros_like(ids, dtype=torch.bool)
    for s in [text["pad_id"]] + text["special_ids"]:
        special |= ids == s
    eligible = (mask > 0) & ~special
    chosen = eligible & (torch.rand(ids.shape, generator=gen) < ratio)
    labels = torch.where(chosen, ids, torch.full_like(ids, -100))
    u = torch.rand(ids.shape, generator=gen)
    out = ids.clone()
    out[chosen & (u < 0.8)] = text["mask_id"]
    rnd = chosen & (u >= 0.8) & (u < 0.9)
    out[rnd] = torch.randint(text["vocab_size"], ids.shape, generator=gen)[rnd]
    return out, labels


def clickprompt_model(data, mlm):
    cfg = bert_config(data.meta["plm_dir"])
    model = ClickPrompt(data.meta, cfg, mlm)
    model.load_ours(data.weights("pa_mlm" if mlm else "joint"))
    return model


def optimizer(model, meta):
    return torch.optim.AdamW(
        param_groups(model, meta["lr"], meta["plm_lr"]), betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0
    )


def plm_train(data, phase):
    meta = data.meta
    mlm = phase == "pa_mlm"
    model = clickprompt_model(data, mlm)
    model.train()
    opt = optimizer(model, meta)
    gen = torch.Generator().manual_seed(42)
    batches = data.plm_batches("train")[: meta["plm_warm"] + meta["plm_steps"]]
    rows = tokens = 0
    t = Timer()
    for i, r in enumerate(batches):
        if i == meta["plm_warm"]:
            t = Timer()
        single, multi, labels = data.ctr_inputs("train", r)
        ids, mask = data.text("train", r)
        if mlm:
            ids, mlm_labels = mask_tokens(ids, mask, meta["text"], meta["mask_ratio"], gen)
            loss = model.mlm_loss(single, multi, ids, mask, mlm_labels)
        else:
            loss = F.binary_cross_entropy_with_logits(model.joint_logit(single, multi, ids, mask), labels)
        value = loss.item()
        if value != value:
            raise RuntimeError("loss became NaN")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if i >= meta["plm_warm"]:
            rows += len(r)
            tokens += ids.shape[1] * len(r)
    result(phase, rows, t.stop(), tokens_per_row=round(tokens / rows, 2))


def joint_infer(data):
    meta = data.meta
    model = clickprompt_model(data, False)
    model.eval()
    batches = data.plm_batches("test")[: meta["plm_warm"] + meta["infer_steps"]]
    rows = tokens = 0
    out = []
    t = Timer()
    with torch.inference_mode():
        for i, r in enumerate(batches):
            if i == meta["plm_warm"]:
                t = Timer()
            single, multi, _ = data.ctr_inputs("test", r)
            ids, mask = data.text("test", r)
            out.append(model.joint_logit(single, multi, ids, mask))
            if i >= meta["plm_warm"]:
                rows += len(r)
                tokens += ids.shape[1] * len(r)
        logits = torch.cat(out).tolist()
    secs = t.stop()
    if any(v != v for v in logits):
        raise RuntimeError("non-finite logit")
    result("joint_infer", rows, secs, tokens_per_row=round(tokens / rows, 2))


def ctr_model(data, backbone):
    meta = data.meta
    model = CtrModel(meta, backbone)
    model.load_ours(data.weights(backbone))
    return model


def ctr_train(data, backbone):
    meta = data.meta
    model = ctr_model(data, backbone)
    model.train()
    opt = optimizer(model, meta)
    bs = meta["ctr_batch"]

    def step(r):
        single, multi, labels = data.ctr_inputs("train", r)
        logit, _ = model(single, multi)
        loss = F.binary_cross_entropy_with_logits(logit, labels)
        value = loss.item()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return value

    perm = data.orders["ctr.0"]
    for i in range(meta["ctr_warm"]):
        step(perm[i * bs : (i + 1) * bs])
    rows, last = 0, 0.0
    t = Timer()
    for e in range(1, meta["ctr_epochs"] + 1):
        perm = data.orders[f"ctr.{e}"]
        for s in range(0, len(perm), bs):
            r = perm[s : s + bs]
            last = step(r)
            rows += len(r)
    result(f"ctr_train_{backbone}", rows, t.stop(), last_loss=round(last, 4))


def ctr_infer(data):
    meta = data.meta
    model = ctr_model(data, "dcnv2")
    model.eval()
    bs = meta["ctr_batch"]
    n = meta["train_rows"]
    starts = list(range(0, n, bs))

    def run(count):
        out, rows = [], 0
        t = Timer()
        with torch.inference_mode():
            for s in starts[:count]:
                r = torch.arange(s, min(s + bs, n))
                single, multi, _ = data.ctr_inputs("train", r)
                out.append(model(single, multi)[0])
                rows += len(r)
            logits = torch.cat(out).tolist()
        if len(logits) != rows:
            raise RuntimeError("lost rows")
        return rows, t.stop()

    run(10)
    rows = wall = cpu = 0
    for _ in range(meta["ctr_infer_passes"]):
        r, (w, c) = run(len(starts))
        rows += r
        wall += w
        cpu += c
    result("ctr_infer", rows, (wall, cpu))


def matmul(data):
    out = {"framework": "pytorch", "phase": "matmul"}
    for m, k, n in data.meta["matmul_shapes"]:
        a, b = torch.randn(m, k), torch.randn(k, n)
        best = float("inf")
        for _ in range(25):
            t = time.perf_counter()
            a @ b
            best = min(best, time.perf_counter() - t)
        out[f"{m}x{k}x{n}"] = round(2 * m * k * n / best / 1e9, 1)
    print("RESULT " + json.dumps(out), flush=True)


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    phase, d = sys.argv[1], sys.argv[2]
    threads = int(os.environ.get("THREADS", os.cpu_count()))
    torch.set_num_threads(threads)
    torch.set_num_interop_threads(1)
    data = Data(d)
    if phase == "matmul":
        matmul(data)
    elif phase in ("pa_mlm", "joint"):
        plm_train(data, phase)
    elif phase == "joint_infer":
        joint_infer(data)
    elif phase in ("ctr_train_dcnv2", "ctr_train_deepfm"):
        ctr_train(data, phase.rsplit("_", 1)[1])
    elif phase == "ctr_infer":
        ctr_infer(data)
    else:
        sys.exit(f"unknown phase {phase}")


if __name__ == "__main__":
    main()
