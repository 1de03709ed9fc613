# Quickstart: ClickPrompt end to end on built-in synthetic data, sized to run
# on a laptop CPU in a few minutes with MiniLM (scripts/fetch-plm.sh).
#
#   clickprompt check experiments/quickstart.cp
#   clickprompt run   experiments/quickstart.cp
#
# The synthetic clicks mix a semantic signal (user taste ↔ item title/genre,
# visible to the PLM through the text) with a collaborative one (ids only).

dataset synth {
  source synthetic { users 300, items 400, rows 6000, seed 7, themes 6,
                     semantic 2.0, collaborative 1.0, noise 1.0 }
  label  label                    # already 0/1
  split  by_time 8:1:1
  field user_id    "User"         id
  field user_taste "Taste"        text
  field item_id    "Item"         id
  field title      "Title"        text
  field genre      "Genre"        category
}

template profile = "The user likes {user_taste}. The item is {title}, a {genre} item."

plm minilm = bert(env("CLICKPROMPT_PLM", "assets/plm/all-MiniLM-L6-v2")) { max_len 40, pool mean }

experiment quickstart {
  data synth  text profile  plm minilm
  ctr dcnv2 { embed 16, cross 2, mlp [64, 64], dropout 0.0 }
  prompts 4 deep  fusion prefix_add  device auto  seed 42
  stage pretrain pa_mlm   { epochs 1, batch 32, lr 1e-4, mask 0.15, max_rows 3000 }
  stage finetune joint    { epochs 2, batch 32, lr 1e-3, plm_lr 5e-5, warmup 0.05, max_rows 2000 }
  stage finetune ctr_only { from pretrain, epochs 30, batch 128, lr 2e-3, patience 3 }
}

# The same backbone from scratch, for comparison.
experiment dcnv2_scratch extends quickstart {
  plm none
  stages { finetune ctr_only { epochs 30, batch 128, lr 2e-3, patience 3 } }
}
