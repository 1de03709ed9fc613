# A CTR-only experiment on generated data that runs in seconds on one core:
# what scripts/disk-full.sh and scripts/load-test.sh record, over and over.
dataset synth {
  source synthetic { users 60, items 80, rows 3000, seed 7, themes 4,
                     semantic 2.0, collaborative 1.0, noise 1.0 }
  label  label
  split  by_time 8:1:1
  field user_id "User"  id
  field item_id "Item"  id
  field genre   "Genre" category
}

experiment tiny {
  data synth  plm none  device cpu  seed 1
  ctr dcnv2 { embed 8, cross 1, mlp [16], dropout 0.0 }
  stages { finetune ctr_only { epochs 3, batch 32, lr 1e-3 } }
}
