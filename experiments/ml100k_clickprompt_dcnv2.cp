# ClickPrompt on MovieLens-100K with a DCNv2 backbone, following the paper's
# recipe: PA-MLM pretraining, then joint fine-tuning, then the backbone alone.
# Also declares `dcnv2_scratch`, the same backbone trained from scratch.
#
#   clickprompt check experiments/ml100k_clickprompt_dcnv2.cp
#   clickprompt run   experiments/ml100k_clickprompt_dcnv2.cp --experiment clickprompt_dcnv2

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

experiment clickprompt_dcnv2 {
  data ml100k  text reference  plm minilm
  ctr dcnv2 { embed 16, cross 3, mlp [256, 256], dropout 0.1 }
  prompts 10 deep  fusion prefix_add  device auto  seed 42
  stage pretrain pa_mlm   { epochs 1, batch 32, lr 1e-3, plm_lr 5e-5, mask 0.15, warmup 0.05 }
  stage finetune joint    { epochs 2, batch 32, lr 1e-4, plm_lr 5e-5, patience 2 }
  stage finetune ctr_only { from pretrain, epochs 4, batch 1024, lr 1e-3, patience 2 }
}

# The same backbone without the PLM: the baseline ClickPrompt must beat.
experiment dcnv2_scratch extends clickprompt_dcnv2 {
  plm none
  stages { finetune ctr_only { epochs 8, batch 1024, lr 1e-3, patience 2 } }
}
