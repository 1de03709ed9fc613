# ClickPrompt on MovieLens-100K with a DeepFM backbone (and DeepFM alone).

dataset ml100k {
  source movielens_100k(env("ML100K_DIR", "../shared/data/ml-100k"))
  label  rating > 3
  split  by_time 8:1:1
  field user_id    "User ID"    id
  field gender     "Gender"     category map { M: "male", F: "female" }
  field age        "Age"        bucket [18, 25, 35, 45, 50, 56]
  field occupation "Job"        category
  field item_id    "Movie ID"   id
  field title      "Title"      text
  field genre      "Film genre" category
}

template reference = each "{name} is {value}." join " "

plm minilm = bert(env("CLICKPROMPT_PLM", "assets/plm/all-MiniLM-L6-v2")) { max_len 64, pool mean }

experiment clickprompt_deepfm {
  data ml100k  text reference  plm minilm
  ctr deepfm { embed 16, mlp [256, 256], dropout 0.1 }
  prompts 10 deep  fusion prefix_add alpha   # learnable mixing weight
  stage pretrain pa_mlm   { epochs 1, batch 32, lr 1e-3, plm_lr 5e-5, mask 0.15, warmup 0.05 }
  stage finetune joint    { epochs 2, batch 32, lr 1e-4, patience 2, schedule cosine }
  stage finetune ctr_only { from pretrain, epochs 4, batch 1024, lr 1e-3 }
}

experiment deepfm_scratch extends clickprompt_deepfm {
  plm none
  stages { finetune ctr_only { epochs 8, batch 1024, lr 1e-3, patience 2 } }
}
