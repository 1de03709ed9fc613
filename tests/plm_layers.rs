//! `plm … { layers N }`: the first N transformer layers of a checkpoint give
//! exactly what those layers give inside the full model.

mod plm_support;
use plm_support::write_checkpoint;

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use clickprompt::model::plm::{load_checkpoint, Checkpoint, Config, PlmEncoder, Prompts};
use clickprompt::plan::PlmFamily;

fn checkpoint(dir: &std::path::Path, layers: usize) {
    let mut cfg = Config::tiny(50, 16, layers, 2);
    cfg.hidden_dropout_prob = 0.0;
    cfg.attention_probs_dropout_prob = 0.0;
    write_checkpoint(dir, &cfg);
}

fn encoder(dir: &std::path::Path, layers: Option<usize>) -> PlmEncoder {
    let cfg = Config::from_dir(dir).unwrap().truncated(layers).unwrap();
    let vm = VarMap::new();
    let vb = VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu);
    let enc = PlmEncoder::load(vb.pp("plm"), &cfg, PlmFamily::Bert).unwrap();
    load_checkpoint(&vm, &Checkpoint::open(dir).unwrap()).unwrap();
    enc
}

fn max_abs(a: &Tensor, b: &Tensor) -> f32 {
    (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar()
        .unwrap()
}

#[test]
fn the_first_layers_alone_equal_those_layers_in_the_full_model() {
    let tmp = tempfile::tempdir().unwrap();
    checkpoint(tmp.path(), 3);
    let dev = Device::Cpu;
    let ids = Tensor::new(&[[2u32, 7, 9, 11, 3, 0], [2, 8, 30, 3, 0, 0]], &dev).unwrap();
    let mask = Tensor::new(
        &[[1f32, 1., 1., 1., 1., 0.], [1., 1., 1., 1., 0., 0.]],
        &dev,
    )
    .unwrap();
    let full = encoder(tmp.path(), None);
    assert_eq!(full.num_layers(), 3);
    let out = full
        .forward(&ids, &mask, Prompts::None, false, true)
        .unwrap();
    let two = encoder(tmp.path(), Some(2));
    assert_eq!(two.num_layers(), 2);
    let got = two
        .forward(&ids, &mask, Prompts::None, false, false)
        .unwrap()
        .last;
    // In a 3-layer model the second-to-last layer's output is layer 2's.
    let want = out.penultimate.unwrap();
    assert!(
        max_abs(&got, &want) < 1e-6,
        "layers 2: {}",
        max_abs(&got, &want)
    );
    let one = encoder(tmp.path(), Some(1)).forward(&ids, &mask, Prompts::None, false, false);
    let first = out.first.unwrap();
    assert!(max_abs(&one.unwrap().last, &first) < 1e-6);
    // And the cut is a real cut: the full model's output differs.
    assert!(max_abs(&out.last, &want) > 1e-3);
}

#[test]
fn layers_outside_the_checkpoint_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    checkpoint(tmp.path(), 2);
    let cfg = Config::from_dir(tmp.path()).unwrap();
    for n in [0, 3] {
        let e = cfg.clone().truncated(Some(n)).unwrap_err().to_string();
        assert!(e.contains("the checkpoint has 2 transformer layers"), "{e}");
    }
    assert_eq!(cfg.truncated(None).unwrap().num_hidden_layers, 2);
}
