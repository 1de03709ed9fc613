//! The encoder against an independent NumPy reference (../shared/fixtures):
//! all-MiniLM-L6-v2 hidden states without prompts and with K = 3 deep prefixes.

use std::path::PathBuf;

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use clickprompt::model::plm::{load_checkpoint, Checkpoint, Config, PlmEncoder, Prompts};
use clickprompt::plan::types::PlmFamily;

fn paths() -> Option<(PathBuf, PathBuf)> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let model = root.join("assets/plm/all-MiniLM-L6-v2");
    // `../shared/fixtures` from the repository root; worktrees sit deeper, so
    // the nearest ancestor holding `shared/fixtures` counts too.
    let fixture = root
        .ancestors()
        .skip(1)
        .map(|a| a.join("shared/fixtures/minilm_reference.json"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| root.join("../shared/fixtures/minilm_reference.json"));
    if !model.join("model.safetensors").is_file() {
        eprintln!(
            "SKIPPED: {} is absent (run scripts/fetch-plm.sh)",
            model.display()
        );
        return None;
    }
    if !fixture.is_file() {
        eprintln!("SKIPPED: fixture {} is absent", fixture.display());
        return None;
    }
    Some((model, fixture))
}

/// The docstring's deterministic prefixes as (1, K, 2L, d).
fn prefixes(k: usize, l: usize, d: usize) -> Tensor {
    let mut v = Vec::with_capacity(k * 2 * l * d);
    for kk in 0..k {
        for layer in 0..l {
            for j in 0..d {
                v.push(
                    0.5 * (0.37 * (j as f64 + 1.0) + 1.3 * kk as f64 + 0.7 * layer as f64).sin(),
                );
            }
            for j in 0..d {
                v.push(
                    0.5 * (0.23 * (j as f64 + 1.0) + 0.9 * kk as f64 + 0.5 * layer as f64).cos(),
                );
            }
        }
    }
    Tensor::from_vec(v, (1, k, 2 * l, d), &Device::Cpu)
        .and_then(|t| t.to_dtype(DType::F32))
        .expect("prefix tensor")
}

#[test]
fn minilm_matches_numpy_reference() {
    let Some((model, fixture)) = paths() else {
        return;
    };
    let cfg = Config::from_dir(&model).expect("config");
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let enc = PlmEncoder::load(vb.pp("plm"), &cfg, PlmFamily::Bert).expect("encoder");
    let ckpt = Checkpoint::open(&model).expect("checkpoint");
    let report = load_checkpoint(&varmap, &ckpt).expect("load");
    assert_eq!(report.loaded.len(), varmap.all_vars().len());

    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&fixture).expect("fixture")).expect("json");
    let tol = json["tolerance"].as_f64().expect("tolerance");
    let cases = json["cases"].as_array().expect("cases");
    assert_eq!(cases.len(), 4);
    let mut max_err = 0f64;
    for case in cases {
        let ids: Vec<u32> = case["ids"]
            .as_array()
            .expect("ids")
            .iter()
            .map(|v| v.as_u64().expect("id") as u32)
            .collect();
        let n = ids.len();
        let k = case["prefix_count"].as_u64().expect("K") as usize;
        let ids = Tensor::from_vec(ids, (1, n), &Device::Cpu).expect("ids");
        let mask = Tensor::ones((1, n), DType::F32, &Device::Cpu).expect("mask");
        let p = prefixes(k.max(1), cfg.num_hidden_layers, cfg.hidden_size);
        let prompts = if k == 0 {
            Prompts::None
        } else {
            Prompts::Deep(&p)
        };
        let out = enc
            .forward(&ids, &mask, prompts, false, false)
            .expect("forward");
        let h = out.last.squeeze(0).expect("squeeze");
        let h: Vec<Vec<f32>> = h.to_vec2().expect("hidden");
        for (pos, want) in case["hidden_first8"].as_object().expect("hidden_first8") {
            let pos: usize = pos.parse().expect("pos");
            for (j, w) in want.as_array().expect("row").iter().enumerate() {
                let err = (h[pos][j] as f64 - w.as_f64().expect("value")).abs();
                max_err = max_err.max(err);
                assert!(err < tol, "K={k} pos {pos} dim {j}: {} vs {w}", h[pos][j]);
            }
        }
        let mean: Vec<f64> = (0..cfg.hidden_size)
            .map(|j| h.iter().map(|r| r[j] as f64).sum::<f64>() / n as f64)
            .collect();
        for (j, w) in case["mean_pool_first8"]
            .as_array()
            .expect("mean")
            .iter()
            .enumerate()
        {
            let err = (mean[j] - w.as_f64().expect("value")).abs();
            max_err = max_err.max(err);
            assert!(err < tol, "K={k} mean dim {j}: {} vs {w}", mean[j]);
        }
        let norm = mean.iter().map(|v| v * v).sum::<f64>().sqrt();
        let want = case["mean_pool_norm"].as_f64().expect("norm");
        assert!((norm - want).abs() < tol, "K={k} norm {norm} vs {want}");
    }
    eprintln!("max abs error vs reference: {max_err:.2e}");
}

#[test]
fn padding_does_not_change_real_tokens() {
    let Some((model, _)) = paths() else {
        return;
    };
    let cfg = Config::from_dir(&model).expect("config");
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let enc = PlmEncoder::load(vb.pp("plm"), &cfg, PlmFamily::Bert).expect("encoder");
    load_checkpoint(&varmap, &Checkpoint::open(&model).expect("ckpt")).expect("load");
    let ids =
        Tensor::new(&[[101u32, 2023, 2003, 1037, 3231, 102, 0, 0]], &Device::Cpu).expect("ids");
    let mask = Tensor::new(&[[1f32, 1., 1., 1., 1., 1., 0., 0.]], &Device::Cpu).expect("mask");
    let p = prefixes(3, cfg.num_hidden_layers, cfg.hidden_size);
    let padded = enc
        .forward(&ids, &mask, Prompts::Deep(&p), false, false)
        .expect("padded")
        .last
        .narrow(1, 0, 6)
        .expect("narrow");
    let short = enc
        .forward(
            &ids.narrow(1, 0, 6).expect("ids"),
            &mask.narrow(1, 0, 6).expect("mask"),
            Prompts::Deep(&p),
            false,
            false,
        )
        .expect("short")
        .last;
    let diff = (padded - short)
        .expect("diff")
        .abs()
        .expect("abs")
        .max_all()
        .expect("max")
        .to_scalar::<f32>()
        .expect("scalar");
    assert!(diff < 1e-5, "padding changed real tokens by {diff}");
}
