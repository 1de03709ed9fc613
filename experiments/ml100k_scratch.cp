# CTR backbones alone on MovieLens-100K (no PLM): the usual baselines.
# `sweep backbones` runs them all with the same stage settings.

dataset ml100k {
  source movielens_100k(env("ML100K_DIR", "../shared/data/ml-100k"))
  label  rating > 3
  split  by_time 8:1:1
  min_count 2
  field user_id    "User ID"    id
  field gender     "Gender"     category
  field age        "Age"        bucket [18, 25, 35, 45, 50, 56]
  field occupation "Job"        category
  field zip        "Zip code"   category
  field item_id    "Movie ID"   id
  field genres     "Genres"     multi "|"
  field genre      "Film genre" category
}

experiment dcnv2_alone {
  data ml100k
  ctr dcnv2 { embed 16, cross 3, mlp [256, 256, 256], dropout 0.1 }
  device auto  seed 42  metrics [auc, logloss]
  stage finetune ctr_only { epochs 10, batch 1024, lr 1e-3, weight_decay 1e-6, patience 2 }
}

experiment autoint_alone extends dcnv2_alone {
  ctr autoint { embed 16, layers 3, heads 2, att_dim 32, mlp [256, 256] }
}

experiment fibinet_alone extends dcnv2_alone {
  ctr fibinet { embed 16, reduction 3, bilinear field_interaction, mlp [256, 256] }
}

sweep backbones over dcnv2_alone { ctr in [lr, fm, dnn, deepfm, dcn, dcnv2, autoint, xdeepfm, fibinet] }
