//! Training faults through the binary: a loss or gradient that turns NaN or
//! Inf fails the run at once, naming stage, epoch and step, with earlier
//! work kept; the same file and seed give bit-identical metrics; `--resume`
//! refuses damaged checkpoints by name; checkpoint writes are atomic.

mod cli_support;
mod plm_support;
use cli_support::{cp, start_long_run, DATASET};
use plm_support::tiny_plm;
use std::collections::HashMap;
use std::path::Path;
use std::process::Output;
use std::time::Duration;

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use clickprompt::store::{RunFilter, Store};
use clickprompt::train::checkpoint;

fn run(dir: &Path, args: &[&str]) -> Output {
    cp(dir).args(args).output().expect("run clickprompt")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn only_run(store: &Store) -> i64 {
    let runs = store.list_runs(&RunFilter::default()).unwrap();
    assert_eq!(runs.len(), 1);
    runs[0].id
}

/// "stage S, epoch E, step N: loss became …" → N, checking S and E.
fn failing_step(error: &str, stage: &str, epoch: i64) -> i64 {
    let head = format!("stage {stage}, epoch {epoch}, step ");
    let at = error
        .find(&head)
        .unwrap_or_else(|| panic!("no `{head}` in: {error}"));
    let rest = &error[at + head.len()..];
    let n: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    let after = &rest[n.len()..];
    assert!(
        after.starts_with(": loss became") || after.starts_with(": gradient norm became"),
        "{error}"
    );
    assert!(
        ["NaN", "inf"].iter().any(|w| after.contains(w)),
        "the error names the bad value: {error}"
    );
    n.parse().unwrap()
}

/// What a blown-up stage must leave behind: the run FAILED with the reason,
/// the stage before it finished with its evaluations and checkpoint files
/// intact, and the failing stage's step metrics up to the bad step.
fn assert_failed_and_kept(dir: &Path, out: &Output, good: &str, bad: &str) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    let store = Store::open(dir.join("runs.db")).unwrap();
    let id = only_run(&store);
    let run = store.run_summary(id).unwrap();
    assert_eq!(run.status, "FAILED");
    let reason = run.error.clone().unwrap_or_default();
    let step = failing_step(&reason, bad, 1);
    assert!(
        err.contains(&format!("stage {bad}, epoch 1, step {step}")),
        "{err}"
    );

    let stages: HashMap<String, String> = store
        .stages(id)
        .unwrap()
        .into_iter()
        .map(|s| (s.stage, s.status))
        .collect();
    assert_eq!(stages[good], "FINISHED", "{stages:?}");
    assert_ne!(stages[bad], "FINISHED", "{stages:?}");
    assert_ne!(stages[bad], "RUNNING", "{stages:?}");

    let evals = store.evaluations(id).unwrap();
    assert!(evals.iter().any(|e| e.stage == good && e.split == "valid"));
    let arts = store.artifacts(id).unwrap();
    let kept: Vec<_> = arts.iter().filter(|a| a.stage == good).collect();
    assert!(!kept.is_empty(), "no checkpoint recorded for {good}");
    for a in kept {
        // Recorded relative to the directory the run was started in.
        let saved = checkpoint::describe(&dir.join(&a.path)).unwrap();
        assert_eq!(saved.sha256, a.sha256, "{} changed", a.path);
    }
    let good_losses = store.metric_series(id, Some(good), Some("loss")).unwrap();
    assert!(!good_losses.is_empty());
    assert!(good_losses
        .iter()
        .all(|p| p.value.is_some_and(f64::is_finite)));
    // Steps before the bad one were recorded, the bad one was not.
    let bad_losses = store.metric_series(id, Some(bad), Some("loss")).unwrap();
    assert_eq!(bad_losses.len() as i64, step - 1, "{bad_losses:?}");
    assert!(bad_losses.iter().all(|p| p.step < step));
}

#[test]
fn lr_1e9_fails_a_ctr_stage_at_the_bad_step_and_keeps_earlier_work() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let src = DATASET.replace("ROWS", "2000")
        + r#"
experiment blowup {
  data syn  plm none
  ctr dcnv2 { embed 8, cross 2, mlp [16] }
  device cpu  seed 1
  stage finetune ctr_only as warm { epochs 1, batch 64, lr 1e-3 }
  stage finetune ctr_only as hot { from warm, epochs 2, batch 64, lr 1e9 }
}
"#;
    std::fs::write(dir.join("blowup.cp"), src).unwrap();
    let out = run(dir, &["run", "blowup.cp", "--db", "runs.db"]);
    assert_failed_and_kept(dir, &out, "warm", "hot");
}

#[test]
fn lr_1e30_fails_a_plm_stage_at_the_bad_step_and_keeps_earlier_work() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    tiny_plm(&dir.join("tiny"), &[]);
    let src = DATASET.replace("ROWS", "300")
        + r#"
template t = "taste {user_taste}. title {title}."
plm tiny = bert("tiny") { max_len 24 }
experiment blowup {
  data syn  text t  plm tiny
  ctr dnn { embed 8, mlp [16] }
  prompts 2 deep  device cpu  seed 1
  stage pretrain pa_mlm { epochs 1, batch 32, lr 1e-3, mask 0.15 }
  stage finetune joint  { epochs 1, batch 32, lr 1e30 }
}
"#;
    std::fs::write(dir.join("blowup.cp"), src).unwrap();
    let out = run(dir, &["run", "blowup.cp", "--db", "runs.db"]);
    assert_failed_and_kept(dir, &out, "pretrain", "joint");
}

/// (stage, step, key, value bits) of one stored step metric.
type MetricBits = (String, i64, String, Option<u64>);

/// Every stored value of run `id` but timings, in insertion order.
fn stored_values(store: &Store, id: i64) -> (Vec<MetricBits>, Vec<String>) {
    let metrics = store
        .metric_series(id, None, None)
        .unwrap()
        .into_iter()
        .filter(|p| p.key != "samples_per_s")
        .map(|p| (p.stage, p.step, p.key, p.value.map(f64::to_bits)))
        .collect();
    let evals = store
        .evaluations(id)
        .unwrap()
        .into_iter()
        .map(|e| {
            format!(
                "{} {} {} {:?} {:?} {:?}",
                e.stage,
                e.epoch,
                e.split,
                e.auc.map(f64::to_bits),
                e.logloss.map(f64::to_bits),
                e.metrics
                    .values()
                    .map(|v| v.map(f64::to_bits))
                    .collect::<Vec<_>>()
            )
        })
        .collect();
    (metrics, evals)
}

#[test]
fn the_same_file_and_seed_give_bit_identical_metrics_on_cpu() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    tiny_plm(&dir.join("tiny"), &[]);
    let src = DATASET.replace("ROWS", "600")
        + r#"
template t = "taste {user_taste}. title {title}."
plm tiny = bert("tiny") { max_len 24 }
experiment twice {
  data syn  text t  plm tiny
  ctr dcnv2 { embed 8, cross 2, mlp [16] }
  prompts 2 deep  device cpu  seed 7
  stage pretrain pa_mlm   { epochs 1, batch 32, lr 1e-3, mask 0.15 }
  stage finetune joint    { epochs 1, batch 32, lr 1e-3, grad_clip 1.0 }
  stage finetune ctr_only { epochs 2, batch 64, lr 3e-3 }
}
"#;
    std::fs::write(dir.join("twice.cp"), src).unwrap();
    for _ in 0..2 {
        let out = run(dir, &["run", "twice.cp", "--db", "runs.db"]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let store = Store::open(dir.join("runs.db")).unwrap();
    let mut ids: Vec<i64> = store
        .list_runs(&RunFilter::default())
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect();
    ids.sort();
    assert_eq!(ids.len(), 2);
    let (m1, e1) = stored_values(&store, ids[0]);
    let (m2, e2) = stored_values(&store, ids[1]);
    assert!(m1.len() > 20, "{} metric values", m1.len());
    assert!(e1.len() >= 5, "{e1:?}");
    assert_eq!(m1.len(), m2.len());
    for (a, b) in m1.iter().zip(&m2) {
        assert_eq!(a, b, "metric differs between the two runs");
    }
    assert_eq!(e1, e2);
}

/// A CTR run stopped with SIGINT after its first evaluated epoch: its id and
/// the newest epoch checkpoint `--resume` will load.
fn interrupted_run(dir: &Path) -> (i64, String) {
    let (child, id) = start_long_run(dir, Duration::from_secs(300));
    let db = dir.join("runs.db");
    // SAFETY: plain kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    let store = Store::open(&db).unwrap();
    assert_eq!(store.run_summary(id).unwrap().status, "INTERRUPTED");
    let last = store
        .artifacts(id)
        .unwrap()
        .into_iter()
        .filter(|a| a.path.contains("epoch-"))
        .max_by_key(|a| a.epoch)
        .expect("an epoch checkpoint");
    (id, last.path)
}

fn assert_resume_refuses(dir: &Path, id: i64, path: &str, why: &str) {
    let out = run(
        dir,
        &["run", "--resume", &id.to_string(), "--db", "runs.db"],
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(err.contains(path) && err.contains(why), "{err}");
    let store = Store::open(dir.join("runs.db")).unwrap();
    let run = store.run_summary(id).unwrap();
    assert_eq!(run.status, "FAILED");
    let reason = run.error.unwrap_or_default();
    assert!(reason.contains(path) && reason.contains(why), "{reason}");
    // Nothing was trained again from scratch.
    assert!(!store
        .logs_tail(id, 50)
        .unwrap()
        .iter()
        .any(|l| l.message.contains("resuming")));
}

#[test]
fn resume_refuses_a_truncated_or_garbage_checkpoint_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    // `path` as recorded (and named in errors), relative to `dir`.
    let (id, path) = interrupted_run(dir);
    let file = dir.join(&path);
    let bytes = std::fs::read(&file).unwrap();

    std::fs::write(&file, &bytes[..bytes.len() / 2]).unwrap();
    assert_resume_refuses(dir, id, &path, "truncated");

    // Same length, other contents: still parses as a file of the right size.
    let garbage: Vec<u8> = bytes.iter().map(|b| b ^ 0x5a).collect();
    std::fs::write(&file, &garbage).unwrap();
    assert_resume_refuses(dir, id, &path, "SHA-256 mismatch");

    // The good file back: the resume goes on and finishes the run.
    std::fs::write(&file, &bytes).unwrap();
    let out = run(
        dir,
        &["run", "--resume", &id.to_string(), "--db", "runs.db"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let store = Store::open(dir.join("runs.db")).unwrap();
    assert_eq!(store.run_summary(id).unwrap().status, "FINISHED");
}

fn tensors(v: f32) -> HashMap<String, Tensor> {
    let t = Tensor::full(v, (4, 3), &Device::Cpu).unwrap();
    HashMap::from([("w".to_string(), t)])
}

fn load_w(path: &Path) -> anyhow::Result<f32> {
    let vm = VarMap::new();
    let vb = VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu);
    vb.get_with_hints((4, 3), "w", candle_nn::Init::Const(0.0))?;
    checkpoint::load_by_name(&vm, path)?;
    let w = vm.data().lock().unwrap()["w"].as_tensor().clone();
    Ok(w.flatten_all()?.to_vec1::<f32>()?[0])
}

#[test]
fn a_damaged_checkpoint_fails_to_load_with_its_name_and_never_panics() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("epoch-1.safetensors");
    checkpoint::save_tensors(&tensors(1.5), &path).unwrap();
    assert_eq!(load_w(&path).unwrap(), 1.5);
    let bytes = std::fs::read(&path).unwrap();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", vec![]),
        ("truncated header", bytes[..5].to_vec()),
        ("truncated data", bytes[..bytes.len() - 7].to_vec()),
        (
            "garbage",
            (0..bytes.len()).map(|i| (i * 37 % 251) as u8).collect(),
        ),
        ("huge header length", {
            let mut b = bytes.clone();
            b[..8].copy_from_slice(&u64::MAX.to_le_bytes());
            b
        }),
    ];
    for (what, data) in cases {
        std::fs::write(&path, &data).unwrap();
        let res = std::panic::catch_unwind(|| load_w(&path));
        let err = match res {
            Ok(Ok(v)) => panic!("{what}: loaded {v}"),
            Ok(Err(e)) => format!("{e:#}"),
            Err(_) => panic!("{what}: loading panicked"),
        };
        assert!(err.contains(&path.display().to_string()), "{what}: {err}");
    }
}

#[test]
fn a_crash_mid_write_leaves_the_previous_checkpoint_whole() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("stage").join("best.safetensors");
    checkpoint::save_tensors(&tensors(1.0), &path).unwrap();
    // What a kill during the next write leaves: a torn temporary file next
    // to the checkpoint, which itself is untouched.
    let tmp_file = tmp.path().join("stage").join("best.safetensors.tmp");
    std::fs::write(&tmp_file, b"torn").unwrap();
    assert_eq!(load_w(&path).unwrap(), 1.0);
    // The next write replaces both, and leaves no temporary file behind.
    let saved = checkpoint::save_tensors(&tensors(2.0), &path).unwrap();
    assert!(!tmp_file.exists());
    assert_eq!(load_w(&path).unwrap(), 2.0);
    assert_eq!(checkpoint::describe(&path).unwrap(), saved);
    let names: Vec<_> = std::fs::read_dir(tmp.path().join("stage"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["best.safetensors"]);
}
