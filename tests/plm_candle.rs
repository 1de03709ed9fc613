//! The encoder without prompts against candle-transformers' `BertModel` on the
//! same checkpoint: a tiny random BERT written here (always runs), and
//! all-MiniLM-L6-v2 when `assets/plm` has it. Also: our `config.json` reading
//! agrees with candle's `bert::Config` where candle can read the file.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use candle_transformers::models::bert;
use clickprompt::model::plm::{load_checkpoint, Checkpoint, Config, PlmEncoder, Prompts};
use clickprompt::plan::types::PlmFamily;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Outputs must agree this closely (f32 on both sides, different kernels).
const TOL: f32 = 1e-5;

/// A HuggingFace-style folder with a 2-layer BERT of random weights (every
/// tensor random, LayerNorm included, names with the `bert.` prefix).
fn tiny_bert(dir: &Path) {
    let config = serde_json::json!({
        "architectures": ["BertModel"],
        "model_type": "bert",
        "vocab_size": 61,
        "hidden_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "intermediate_size": 48,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": 24,
        "type_vocab_size": 2,
        "initializer_range": 0.02,
        "layer_norm_eps": 1e-12,
        "pad_token_id": 0,
        "position_embedding_type": "absolute"
    });
    std::fs::write(dir.join("config.json"), config.to_string()).expect("config.json");
    let cfg = Config::from_dir(dir).expect("config");
    // Our encoder names the variables; every one gets random values.
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    PlmEncoder::load(vb.pp("plm"), &cfg, PlmFamily::Bert).expect("encoder");
    let mut rng = StdRng::seed_from_u64(20_240_513);
    let mut tensors: HashMap<String, Tensor> = HashMap::new();
    let vars = varmap.data().lock().expect("vars").clone();
    for (name, var) in vars {
        let around = if name.contains("LayerNorm.weight") {
            1.0
        } else {
            0.0
        };
        let values: Vec<f32> = (0..var.elem_count())
            .map(|_| around + rng.random_range(-0.5f32..0.5))
            .collect();
        let t = Tensor::from_vec(values, var.shape(), &Device::Cpu).expect("tensor");
        let hf = name.strip_prefix("plm.").expect("plm. prefix");
        tensors.insert(format!("bert.{hf}"), t);
    }
    candle_core::safetensors::save(&tensors, dir.join("model.safetensors")).expect("save");
}

/// Ours: the checkpoint loaded into our encoder's variables.
fn ours(dir: &Path) -> (PlmEncoder, Config) {
    let cfg = Config::from_dir(dir).expect("config");
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let enc = PlmEncoder::load(vb.pp("plm"), &cfg, PlmFamily::Bert).expect("encoder");
    let ckpt = Checkpoint::open(dir).expect("checkpoint");
    let report = load_checkpoint(&varmap, &ckpt).expect("load");
    assert_eq!(report.loaded.len(), varmap.all_vars().len());
    (enc, cfg)
}

/// Theirs: candle-transformers' BertModel from the same files, configured
/// from candle's own reading of config.json.
fn theirs(dir: &Path) -> bert::BertModel {
    let text = std::fs::read_to_string(dir.join("config.json")).expect("config.json");
    let cfg: bert::Config = serde_json::from_str(&text).expect("candle reads config.json");
    let tensors =
        candle_core::safetensors::load(dir.join("model.safetensors"), &Device::Cpu).expect("load");
    let vb = VarBuilder::from_tensors(tensors, DType::F32, &Device::Cpu);
    bert::BertModel::load(vb, &cfg).expect("BertModel")
}

/// candle's configuration from config.json equals ours converted.
fn same_config(dir: &Path, cfg: &Config) {
    let text = std::fs::read_to_string(dir.join("config.json")).expect("config.json");
    let candle: bert::Config = serde_json::from_str(&text).expect("candle config");
    let mut mine = cfg.to_candle_bert();
    // Fields our encoder has no use for.
    mine.initializer_range = candle.initializer_range;
    mine.use_cache = candle.use_cache;
    mine.classifier_dropout = candle.classifier_dropout;
    assert_eq!(mine, candle);
}

/// Max |ours - theirs| over the real (unmasked) tokens of a padded batch.
fn max_diff(dir: &Path, ids: &[Vec<u32>]) -> f32 {
    let (enc, cfg) = ours(dir);
    same_config(dir, &cfg);
    let model = theirs(dir);
    let t = ids.iter().map(Vec::len).max().unwrap_or(0);
    let mut flat = Vec::new();
    let mut mask = Vec::new();
    for row in ids {
        for j in 0..t {
            flat.push(row.get(j).copied().unwrap_or(0));
            mask.push(if j < row.len() { 1u32 } else { 0 });
        }
    }
    let b = ids.len();
    let ids_t = Tensor::from_vec(flat, (b, t), &Device::Cpu).expect("ids");
    let mask_u = Tensor::from_vec(mask.clone(), (b, t), &Device::Cpu).expect("mask");
    let mask_f = mask_u.to_dtype(DType::F32).expect("mask f32");
    let a = enc
        .forward(&ids_t, &mask_f, Prompts::None, false, false)
        .expect("ours")
        .last;
    let types = ids_t.zeros_like().expect("token types");
    let c = model
        .forward(&ids_t, &types, Some(&mask_u))
        .expect("theirs");
    assert_eq!(a.dims(), c.dims());
    let a: Vec<Vec<Vec<f32>>> = a.to_vec3().expect("ours");
    let c: Vec<Vec<Vec<f32>>> = c.to_vec3().expect("theirs");
    let mut worst = 0f32;
    for i in 0..b {
        for j in 0..ids[i].len() {
            for (x, y) in a[i][j].iter().zip(&c[i][j]) {
                assert!(x.is_finite() && y.is_finite());
                worst = worst.max((x - y).abs());
            }
        }
    }
    worst
}

#[test]
fn tiny_random_bert_matches_candle_bert_model() {
    let dir = tempfile::tempdir().expect("tempdir");
    tiny_bert(dir.path());
    let ids = vec![
        vec![2, 17, 33, 5, 60, 8, 3],
        vec![2, 41, 9, 3],
        vec![2, 1, 59, 12, 44, 3],
    ];
    let worst = max_diff(dir.path(), &ids);
    eprintln!("tiny BERT: max |ours - candle BertModel| = {worst:.2e}");
    assert!(worst < TOL, "max difference {worst} exceeds {TOL}");
    // The comparison can fail: a changed weight changes our output only.
    let mut tensors =
        candle_core::safetensors::load(dir.path().join("model.safetensors"), &Device::Cpu)
            .expect("load");
    let key = "bert.encoder.layer.1.output.LayerNorm.weight";
    let bumped = (tensors[key].clone() + 0.01).expect("bump");
    tensors.insert(key.to_string(), bumped);
    let other = tempfile::tempdir().expect("tempdir");
    candle_core::safetensors::save(&tensors, other.path().join("model.safetensors")).expect("save");
    std::fs::copy(
        dir.path().join("config.json"),
        other.path().join("config.json"),
    )
    .expect("copy");
    let (enc, _) = ours(other.path());
    let model = theirs(dir.path());
    let ids_t = Tensor::new(&[[2u32, 17, 33, 5]], &Device::Cpu).expect("ids");
    let ones = Tensor::ones((1, 4), DType::F32, &Device::Cpu).expect("mask");
    let a = enc
        .forward(&ids_t, &ones, Prompts::None, false, false)
        .expect("ours")
        .last;
    let c = model
        .forward(&ids_t, &ids_t.zeros_like().expect("types"), None)
        .expect("theirs");
    let d = (a - c)
        .expect("diff")
        .abs()
        .expect("abs")
        .max_all()
        .expect("max")
        .to_scalar::<f32>()
        .expect("scalar");
    assert!(d > 1e-3, "a changed weight went unnoticed ({d})");
}

#[test]
fn minilm_matches_candle_bert_model() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("assets/plm/all-MiniLM-L6-v2");
    if !dir.join("model.safetensors").is_file() {
        eprintln!(
            "SKIPPED: {} is absent (run scripts/fetch-plm.sh)",
            dir.display()
        );
        return;
    }
    // "this is a test", "click-through rate prediction with prompts", "[CLS] [SEP]".
    let ids = vec![
        vec![101, 2023, 2003, 1037, 3231, 102],
        vec![101, 11562, 1011, 2083, 3446, 17547, 2007, 25732, 2015, 102],
        vec![101, 102],
    ];
    let worst = max_diff(&dir, &ids);
    eprintln!("all-MiniLM-L6-v2: max |ours - candle BertModel| = {worst:.2e}");
    assert!(worst < TOL, "max difference {worst} exceeds {TOL}");
}
