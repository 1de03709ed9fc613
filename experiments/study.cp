# The ClickPrompt study (BENCHMARKS.md, "ClickPrompt's effect"): three models,
# three seeds, two datasets, on 2 CPU cores in under two hours.
#
#   scripts/study.sh            # runs this file into study.db, prints the table
#
# Models, per dataset and seed:
#   <d>_scratch      the CTR backbone (DCNv2) trained from scratch on the ids;
#   <d>_clickprompt  PA-MLM over every training row → CTR-only fine-tuning of
#                    the same backbone from the PA-MLM weights (the deployable
#                    result: the backbone's inference cost) → joint fine-tuning
#                    of CTR model + prompts + PLM, starting from both.
# Every setting below was chosen on the validation split (BENCHMARKS.md lists
# what was tried); the test split is scored once per stage, at its best epoch.

# ---------------------------------------------------------------- synthetic
# A mechanism check: an item's theme (its title's meaning) decides half of the
# click signal, most items are rare (Zipf), and the CTR side sees only the ids.
# A backbone from scratch learns a rare item's theme only from its few clicks;
# PA-MLM with field masking makes the ids predict the title and genre words.
dataset synth {
  source synthetic { users 600, items 3000, rows 30000, seed 11, themes 8,
                     semantic 2.0, collaborative 1.0, noise 1.0 }
  label  label
  split  by_time 8:1:1
  field user_id    "User"   id
  field item_id    "Item"   id
  field user_taste "Taste"  text      ctr false
  field title      "Title"  text      ctr false
  field genre      "Genre"  category  ctr false
}

template synth_text = "The user likes {user_taste}. The item is {title}, a {genre} item."

plm minilm2 = bert(env("CLICKPROMPT_PLM", "assets/plm/all-MiniLM-L6-v2")) { max_len 32, pool mean, layers 2 }

experiment syn_clickprompt {
  data synth  text synth_text  plm minilm2
  ctr dcnv2 { embed 16, cross 2, mlp [128, 128], dropout 0.0 }
  prompts 8 deep  fusion prefix_add  device auto
  seeds [1, 2, 3]
  stage pretrain pa_mlm   { epochs 1, batch 32, mask_unit field, warmup 0.05, valid_rows 1000 }
  stage finetune ctr_only { from pretrain, epochs 30, batch 256, lr 2e-3, patience 3 }
  stage finetune joint    { from [pretrain, ctr_only], epochs 1, batch 32, lr 1e-4, plm_lr 5e-5,
                            warmup 0.05, max_rows 6000 }
}

experiment syn_scratch extends syn_clickprompt {
  plm none
  stages { finetune ctr_only { epochs 30, batch 256, lr 2e-3, patience 3 } }
}

# ---------------------------------------------------------------- MovieLens-100K
# By-time 8:1:1 as in the reference setup; PA-MLM over all 80,000 training
# rows (one epoch) on the first two layers of MiniLM with a short template.
dataset ml100k {
  source movielens_100k(env("ML100K_DIR", "../shared/data/ml-100k"))
  label  rating > 3
  split  by_time 8:1:1
  field user_id    "User ID"    id
  field gender     "Gender"     category map { M: "male", F: "female" }
  field age        "Age"        bucket [18, 25, 35, 45, 50, 56]
  field occupation "Job"        category
  field zip        "Zip code"   category   text false
  field item_id    "Movie ID"   id         text false
  field title      "Title"      text       ctr false
  field genres     "Genres"     multi "|"  text false
  field genre      "Film genre" category
}

template ml_text = "A {age} year old {gender} {occupation} watched {title}, a {genre} film."

plm minilm2_ml = bert(env("CLICKPROMPT_PLM", "assets/plm/all-MiniLM-L6-v2")) { max_len 40, pool mean, layers 2 }

experiment ml_clickprompt {
  data ml100k  text ml_text  plm minilm2_ml
  ctr dcnv2 { embed 16, cross 3, mlp [256, 256, 256], dropout 0.1 }
  prompts 10 deep  fusion prefix_add  device auto
  seeds [1, 2, 3]
  stage pretrain pa_mlm   { epochs 1, batch 32, mask_unit field, warmup 0.05, valid_rows 2000 }
  stage finetune ctr_only { from pretrain, epochs 10, batch 1024, lr 1e-3, patience 2 }
  stage finetune joint    { from [pretrain, ctr_only], epochs 1, batch 32, lr 1e-4, plm_lr 5e-5,
                            warmup 0.05, max_rows 8000, valid_rows 2000 }
}

experiment ml_scratch extends ml_clickprompt {
  plm none
  stages { finetune ctr_only { epochs 10, batch 1024, lr 1e-3, patience 2 } }
}
