"""The PyTorch + HuggingFace transformers side of the comparison: the same
models as clickprompt's, written as a PyTorch user would write them.

* CTR side: one embedding table shared by every categorical field (field f's
  local id i at row offset[f] + i), multi-valued fields mean-pooled over their
  non-PAD ids; DCNv2 (full-rank cross layers x0 * (W x + b) + x, in parallel
  with a ReLU MLP) and DeepFM (MLP next to the FM interaction vector); h goes
  through `fc_out` to the logit.
* Prompt generator: h -> Linear(h, d) -> tanh -> Linear(d, K * L * 2 * d),
  viewed as (B, K, 2L, d): slot 2l = layer l's key prefix, 2l + 1 its value
  prefix.
* PLM: HF `BertModel` (no pooler) with the prefixes passed as past key
  values (a `DynamicCache`), the attention mask [ones(K) | text mask]; HF
  shifts the text's position ids by K. Joint: masked mean pooling -> dense ->
  tanh -> out, plus the CTR logit. PA-MLM: HF's BERT MLM head (dense, GELU,
  LayerNorm, decoder tied to the word embeddings) over every position, loss
  on the masked ones (labels -100 elsewhere), as `BertForMaskedLM` does.

Weights are loaded from clickprompt's own initial weights (our variable
names), so both frameworks start from the same point.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F
from transformers import BertConfig, BertModel
from transformers.cache_utils import DynamicCache
from transformers.models.bert.modeling_bert import BertOnlyMLMHead


class FieldEmbedding(nn.Module):
    def __init__(self, fields, dim):
        super().__init__()
        singles = [f for f in fields if f["layout"] == "single"]
        multis = [f for f in fields if f["layout"] == "multi"]
        if any(f["layout"] == "number" for f in fields):
            raise ValueError("number fields are not part of this workload")
        offsets, total = [], 0
        for f in singles:
            offsets.append(total)
            total += max(f["vocab_size"], 1)
        multi_offsets = []
        for f in multis:
            multi_offsets.append(total)
            total += max(f["vocab_size"], 1)
        self.register_buffer("single_offsets", torch.tensor(offsets, dtype=torch.long))
        self.multi_offsets = multi_offsets
        self.weight = nn.Parameter(torch.randn(total, dim) * 0.01)
        self.dim = dim
        self.num_fields = len(singles) + len(multis)

    def forward(self, single, multi):
        parts = [F.embedding(single + self.single_offsets, self.weight)]
        for ids, off in zip(multi, self.multi_offsets):
            emb = F.embedding(ids + off, self.weight)  # (B, W, E)
            mask = (ids != 0).to(emb.dtype)
            count = mask.sum(1, keepdim=True).clamp(min=1.0)
            parts.append(((emb * mask.unsqueeze(2)).sum(1) / count).unsqueeze(1))
        return torch.cat(parts, 1)  # (B, F, E)


def mlp(in_dim, dims):
    layers, d = [], in_dim
    for o in dims:
        layers += [nn.Linear(d, o), nn.ReLU()]
        d = o
    return nn.Sequential(*layers), d


class CrossNetV2(nn.Module):
    def __init__(self, dim, depth):
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(dim, dim) for _ in range(depth)])

    def forward(self, x0):
        x = x0
        for layer in self.layers:
            x = x0 * layer(x) + x
        return x


class CtrModel(nn.Module):
    """`backbone`: "dcnv2" or "deepfm"; forward returns (logit (B,), h)."""

    def __init__(self, meta, backbone):
        super().__init__()
        e = meta["embed"]
        self.embedding = FieldEmbedding(meta["fields"], e)
        flat = self.embedding.num_fields * e
        self.backbone = backbone
        self.mlp, mlp_out = mlp(flat, meta["mlp"])
        if backbone == "dcnv2":
            self.cross = CrossNetV2(flat, meta["cross"])
            self.hidden_dim = flat + mlp_out
        elif backbone == "deepfm":
            self.hidden_dim = mlp_out + e
        else:
            raise ValueError(backbone)
        self.fc_out = nn.Linear(self.hidden_dim, 1)

    def hidden(self, single, multi):
        emb = self.embedding(single, multi)
        x0 = emb.flatten(1)
        if self.backbone == "dcnv2":
            return torch.cat([self.cross(x0), self.mlp(x0)], 1)
        fm = 0.5 * (emb.sum(1).pow(2) - emb.pow(2).sum(1))
        return torch.cat([self.mlp(x0), fm], 1)

    def forward(self, single, multi):
        h = self.hidden(single, multi)
        return self.fc_out(h).squeeze(1), h

    def load_ours(self, w, prefix="ctr."):
        sd = {"embedding.weight": w[prefix + "embedding.weight"]}
        for i, m in enumerate(self.mlp[0::2]):
            sd[f"mlp.{2 * i}.weight"] = w[f"{prefix}mlp.{i}.weight"]
            sd[f"mlp.{2 * i}.bias"] = w[f"{prefix}mlp.{i}.bias"]
        if self.backbone == "dcnv2":
            for i in range(len(self.cross.layers)):
                sd[f"cross.layers.{i}.weight"] = w[f"{prefix}cross.{i}.weight"]
                sd[f"cross.layers.{i}.bias"] = w[f"{prefix}cross.{i}.bias"]
        sd["fc_out.weight"] = w[prefix + "fc_out.weight"]
        sd["fc_out.bias"] = w[prefix + "fc_out.bias"]
        sd["embedding.single_offsets"] = self.embedding.single_offsets
        self.load_state_dict(sd, strict=True)


class PromptGenerator(nn.Module):
    def __init__(self, h_dim, d, k, layers):
        super().__init__()
        self.dense = nn.Linear(h_dim, d)
        self.out = nn.Linear(d, k * layers * 2 * d)
        self.k, self.layers, self.d = k, layers, d

    def forward(self, h):
        p = self.out(torch.tanh(self.dense(h)))
        return p.view(h.shape[0], self.k, 2 * self.layers, self.d)


def bert_config(plm_dir):
    cfg = BertConfig.from_pretrained(plm_dir)
    cfg.is_decoder = False
    return cfg


def prefix_cache(p, cfg):
    """(B, K, 2L, d) prompts -> a DynamicCache of per-layer (B, H, K, dh) keys/values."""
    b, k, _, d = p.shape
    h = cfg.num_attention_heads
    pairs = []
    for layer in range(cfg.num_hidden_layers):
        key = p[:, :, 2 * layer].reshape(b, k, h, d // h).transpose(1, 2)
        value = p[:, :, 2 * layer + 1].reshape(b, k, h, d // h).transpose(1, 2)
        pairs.append((key, value))
    return DynamicCache(ddp_cache_data=pairs)


def load_bert(bert, w, prefix="plm."):
    sd = {k[len(prefix):]: v for k, v in w.items() if k.startswith(prefix)}
    own = bert.state_dict()
    missing = [k for k in own if k not in sd and not k.endswith("position_ids")]
    if missing:
        raise KeyError(f"weights missing for {missing[:5]}")
    bert.load_state_dict({k: sd[k] for k in own if k in sd}, strict=False)


class ClickPrompt(nn.Module):
    """CTR -> prompts -> BERT (prefixes as past key values) -> heads.

    `mlm=True` builds the PA-MLM model (MLM head), else the joint classifier."""

    def __init__(self, meta, cfg, mlm):
        super().__init__()
        self.ctr = CtrModel(meta, "dcnv2")
        self.cfg = cfg
        d = cfg.hidden_size
        self.prompt = PromptGenerator(self.ctr.hidden_dim, d, meta["prompts"], cfg.num_hidden_layers)
        self.bert = BertModel(cfg, add_pooling_layer=False)
        self.k = meta["prompts"]
        self.is_mlm = mlm
        if mlm:
            self.cls = BertOnlyMLMHead(cfg)
            # Tied as BertForMaskedLM ties them: the decoder is the word
            # embedding matrix, its bias the head's output bias.
            self.cls.predictions.decoder.weight = self.bert.embeddings.word_embeddings.weight
            self.cls.predictions.decoder.bias = self.cls.predictions.bias
        else:
            self.head_dense = nn.Linear(d, d)
            self.head_out = nn.Linear(d, 1)

    def encode(self, single, multi, ids, mask):
        logit, h = self.ctr(single, multi)
        cache = prefix_cache(self.prompt(h), self.cfg)
        full = torch.cat([torch.ones(ids.shape[0], self.k, dtype=mask.dtype), mask], 1)
        out = self.bert(input_ids=ids, attention_mask=full, past_key_values=cache, use_cache=False)
        return logit, out.last_hidden_state

    def joint_logit(self, single, multi, ids, mask):
        ctr_logit, hs = self.encode(single, multi, ids, mask)
        m = mask.to(hs.dtype).unsqueeze(2)
        pooled = (hs * m).sum(1) / m.sum(1).clamp(min=1.0)
        return self.head_out(torch.tanh(self.head_dense(pooled))).squeeze(1) + ctr_logit

    def mlm_loss(self, single, multi, ids, mask, labels):
        _, hs = self.encode(single, multi, ids, mask)
        logits = self.cls(hs)
        return F.cross_entropy(logits.view(-1, logits.shape[-1]), labels.view(-1), ignore_index=-100)

    def load_ours(self, w):
        self.ctr.load_ours(w)
        for name in ["dense", "out"]:
            getattr(self.prompt, name).weight.data.copy_(w[f"prompt.{name}.weight"])
            getattr(self.prompt, name).bias.data.copy_(w[f"prompt.{name}.bias"])
        load_bert(self.bert, w)
        if self.is_mlm:
            t = self.cls.predictions.transform
            t.dense.weight.data.copy_(w["mlm.dense.weight"])
            t.dense.bias.data.copy_(w["mlm.dense.bias"])
            t.LayerNorm.weight.data.copy_(w["mlm.layer_norm.weight"])
            t.LayerNorm.bias.data.copy_(w["mlm.layer_norm.bias"])
            self.cls.predictions.bias.data.copy_(w["mlm.bias"])
            if self.cls.predictions.decoder.weight is not self.bert.embeddings.word_embeddings.weight:
                raise RuntimeError("the MLM decoder must stay tied to the word embeddings")
        else:
            for ours, mod in [("dense", self.head_dense), ("out", self.head_out)]:
                mod.weight.data.copy_(w[f"plm_head.{ours}.weight"])
                mod.bias.data.copy_(w[f"plm_head.{ours}.bias"])


def param_groups(model, lr, plm_lr):
    """Our two AdamW groups: `ctr.*` at `lr`, everything else at `plm_lr` (no decay)."""
    ctr, rest = [], []
    for name, p in model.named_parameters():
        (ctr if name.startswith("ctr.") or isinstance(model, CtrModel) else rest).append(p)
    groups = [{"params": ctr, "lr": lr}]
    if rest:
        groups.append({"params": rest, "lr": plm_lr})
    return groups
