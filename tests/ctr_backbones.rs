//! Forward values against hand computations, finite-difference gradient
//! checks, and gradient coverage for every CTR backbone.

mod ctr_support;

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::VarMap;
use clickprompt::data::{Batch, DeviceSplit};
use clickprompt::model::ctr::dcnv2::CrossNetV2;
use clickprompt::model::ctr::fm::fm_pairwise;
use clickprompt::model::ctr::xdeepfm::Cin;
use clickprompt::model::ctr::CtrModel;
use clickprompt::model::embedding::FieldEmbedding;
use clickprompt::model::losses::bce_with_logits;
use clickprompt::model::vars::{seeded_var_builder, sorted_vars};
use clickprompt::plan::Backbone;
use ctr_support::*;

type R = anyhow::Result<()>;

fn batch_of(rows: usize, dtype_seed: u64) -> anyhow::Result<Batch> {
    let ds = planted(dtype_seed, rows, 4, 4);
    let split = DeviceSplit::new(&ds.train, &ds.meta, &Device::Cpu)?;
    split.batch(&(0..rows).collect::<Vec<_>>())
}

fn get(varmap: &VarMap, name: &str) -> Var {
    varmap
        .data()
        .lock()
        .unwrap()
        .get(name)
        .unwrap_or_else(|| panic!("no var {name}"))
        .clone()
}

#[test]
fn field_embedding_offsets_pooling_and_numbers() -> R {
    let dev = Device::Cpu;
    let meta = meta();
    let vm = VarMap::new();
    let emb = FieldEmbedding::new(
        &meta,
        3,
        seeded_var_builder(&vm, 7, DType::F32, &dev).pp("ctr.embedding"),
    )?;
    assert_eq!(emb.num_fields(), 4);
    let batch = Batch {
        rows: 2,
        single: Some(Tensor::new(&[[2u32, 5], [7, 2]], &dev)?),
        multi: vec![Tensor::new(&[[3u32, 4, 0], [0, 0, 0]], &dev)?],
        numbers: Some(Tensor::new(&[[0.5f32], [-2.0]], &dev)?),
        labels: Tensor::new(&[1f32, 0.], &dev)?,
        text: None,
    };
    let out = emb.forward(&batch)?.to_vec3::<f32>()?;
    let table = get(&vm, "ctr.embedding.weight")
        .as_tensor()
        .to_vec2::<f32>()?;
    let number = get(&vm, "ctr.embedding.number")
        .as_tensor()
        .to_vec2::<f32>()?;
    assert_eq!(table.len(), (USERS + 2) + (ITEMS + 2) + (GENRES + 2));
    let item_off = USERS + 2;
    let genre_off = item_off + ITEMS + 2;
    for e in 0..3 {
        // Field order: user, item (singles), genres (multi), age (number).
        assert_eq!(out[0][0][e], table[2][e]);
        assert_eq!(out[0][1][e], table[item_off + 5][e]);
        assert_eq!(out[1][0][e], table[7][e]);
        assert_eq!(out[1][1][e], table[item_off + 2][e]);
        let mean = (table[genre_off + 3][e] + table[genre_off + 4][e]) / 2.0;
        assert!((out[0][2][e] - mean).abs() < 1e-6);
        // All-PAD row pools to zero, not NaN.
        assert_eq!(out[1][2][e], 0.0);
        assert!((out[0][3][e] - 0.5 * number[0][e]).abs() < 1e-6);
        assert!((out[1][3][e] + 2.0 * number[0][e]).abs() < 1e-6);
    }
    Ok(())
}

#[test]
fn fm_pairwise_matches_brute_force() -> R {
    let x = Tensor::randn(0f32, 1f32, (5, 4, 3), &Device::Cpu)?;
    let got = fm_pairwise(&x)?.to_vec1::<f32>()?;
    let v = x.to_vec3::<f32>()?;
    for b in 0..5 {
        let mut want = 0f32;
        for i in 0..4 {
            for j in i + 1..4 {
                want += (0..3).map(|e| v[b][i][e] * v[b][j][e]).sum::<f32>();
            }
        }
        assert!((got[b] - want).abs() < 1e-4, "{} vs {want}", got[b]);
    }
    Ok(())
}

#[test]
fn dcnv2_cross_layer_matches_manual() -> R {
    let dev = Device::Cpu;
    let vm = VarMap::new();
    let cross = CrossNetV2::new(3, 1, seeded_var_builder(&vm, 1, DType::F32, &dev).pp("c"))?;
    let w = [[0.5f32, -1.0, 0.25], [0.0, 2.0, 1.0], [1.5, 0.5, -0.5]];
    let bias = [0.1f32, -0.2, 0.3];
    get(&vm, "c.0.weight").set(&Tensor::new(&w, &dev)?)?;
    get(&vm, "c.0.bias").set(&Tensor::new(&bias, &dev)?)?;
    let x0 = [[1.0f32, 2.0, -1.0], [0.5, 0.0, 3.0]];
    let got = cross.forward(&Tensor::new(&x0, &dev)?)?.to_vec2::<f32>()?;
    for b in 0..2 {
        for o in 0..3 {
            let wx: f32 = (0..3).map(|i| w[o][i] * x0[b][i]).sum::<f32>() + bias[o];
            let want = x0[b][o] * wx + x0[b][o];
            assert!(
                (got[b][o] - want).abs() < 1e-5,
                "[{b}][{o}] {} vs {want}",
                got[b][o]
            );
        }
    }
    Ok(())
}

#[test]
fn cin_shape_and_values_on_tiny_input() -> R {
    let dev = Device::Cpu;
    let vm = VarMap::new();
    // F = 2 fields, E = 2; layers of 1 and 2 feature maps.
    let cin = Cin::new(
        2,
        &[1, 2],
        seeded_var_builder(&vm, 1, DType::F32, &dev).pp("cin"),
    )?;
    assert_eq!(cin.out_dim(), 3);
    // Layer 0: weight (1, H0·F = 4) over pairs (i, j) in order (0,0) (0,1) (1,0) (1,1).
    get(&vm, "cin.0.weight").set(&Tensor::new(&[[1f32, 2., 0., -1.]], &dev)?)?;
    get(&vm, "cin.0.bias").set(&Tensor::new(&[0.5f32], &dev)?)?;
    // Layer 1: weight (2, H1·F = 2) over pairs (h=0, j=0), (h=0, j=1).
    get(&vm, "cin.1.weight").set(&Tensor::new(&[[1f32, 0.], [0., 1.]], &dev)?)?;
    get(&vm, "cin.1.bias").set(&Tensor::new(&[0f32, 0.], &dev)?)?;
    // x_0 = (1, 2), x_1 = (3, -1)
    let x = Tensor::new(&[[[1f32, 2.], [3., -1.]]], &dev)?;
    let got = cin.forward(&x)?.to_vec2::<f32>()?;
    // Layer 0 per e: 1·x0x0 + 2·x0x1 + 0·x1x0 − 1·x1x1 + 0.5
    //   e0: 1 + 6 − 9 + 0.5 = −1.5 ; e1: 4 − 4 − 1 + 0.5 = −0.5 ; pooled −2.
    // Layer 1: h0 = X1 ⊙ x_0 = (−1.5, −1.0) → −2.5 ; h1 = X1 ⊙ x_1 = (−4.5, 0.5) → −4.
    let want = [-2.0f32, -2.5, -4.0];
    assert_eq!(got.len(), 1);
    for k in 0..3 {
        assert!(
            (got[0][k] - want[k]).abs() < 1e-5,
            "{k}: {} vs {}",
            got[0][k],
            want[k]
        );
    }
    Ok(())
}

#[test]
fn bce_with_logits_value_and_gradient() -> R {
    let dev = Device::Cpu;
    let z = Var::new(&[-30f32, -1.0, 0.0, 2.0, 40.0], &dev)?;
    let y = Tensor::new(&[0f32, 1.0, 1.0, 0.0, 1.0], &dev)?;
    let loss = bce_with_logits(z.as_tensor(), &y)?;
    let zs = [-30f64, -1.0, 0.0, 2.0, 40.0];
    let ys = [0f64, 1.0, 1.0, 0.0, 1.0];
    let want: f64 = zs
        .iter()
        .zip(&ys)
        .map(|(&z, &y)| {
            let p = 1.0 / (1.0 + (-z).exp());
            -(y * p.max(1e-300).ln() + (1.0 - y) * (1.0 - p).max(1e-300).ln())
        })
        .sum::<f64>()
        / 5.0;
    assert!((loss.to_scalar::<f32>()? as f64 - want).abs() < 1e-5);
    let g = loss.backward()?;
    let g = g.get(z.as_tensor()).unwrap().to_vec1::<f32>()?;
    for i in 0..5 {
        let p = 1.0 / (1.0 + (-zs[i]).exp());
        assert!((g[i] as f64 - (p - ys[i]) / 5.0).abs() < 1e-6, "{i}");
    }
    Ok(())
}

#[test]
fn every_backbone_has_shapes_and_gradients_everywhere() -> R {
    let dev = Device::Cpu;
    let batch = batch_of(32, 3)?;
    for backbone in all_backbones(0.1) {
        let vm = VarMap::new();
        let model = CtrModel::new(
            &ctr_plan(4, backbone.clone()),
            &meta(),
            seeded_var_builder(&vm, 11, DType::F32, &dev),
        )?;
        let out = model.forward(&batch, true)?;
        assert_eq!(out.logit.dims(), &[32], "{backbone:?}");
        match (model.hidden_dim(), &out.hidden) {
            (Some(d), Some(h)) => assert_eq!(h.dims(), &[32, d], "{backbone:?}"),
            (None, None) => assert!(!backbone.can_prompt()),
            other => panic!("{backbone:?}: hidden mismatch {other:?}"),
        }
        assert_eq!(model.hidden_dim().is_some(), backbone.can_prompt());
        let loss = bce_with_logits(&out.logit, &batch.labels)?;
        let grads = loss.backward()?;
        let vars = sorted_vars(&vm)?;
        assert!(vars.iter().all(|(n, _)| n.starts_with("ctr.")));
        if backbone.can_prompt() {
            assert!(vars.iter().any(|(n, _)| n == "ctr.fc_out.weight"));
        }
        for (name, var) in vars {
            let g = grads
                .get(var.as_tensor())
                .unwrap_or_else(|| panic!("{backbone:?}: no gradient for {name}"));
            let norm = g.sqr()?.sum_all()?.to_scalar::<f32>()?;
            assert!(
                norm > 0.0 && norm.is_finite(),
                "{backbone:?}: gradient of {name} is {norm}"
            );
        }
        // Evaluation is deterministic (no dropout).
        let a = model.forward(&batch, false)?.logit.to_vec1::<f32>()?;
        let b = model.forward(&batch, false)?.logit.to_vec1::<f32>()?;
        assert_eq!(a, b);
    }
    Ok(())
}

/// Central differences in f64 against candle's backward for a few entries of every variable.
#[test]
fn finite_difference_gradients_for_every_backbone() -> R {
    let dev = Device::Cpu;
    let batch = batch_of(6, 5)?;
    let coef = Tensor::new(&[0.7f64, -1.3, 0.4, 1.1, -0.6, 0.9], &dev)?;
    for backbone in all_backbones(0.0) {
        let vm = VarMap::new();
        let model = CtrModel::new(
            &ctr_plan(3, backbone.clone()),
            &meta(),
            seeded_var_builder(&vm, 21, DType::F64, &dev),
        )?;
        let loss_of = |m: &CtrModel| -> anyhow::Result<Tensor> {
            let z = m.forward(&batch, false)?.logit;
            // A smooth non-linear scalar so that second-order terms matter.
            Ok(((z.tanh()? * &coef)?.sum_all()? + (z.sqr()?.sum_all()? * 0.1)?)?)
        };
        let grads = loss_of(&model)?.backward()?;
        for (name, var) in sorted_vars(&vm)? {
            let g = grads
                .get(var.as_tensor())
                .unwrap()
                .flatten_all()?
                .to_vec1::<f64>()?;
            let base = var.as_tensor().flatten_all()?.to_vec1::<f64>()?;
            let shape = var.as_tensor().shape().clone();
            // The largest-gradient entry plus two spread-out ones.
            let argmax = (0..g.len())
                .max_by(|&a, &b| g[a].abs().total_cmp(&g[b].abs()))
                .unwrap_or(0);
            for &i in &[argmax, g.len() / 3, (2 * g.len()) / 3] {
                let h = 1e-6;
                let mut p = base.clone();
                p[i] += h;
                var.set(&Tensor::from_vec(p.clone(), shape.clone(), &dev)?)?;
                let up = loss_of(&model)?.to_scalar::<f64>()?;
                p[i] -= 2.0 * h;
                var.set(&Tensor::from_vec(p, shape.clone(), &dev)?)?;
                let down = loss_of(&model)?.to_scalar::<f64>()?;
                var.set(&Tensor::from_vec(base.clone(), shape.clone(), &dev)?)?;
                let fd = (up - down) / (2.0 * h);
                let tol = 1e-5 * (1.0 + fd.abs().max(g[i].abs()));
                assert!(
                    (fd - g[i]).abs() < tol,
                    "{backbone:?} {name}[{i}]: analytic {} vs numeric {fd}",
                    g[i]
                );
            }
        }
    }
    Ok(())
}

#[test]
fn same_seed_same_weights_and_fc_out_is_separate() -> R {
    let dev = Device::Cpu;
    let plan = ctr_plan(
        4,
        Backbone::DcnV2 {
            cross: 2,
            mlp: vec![8],
            dropout: 0.0,
        },
    );
    let build = |seed| -> anyhow::Result<Vec<(String, Vec<f32>)>> {
        let vm = VarMap::new();
        CtrModel::new(
            &plan,
            &meta(),
            seeded_var_builder(&vm, seed, DType::F32, &dev),
        )?;
        sorted_vars(&vm)?
            .into_iter()
            .map(|(n, v)| Ok((n, v.as_tensor().flatten_all()?.to_vec1::<f32>()?)))
            .collect()
    };
    let a = build(5)?;
    assert_eq!(a, build(5)?);
    assert_ne!(a, build(6)?);
    let names: Vec<&str> = a.iter().map(|(n, _)| n.as_str()).collect();
    assert!(names.contains(&"ctr.fc_out.weight") && names.contains(&"ctr.fc_out.bias"));
    assert!(names.contains(&"ctr.embedding.weight") && names.contains(&"ctr.cross.1.weight"));
    // Biases start at zero, weights do not.
    let bias = &a.iter().find(|(n, _)| n == "ctr.mlp.0.bias").unwrap().1;
    assert!(bias.iter().all(|&x| x == 0.0));
    Ok(())
}

#[test]
fn bad_configurations_are_errors() -> R {
    let dev = Device::Cpu;
    let vm = VarMap::new();
    let vb = seeded_var_builder(&vm, 1, DType::F32, &dev);
    let bad = ctr_plan(
        4,
        Backbone::AutoInt {
            layers: 1,
            heads: 3,
            att_dim: 8,
            mlp: vec![],
            dropout: 0.0,
        },
    );
    let err = CtrModel::new(&bad, &meta(), vb.clone())
        .unwrap_err()
        .to_string();
    assert!(err.contains("multiple of heads"), "{err}");
    let bad = ctr_plan(
        4,
        Backbone::XDeepFm {
            cin: vec![],
            mlp: vec![4],
            dropout: 0.0,
        },
    );
    assert!(CtrModel::new(&bad, &meta(), vb).is_err());
    Ok(())
}
