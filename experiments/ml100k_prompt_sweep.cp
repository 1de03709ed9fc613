# How many prompts? K ∈ {1, 5, 10, 20} × backbone ∈ {deepfm, dcnv2}: 8 runs,
# named like `prompt_count[prompts=5,ctr=dcnv2]`.

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

experiment clickprompt {
  data ml100k  text reference  plm minilm
  ctr dcnv2 { embed 16, mlp [256, 256], dropout 0.1 }
  prompts 10 deep
  stage pretrain pa_mlm   { epochs 1, batch 32, lr 1e-3, plm_lr 5e-5, mask 0.15, warmup 0.05 }
  stage finetune joint    { epochs 2, batch 32, lr 1e-4, patience 2 }
  stage finetune ctr_only { from pretrain, epochs 4, batch 1024, lr 1e-3 }
}

sweep prompt_count over clickprompt {
  prompts in [1, 5, 10, 20],
  ctr     in [deepfm, dcnv2],
}

sweep joint_lr over clickprompt { stages.joint.lr in [5e-5, 1e-4, 2e-4] }
