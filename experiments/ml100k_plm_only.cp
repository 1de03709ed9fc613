# The PLM alone as a click predictor (no CTR backbone, no prompts): text in,
# pooled state → logit. Compares pooling strategies with a sweep.

dataset ml100k {
  source movielens_100k(env("ML100K_DIR", "../shared/data/ml-100k"))
  label  rating > 3
  split  by_time 8:1:1
  field user_id    "User ID"    id        text false
  field gender     "Gender"     category map { M: "male", F: "female" }
  field age        "Age"        number
  field occupation "Job"        category
  field title      "Title"      text
  field genres     "Genres"     multi "|"
}

template sentence = "The user is a {age} year old {gender} {occupation}. The movie is {title}, genres: {genres}."

plm minilm = bert(env("CLICKPROMPT_PLM", "assets/plm/all-MiniLM-L6-v2")) { max_len 64, pool mean }

experiment plm_only {
  data ml100k  text sentence  plm minilm  ctr none
  stage finetune plm_only { epochs 2, batch 32, lr 5e-5, warmup 0.1, patience 1 }
}

sweep plm_pooling over plm_only { stages.plm_only.pool in [mean, cls, first_last, top2] }
