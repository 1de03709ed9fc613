//! Gradients of the PLM side: fused ops against the composed ones and finite
//! differences, prefix attention by finite differences on a tiny random f64
//! model, and every trainable tensor receiving a gradient.

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};
use clickprompt::model::heads::{pool, ClassificationHead, MlmHead};
use clickprompt::model::nn;
use clickprompt::model::plm::{Config, PlmEncoder, Prompts};
use clickprompt::model::prompt::PromptGenerator;
use clickprompt::plan::types::{PlmFamily, Pooling, PromptMode, PromptPlan};

fn dev() -> Device {
    Device::Cpu
}

fn max_abs(t: &Tensor) -> f64 {
    t.abs()
        .and_then(|t| t.flatten_all())
        .and_then(|t| t.max(0))
        .and_then(|t| t.to_dtype(DType::F64))
        .and_then(|t| t.to_scalar::<f64>())
        .expect("max")
}

/// Central finite difference of `f` w.r.t. element `i` of `x` (f64).
fn fd(x: &Var, i: usize, f: &dyn Fn() -> f64) -> f64 {
    let orig = x
        .as_tensor()
        .flatten_all()
        .unwrap()
        .to_vec1::<f64>()
        .unwrap();
    let h = 1e-6;
    let mut plus = orig.clone();
    plus[i] += h;
    x.set(&Tensor::from_vec(plus, x.shape(), &dev()).unwrap())
        .unwrap();
    let fp = f();
    let mut minus = orig.clone();
    minus[i] -= h;
    x.set(&Tensor::from_vec(minus, x.shape(), &dev()).unwrap())
        .unwrap();
    let fm = f();
    x.set(&Tensor::from_vec(orig, x.shape(), &dev()).unwrap())
        .unwrap();
    (fp - fm) / (2.0 * h)
}

fn scalar(t: &Tensor) -> f64 {
    t.to_dtype(DType::F64).unwrap().to_scalar::<f64>().unwrap()
}

#[test]
fn fused_softmax_matches_composed_and_finite_differences() {
    let x = Var::from_tensor(&Tensor::randn(0f64, 2.0, (3, 4, 7), &dev()).unwrap()).unwrap();
    let w = Tensor::randn(0f64, 1.0, (3, 4, 7), &dev()).unwrap();
    let fused = nn::softmax_last_dim(x.as_tensor()).unwrap();
    let composed = nn::softmax_last_dim_composed(x.as_tensor()).unwrap();
    assert!(max_abs(&(&fused - &composed).unwrap()) < 1e-12);
    let loss = |t: &Tensor| (t * &w).unwrap().sum_all().unwrap();
    let g_fused = loss(&fused).backward().unwrap();
    let g_comp = loss(&composed).backward().unwrap();
    let gf = g_fused.get(&x).unwrap();
    let gc = g_comp.get(&x).unwrap();
    assert!(max_abs(&(gf - gc).unwrap()) < 1e-10);
    let gv = gf.flatten_all().unwrap().to_vec1::<f64>().unwrap();
    for i in [0, 5, 13, 40, 83] {
        let num = fd(&x, i, &|| {
            scalar(&loss(&nn::softmax_last_dim(x.as_tensor()).unwrap()))
        });
        assert!(
            (num - gv[i]).abs() < 1e-6,
            "softmax grad {i}: {num} vs {}",
            gv[i]
        );
    }
}

#[test]
fn fused_layer_norm_matches_composed_and_finite_differences() {
    let x = Var::from_tensor(&Tensor::randn(0.5f64, 2.0, (2, 5, 6), &dev()).unwrap()).unwrap();
    let g = Var::from_tensor(&Tensor::randn(1f64, 0.3, 6, &dev()).unwrap()).unwrap();
    let b = Var::from_tensor(&Tensor::randn(0f64, 0.3, 6, &dev()).unwrap()).unwrap();
    let w = Tensor::randn(0f64, 1.0, (2, 5, 6), &dev()).unwrap();
    let run = |fused: bool| {
        if fused {
            nn::layer_norm(x.as_tensor(), g.as_tensor(), b.as_tensor(), 1e-5).unwrap()
        } else {
            nn::layer_norm_composed(x.as_tensor(), g.as_tensor(), b.as_tensor(), 1e-5).unwrap()
        }
    };
    let loss = |t: &Tensor| (t * &w).unwrap().sum_all().unwrap();
    assert!(max_abs(&(run(true) - run(false)).unwrap()) < 1e-12);
    let gf = loss(&run(true)).backward().unwrap();
    let gc = loss(&run(false)).backward().unwrap();
    for v in [&x, &g, &b] {
        let d = (gf.get(v).unwrap() - gc.get(v).unwrap()).unwrap();
        assert!(
            max_abs(&d) < 1e-10,
            "fused and composed layer_norm grads differ by {}",
            max_abs(&d)
        );
    }
    for (v, idx) in [
        (&x, vec![0usize, 7, 31, 59]),
        (&g, vec![0, 3, 5]),
        (&b, vec![1, 4]),
    ] {
        let an = gf
            .get(v)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f64>()
            .unwrap();
        for i in idx {
            let num = fd(v, i, &|| scalar(&loss(&run(true))));
            assert!(
                (num - an[i]).abs() < 1e-6,
                "layer_norm grad {i}: {num} vs {}",
                an[i]
            );
        }
    }
}

fn tiny(dtype: DType, family: PlmFamily) -> (VarMap, PlmEncoder, Config) {
    let cfg = Config::tiny(50, 8, 2, 2);
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, dtype, &dev());
    let enc = PlmEncoder::load(vb.pp("plm"), &cfg, family).unwrap();
    (varmap, enc, cfg)
}

fn var(varmap: &VarMap, name: &str) -> Var {
    varmap
        .data()
        .lock()
        .unwrap()
        .get(name)
        .cloned()
        .unwrap_or_else(|| panic!("no var {name}"))
}

#[test]
fn prefix_attention_gradients_match_finite_differences() {
    for family in [PlmFamily::Bert, PlmFamily::Roberta] {
        let (varmap, enc, cfg) = tiny(DType::F64, family);
        let (k, l, d) = (3, cfg.num_hidden_layers, cfg.hidden_size);
        let prefix =
            Var::from_tensor(&Tensor::randn(0f64, 0.5, (2, k, 2 * l, d), &dev()).unwrap()).unwrap();
        let ids = Tensor::new(&[[2u32, 7, 9, 11, 3], [2, 5, 3, 0, 0]], &dev()).unwrap();
        let mask = Tensor::new(&[[1f64, 1., 1., 1., 1.], [1., 1., 1., 0., 0.]], &dev()).unwrap();
        let r = Tensor::randn(0f64, 1.0, (2, 5, d), &dev()).unwrap();
        let loss = || {
            let out = enc
                .forward(&ids, &mask, Prompts::Deep(prefix.as_tensor()), false, false)
                .unwrap();
            // Padded positions are excluded, as every consumer masks them.
            out.last
                .broadcast_mul(&mask.unsqueeze(2).unwrap())
                .unwrap()
                .mul(&r)
                .unwrap()
                .sum_all()
                .unwrap()
        };
        let grads = loss().backward().unwrap();
        let gp = grads
            .get(&prefix)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f64>()
            .unwrap();
        assert!(
            gp.iter().any(|v| v.abs() > 1e-6),
            "prefixes get no gradient"
        );
        for i in [0, 9, 17, 33, 50, 77, 95] {
            let num = fd(&prefix, i, &|| scalar(&loss()));
            assert!(
                (num - gp[i]).abs() < 1e-5 * (1.0 + num.abs()),
                "{family:?} prefix grad {i}: {num} vs {}",
                gp[i]
            );
        }
        for name in [
            "plm.encoder.layer.0.attention.self.key.weight",
            "plm.encoder.layer.1.attention.self.query.weight",
            "plm.encoder.layer.0.attention.self.value.bias",
            "plm.embeddings.LayerNorm.weight",
            "plm.embeddings.position_embeddings.weight",
        ] {
            let v = var(&varmap, name);
            let an = grads
                .get(&v)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f64>()
                .unwrap();
            for i in [0, 3, 6] {
                // Position rows 3.. are the ones the shifted text uses (K = 3).
                let i = if name.contains("position") {
                    (3 + i) * d + 1
                } else {
                    i
                };
                let num = fd(&v, i, &|| scalar(&loss()));
                assert!(
                    (num - an[i]).abs() < 1e-5 * (1.0 + num.abs()),
                    "{name}[{i}]: {num} vs {}",
                    an[i]
                );
            }
        }
    }
}

#[test]
fn prompts_change_the_output_and_only_shift_positions_when_zero() {
    let (_vm, enc, cfg) = tiny(DType::F32, PlmFamily::Bert);
    let (k, l, d) = (2, cfg.num_hidden_layers, cfg.hidden_size);
    let ids = Tensor::new(&[[2u32, 7, 9, 3]], &dev()).unwrap();
    let mask = Tensor::ones((1, 4), DType::F32, &dev()).unwrap();
    let p = Tensor::randn(0f32, 1.0, (1, k, 2 * l, d), &dev()).unwrap();
    let with = enc
        .forward(&ids, &mask, Prompts::Deep(&p), false, false)
        .unwrap()
        .last;
    let zero = enc
        .forward(
            &ids,
            &mask,
            Prompts::Deep(&p.zeros_like().unwrap()),
            false,
            false,
        )
        .unwrap()
        .last;
    let none = enc
        .forward(&ids, &mask, Prompts::None, false, false)
        .unwrap()
        .last;
    assert!(
        max_abs(&(&with - &zero).unwrap()) > 1e-3,
        "prompts do not change the output"
    );
    assert!(
        max_abs(&(&zero - &none).unwrap()) > 1e-4,
        "K zero prompts must still shift positions and dilute attention"
    );
    let s = Tensor::randn(0f32, 1.0, (1, k, d), &dev()).unwrap();
    let shallow = enc
        .forward(&ids, &mask, Prompts::Shallow(&s), false, false)
        .unwrap()
        .last;
    assert_eq!(shallow.dims(), &[1, 4, d]);
    assert!(max_abs(&(&shallow - &none).unwrap()) > 1e-3);
    // Dropout is live in training: two passes differ.
    let a = enc
        .forward(&ids, &mask, Prompts::None, true, false)
        .unwrap()
        .last;
    let b = enc
        .forward(&ids, &mask, Prompts::None, true, false)
        .unwrap()
        .last;
    assert!(
        max_abs(&(a - b).unwrap()) > 1e-4,
        "dropout inactive in training"
    );
}

#[test]
fn one_step_gives_every_trainable_tensor_a_gradient() {
    for mode in [PromptMode::Deep, PromptMode::Shallow] {
        let cfg = Config::tiny(40, 8, 2, 2);
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &dev());
        let enc = PlmEncoder::load(vb.pp("plm"), &cfg, PlmFamily::Bert).unwrap();
        let mlm = MlmHead::new(vb.pp("mlm"), &cfg, enc.word_embeddings()).unwrap();
        let gen =
            PromptGenerator::new(vb.pp("prompt"), 6, &cfg, &PromptPlan { count: 2, mode }).unwrap();
        let head = ClassificationHead::new(vb.pp("plm_head"), 8).unwrap();
        let h = Var::from_tensor(&Tensor::randn(0f32, 1.0, (3, 6), &dev()).unwrap()).unwrap();
        let ids = Tensor::new(&[[2u32, 7, 9, 3], [2, 5, 3, 0], [2, 11, 12, 3]], &dev()).unwrap();
        let mask = Tensor::new(
            &[[1f32, 1., 1., 1.], [1., 1., 1., 0.], [1., 1., 1., 1.]],
            &dev(),
        )
        .unwrap();
        let p = gen.forward(h.as_tensor()).unwrap();
        let out = enc
            .forward(&ids, &mask, gen.as_prompts(&p), true, true)
            .unwrap();
        // MLM on two positions (the gather before the decoder) + a pooled logit.
        let flat = out.last.reshape((12, 8)).unwrap();
        let picked = flat
            .index_select(&Tensor::new(&[1u32, 6], &dev()).unwrap(), 0)
            .unwrap();
        let logits = mlm.forward(&picked).unwrap();
        let targets = Tensor::new(&[7u32, 5], &dev()).unwrap();
        let ce = candle_nn::loss::cross_entropy(&logits, &targets).unwrap();
        let pooled = pool(&out, &mask, Pooling::Top2).unwrap();
        let logit = head.forward(&pooled).unwrap();
        let bce = clickprompt::model::losses::bce_with_logits(
            &logit,
            &Tensor::new(&[1f32, 0., 1.], &dev()).unwrap(),
        )
        .unwrap();
        let grads = (ce + bce).unwrap().backward().unwrap();
        let vars = varmap.data().lock().unwrap().clone();
        assert!(vars.len() > 30);
        for (name, v) in vars.iter() {
            let g = grads
                .get(v)
                .unwrap_or_else(|| panic!("{mode:?}: {name} has no gradient"));
            assert!(
                max_abs(g) > 0.0,
                "{mode:?}: {name} has an all-zero gradient"
            );
        }
        assert!(
            max_abs(grads.get(&h).unwrap()) > 0.0,
            "h (CTR side) gets no gradient"
        );
    }
}

#[test]
fn fused_gelu_matches_candle_and_finite_differences() {
    use clickprompt::model::fused;
    let x = Var::from_tensor(&Tensor::randn(0f64, 2.0, (4, 9), &dev()).unwrap()).unwrap();
    let w = Tensor::randn(0f64, 1.0, (4, 9), &dev()).unwrap();
    let ours = fused::gelu_erf(x.as_tensor()).unwrap();
    let theirs = x.as_tensor().gelu_erf().unwrap();
    assert!(max_abs(&(&ours - &theirs).unwrap()) < 1e-12);
    let loss = |t: &Tensor| (t * &w).unwrap().sum_all().unwrap();
    let g1 = loss(&ours).backward().unwrap();
    let g2 = loss(&theirs).backward().unwrap();
    let d = (g1.get(&x).unwrap() - g2.get(&x).unwrap()).unwrap();
    // candle's composed backward differs from the exact derivative by up to
    // ~3e-7 on random inputs; the finite differences below are the reference.
    assert!(max_abs(&d) < 1e-5, "gelu grads differ by {}", max_abs(&d));
    let an = g1
        .get(&x)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f64>()
        .unwrap();
    for i in [0, 7, 20, 35] {
        let num = fd(&x, i, &|| {
            scalar(&loss(&fused::gelu_erf(x.as_tensor()).unwrap()))
        });
        assert!(
            (num - an[i]).abs() < 1e-6,
            "gelu grad {i}: {num} vs {}",
            an[i]
        );
    }
}

/// The composed reference: split the projection into heads, put the prefixes
/// in front of the keys and values, softmax, and back to (B·T, d).
fn composed_attention(
    qkv: &Tensor,
    prefix: Option<(&Tensor, &Tensor)>,
    mask: &Tensor,
    (b, h, t, dh): (usize, usize, usize, usize),
    scale: f64,
) -> Tensor {
    let qkv = qkv
        .reshape((b, t, 3, h, dh))
        .unwrap()
        .permute((2, 0, 3, 1, 4))
        .unwrap()
        .contiguous()
        .unwrap();
    let (q, mut k, mut v) = (
        qkv.get(0).unwrap(),
        qkv.get(1).unwrap(),
        qkv.get(2).unwrap(),
    );
    if let Some((pk, pv)) = prefix {
        k = Tensor::cat(&[pk, &k], 2).unwrap();
        v = Tensor::cat(&[pv, &v], 2).unwrap();
    }
    let scores = (q * scale)
        .unwrap()
        .matmul(&k.t().unwrap())
        .unwrap()
        .broadcast_add(&mask.unsqueeze(1).unwrap().unsqueeze(1).unwrap())
        .unwrap();
    nn::softmax_last_dim_composed(&scores)
        .unwrap()
        .matmul(&v)
        .unwrap()
        .transpose(1, 2)
        .unwrap()
        .reshape((b * t, h * dh))
        .unwrap()
}

#[test]
fn fused_attention_matches_composed_values_and_gradients() {
    use clickprompt::model::attention::{attention_qkv, attention_qkv_with_seed};
    let (b, h, t, dh) = (2, 3, 4, 5);
    let d = h * dh;
    let scale = 0.37;
    for kp in [0usize, 2] {
        let qkv =
            Var::from_tensor(&Tensor::randn(0f64, 1.0, (b * t, 3 * d), &dev()).unwrap()).unwrap();
        let pk =
            Var::from_tensor(&Tensor::randn(0f64, 1.0, (b, h, kp, dh), &dev()).unwrap()).unwrap();
        let pv =
            Var::from_tensor(&Tensor::randn(0f64, 1.0, (b, h, kp, dh), &dev()).unwrap()).unwrap();
        let prefix = (kp > 0).then(|| (pk.as_tensor(), pv.as_tensor()));
        // Row 0 hides its last text key, row 1 its last three.
        let mut m = vec![0f64; b * (kp + t)];
        m[kp + t - 1] = -1e9;
        for j in 0..3 {
            m[2 * (kp + t) - 1 - j] = -1e9;
        }
        let mask = Tensor::from_vec(m, (b, kp + t), &dev()).unwrap();
        let w = Tensor::randn(0f64, 1.0, (b * t, d), &dev()).unwrap();
        let fused = attention_qkv(qkv.as_tensor(), prefix, &mask, b, h, scale, 0.1, false).unwrap();
        let composed = composed_attention(qkv.as_tensor(), prefix, &mask, (b, h, t, dh), scale);
        assert!(
            max_abs(&(&fused - &composed).unwrap()) < 1e-12,
            "K = {kp}: values differ"
        );
        let gf = (&fused * &w)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let gc = (&composed * &w)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let mut vars = vec![("qkv", &qkv)];
        if kp > 0 {
            vars.extend([("prefix keys", &pk), ("prefix values", &pv)]);
        }
        for (name, x) in vars {
            let d = (gf.get(x).unwrap() - gc.get(x).unwrap()).unwrap();
            assert!(
                max_abs(&d) < 1e-10,
                "K = {kp}: {name} grads differ by {}",
                max_abs(&d)
            );
        }
        // With dropout the backward regenerates the forward's mask from the
        // seed: a fixed seed makes the op a function, checked by finite differences.
        let loss = || {
            let out = attention_qkv_with_seed(qkv.as_tensor(), prefix, &mask, b, h, scale, 0.5, 7)
                .unwrap();
            (out * &w).unwrap().sum_all().unwrap()
        };
        let g = loss().backward().unwrap();
        let gq = g
            .get(&qkv)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f64>()
            .unwrap();
        for i in [0, 7, 20, 33, 51, 88, 119] {
            let num = fd(&qkv, i, &|| scalar(&loss()));
            assert!(
                (num - gq[i]).abs() < 1e-6 * (1.0 + num.abs()),
                "qkv[{i}]: {num} vs {}",
                gq[i]
            );
        }
        if kp > 0 {
            let gp = g
                .get(&pv)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f64>()
                .unwrap();
            for i in [0, 9, 31, 59] {
                let num = fd(&pv, i, &|| scalar(&loss()));
                assert!(
                    (num - gp[i]).abs() < 1e-6 * (1.0 + num.abs()),
                    "pv[{i}]: {num} vs {}",
                    gp[i]
                );
            }
        }
        let a1 = attention_qkv(qkv.as_tensor(), prefix, &mask, b, h, scale, 0.5, true).unwrap();
        let a2 = attention_qkv(qkv.as_tensor(), prefix, &mask, b, h, scale, 0.5, true).unwrap();
        assert!(
            max_abs(&(a1 - a2).unwrap()) > 1e-6,
            "attention dropout inactive"
        );
    }
}

/// PA-MLM reads the last layer only at the masked positions (`forward_at`):
/// the values and every gradient must be those of gathering the full output.
#[test]
fn last_layer_at_masked_positions_matches_the_full_forward() {
    for mode in ["none", "deep", "shallow"] {
        let (varmap, enc, cfg) = tiny(DType::F64, PlmFamily::Roberta);
        let (k, l, d) = (3, cfg.num_hidden_layers, cfg.hidden_size);
        let shape = if mode == "deep" {
            vec![2, k, 2 * l, d]
        } else {
            vec![2, k, d]
        };
        let p = Var::from_tensor(&Tensor::randn(0f64, 0.5, shape, &dev()).unwrap()).unwrap();
        let prompts = match mode {
            "deep" => Prompts::Deep(p.as_tensor()),
            "shallow" => Prompts::Shallow(p.as_tensor()),
            _ => Prompts::None,
        };
        let ids = Tensor::new(&[[2u32, 7, 9, 11, 3], [2, 5, 3, 0, 0]], &dev()).unwrap();
        let mask = Tensor::new(&[[1f64, 1., 1., 1., 1.], [1., 1., 1., 0., 0.]], &dev()).unwrap();
        // Unsorted, across both rows, one position picked twice.
        let rows = Tensor::new(&[6u32, 1, 3, 6, 0], &dev()).unwrap();
        let r = Tensor::randn(0f64, 1.0, (5, d), &dev()).unwrap();
        let full = enc
            .forward(&ids, &mask, prompts, false, false)
            .unwrap()
            .last
            .reshape((10, d))
            .unwrap()
            .index_select(&rows, 0)
            .unwrap();
        let at = enc.forward_at(&ids, &mask, prompts, false, &rows).unwrap();
        assert_eq!(at.dims(), &[5, d]);
        assert!(
            max_abs(&(&full - &at).unwrap()) < 1e-12,
            "{mode}: forward_at differs from the gathered forward"
        );
        let g_full = (full * &r).unwrap().sum_all().unwrap().backward().unwrap();
        let g_at = (at * &r).unwrap().sum_all().unwrap().backward().unwrap();
        let mut vars: Vec<(String, Var)> =
            varmap.data().lock().unwrap().clone().into_iter().collect();
        if mode != "none" {
            vars.push(("prompts".into(), p.clone()));
        }
        for (name, v) in vars {
            let a = g_full.get(&v);
            let b = g_at.get(&v);
            match (a, b) {
                (Some(a), Some(b)) => assert!(
                    max_abs(&(a - b).unwrap()) < 1e-10 * (1.0 + max_abs(a)),
                    "{mode}: gradient of {name} differs"
                ),
                (None, None) => {}
                _ => panic!("{mode}: {name} has a gradient in one path only"),
            }
        }
        let wq = var(&varmap, "plm.encoder.layer.1.output.dense.weight");
        assert!(max_abs(g_at.get(&wq).unwrap()) > 0.0);
    }
}

/// The vectorized f32 layer norm (forward and backward) against the f64 path
/// on the same values: rows of the real width (384, not a multiple of the
/// 8 lanes plus a ragged 13) and enough rows to split across tasks.
#[test]
fn f32_layer_norm_matches_the_f64_path() {
    for width in [384usize, 13] {
        let x64 = Tensor::randn(0.5f64, 2.0, (300, width), &dev()).unwrap();
        let g64 = Tensor::randn(1f64, 0.3, width, &dev()).unwrap();
        let b64 = Tensor::randn(0f64, 0.3, width, &dev()).unwrap();
        let w64 = Tensor::randn(0f64, 1.0, (300, width), &dev()).unwrap();
        let f32_of = |t: &Tensor| t.to_dtype(DType::F32).unwrap();
        let run = |dtype: DType| {
            let cast = |t: &Tensor| Var::from_tensor(&t.to_dtype(dtype).unwrap()).unwrap();
            let (x, g, b) = (
                cast(&f32_of(&x64)),
                cast(&f32_of(&g64)),
                cast(&f32_of(&b64)),
            );
            let y = nn::layer_norm(x.as_tensor(), g.as_tensor(), b.as_tensor(), 1e-5).unwrap();
            let grads = (&y * &w64.to_dtype(dtype).unwrap())
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            let as64 = |t: &Tensor| t.to_dtype(DType::F64).unwrap();
            let gs: Vec<Tensor> = [&x, &g, &b]
                .iter()
                .map(|v| as64(grads.get(v).unwrap()))
                .collect();
            (as64(&y), gs)
        };
        let (y32, g32) = run(DType::F32);
        let (y64, g64s) = run(DType::F64);
        assert!(
            max_abs(&(&y32 - &y64).unwrap()) < 1e-5,
            "width {width}: values"
        );
        for (name, (a, b)) in ["x", "weight", "bias"].iter().zip(g32.iter().zip(&g64s)) {
            let scale = 1.0 + max_abs(b);
            assert!(
                max_abs(&(a - b).unwrap()) < 2e-5 * scale,
                "width {width}: {name} grads differ by {}",
                max_abs(&(a - b).unwrap())
            );
        }
    }
}
