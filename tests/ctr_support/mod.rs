//! Shared helpers of the CTR / trainer tests: a planted-signal dataset built
//! directly (no loader needed) and small plans.
#![allow(dead_code)]

use clickprompt::data::{Column, ColumnLayout, Dataset, DatasetMeta, FieldMeta, Split};
use clickprompt::plan::{Backbone, BilinearKind, CtrPlan, Schedule, TrainPlan};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

pub const USERS: usize = 60;
pub const ITEMS: usize = 90;
pub const GENRES: usize = 6;
pub const MULTI_WIDTH: usize = 3;

fn field(name: &str, layout: ColumnLayout, vocab: usize) -> FieldMeta {
    FieldMeta {
        name: name.into(),
        layout,
        vocab_size: vocab,
        values: (0..vocab).map(|i| format!("{name}{i}")).collect(),
        scale: None,
    }
}

/// Fields in plan order: user (single), genres (multi), item (single), age (number).
/// The model order is therefore user, item, genres, age.
pub fn meta() -> DatasetMeta {
    DatasetMeta {
        fields: vec![
            field("user", ColumnLayout::Single, USERS + 2),
            field(
                "genres",
                ColumnLayout::Multi { width: MULTI_WIDTH },
                GENRES + 2,
            ),
            field("item", ColumnLayout::Single, ITEMS + 2),
            FieldMeta {
                name: "age".into(),
                layout: ColumnLayout::Number,
                vocab_size: 1,
                values: vec![],
                scale: None,
            },
        ],
        text: None,
    }
}

/// Planted signal: each user has a favourite genre and a bias, each item a
/// bias and 1–3 genres; P(click) = σ(2.5·[favourite ∈ genres] + user bias +
/// item bias + 0.5·age − 1.2). A model that reads the ids can approach the
/// Bayes AUC (≈0.8); one that ignores them sits at 0.5.
pub fn planted(seed: u64, n_train: usize, n_valid: usize, n_test: usize) -> Dataset {
    let mut rng = StdRng::seed_from_u64(seed);
    let fav: Vec<u32> = (0..USERS)
        .map(|_| rng.random_range(0..GENRES as u32))
        .collect();
    let ub: Vec<f64> = (0..USERS).map(|_| rng.random_range(-1.0..1.0)).collect();
    let ib: Vec<f64> = (0..ITEMS).map(|_| rng.random_range(-1.0..1.0)).collect();
    let genres: Vec<Vec<u32>> = (0..ITEMS)
        .map(|_| {
            let k = rng.random_range(1..=MULTI_WIDTH);
            let mut g: Vec<u32> = Vec::new();
            while g.len() < k {
                let x = rng.random_range(0..GENRES as u32);
                if !g.contains(&x) {
                    g.push(x);
                }
            }
            g
        })
        .collect();
    let mut make = |n: usize| {
        let mut users = Vec::with_capacity(n);
        let mut items = Vec::with_capacity(n);
        let mut multi = vec![0u32; n * MULTI_WIDTH];
        let mut ages = Vec::with_capacity(n);
        let mut labels = Vec::with_capacity(n);
        for r in 0..n {
            let u = rng.random_range(0..USERS);
            let i = rng.random_range(0..ITEMS);
            let age: f32 = rng.random_range(-1.5..1.5);
            for (k, g) in genres[i].iter().enumerate() {
                multi[r * MULTI_WIDTH + k] = g + 2;
            }
            let hit = genres[i].contains(&fav[u]) as u8 as f64;
            let z = 2.5 * hit + ub[u] + ib[i] + 0.5 * age as f64 - 1.2;
            let p = 1.0 / (1.0 + (-z).exp());
            labels.push((rng.random::<f64>() < p) as u8 as f32);
            users.push(u as u32 + 2);
            items.push(i as u32 + 2);
            ages.push(age);
        }
        Split {
            rows: n,
            labels,
            columns: vec![
                Column::Single(users),
                Column::Multi {
                    width: MULTI_WIDTH,
                    ids: multi,
                },
                Column::Single(items),
                Column::Number(ages),
            ],
            tokens: None,
        }
    };
    let train = make(n_train);
    let valid = make(n_valid);
    let test = make(n_test);
    Dataset {
        meta: meta(),
        train,
        valid,
        test,
    }
}

pub fn train_plan(epochs: usize, batch: usize, lr: f64) -> TrainPlan {
    TrainPlan {
        epochs,
        batch,
        lr,
        plm_lr: None,
        weight_decay: 0.0,
        warmup: 0.0,
        schedule: Schedule::Constant,
        patience: None,
        grad_clip: None,
        accumulate: 1,
        eval_batch: 512,
        max_rows: None,
        valid_rows: None,
        bucket_by_length: false,
    }
}

/// Every backbone with small sizes; `dropout` for those that have it.
pub fn all_backbones(dropout: f64) -> Vec<Backbone> {
    vec![
        Backbone::Lr,
        Backbone::Fm,
        Backbone::Dnn {
            mlp: vec![16, 8],
            dropout,
        },
        Backbone::DeepFm {
            mlp: vec![16, 8],
            dropout,
        },
        Backbone::Dcn {
            cross: 2,
            mlp: vec![16],
            dropout,
        },
        Backbone::DcnV2 {
            cross: 2,
            mlp: vec![16],
            dropout,
        },
        Backbone::AutoInt {
            layers: 2,
            heads: 2,
            att_dim: 8,
            mlp: vec![8],
            dropout,
        },
        Backbone::XDeepFm {
            cin: vec![4, 3],
            mlp: vec![8],
            dropout,
        },
        Backbone::FiBiNet {
            reduction: 2,
            bilinear: BilinearKind::FieldAll,
            mlp: vec![8],
            dropout,
        },
        Backbone::FiBiNet {
            reduction: 2,
            bilinear: BilinearKind::FieldEach,
            mlp: vec![8],
            dropout,
        },
        Backbone::FiBiNet {
            reduction: 1,
            bilinear: BilinearKind::FieldInteraction,
            mlp: vec![8],
            dropout,
        },
    ]
}

pub fn ctr_plan(embed: usize, backbone: Backbone) -> CtrPlan {
    CtrPlan { embed, backbone }
}
