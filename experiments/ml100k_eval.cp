# The MovieLens-100K evaluation recorded in BENCHMARKS.md: with the same
# backbone (DCNv2) and seed, the backbone from scratch, the PLM alone, and
# ClickPrompt (PA-MLM → joint, then CTR-only from PA-MLM). The PLM stages see
# a 4,000-row budget of training rows (about 15 samples/s on 2 cores); the
# CTR-only stages see the whole training split.
#
#   clickprompt run experiments/ml100k_eval.cp

dataset ml100k {
  source movielens_100k(env("ML100K_DIR", "../shared/data/ml-100k"))
  label  rating > 3
  split  by_time 8:1:1
  field user_id    "User ID"    id
  field gender     "Gender"     category map { M: "male", F: "female" }
  field age        "Age"        bucket [18, 25, 35, 45, 50, 56]
  field occupation "Job"        category
  field zip        "Zip code"   category   text false   # too noisy for the text
  field item_id    "Movie ID"   id
  field title      "Title"      text
  field genres     "Genres"     multi "|"  text false
  field genre      "Film genre" category
}

template reference = each "{name} is {value}." join " "

plm minilm = bert(env("CLICKPROMPT_PLM", "assets/plm/all-MiniLM-L6-v2")) { max_len 64, pool mean }

experiment eval_clickprompt {
  data ml100k  text reference  plm minilm
  ctr dcnv2 { embed 16, cross 3, mlp [256, 256, 256], dropout 0.1 }
  prompts 10 deep  fusion prefix_add  device auto  seed 42
  stage pretrain pa_mlm   { epochs 1, batch 32, lr 5e-5, mask 0.15, warmup 0.05, max_rows 4000 }
  stage finetune joint    { epochs 1, batch 32, lr 1e-3, plm_lr 5e-5, warmup 0.05, max_rows 4000 }
  stage finetune ctr_only { from pretrain, epochs 10, batch 1024, lr 1e-3, patience 2 }
}

experiment eval_scratch extends eval_clickprompt {
  plm none
  stages { finetune ctr_only { epochs 10, batch 1024, lr 1e-3, patience 2 } }
}

experiment eval_plm_only extends eval_clickprompt {
  ctr none  fusion none
  stages { finetune plm_only { epochs 1, batch 32, lr 5e-5, warmup 0.05, max_rows 4000 } }
}
