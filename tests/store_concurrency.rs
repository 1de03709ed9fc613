//! Several runs writing one database at once (each through its own Store,
//! i.e. its own connection pool, as separate processes would), plus a reader
//! polling: no "database is locked", no lost rows, on SQLite and PostgreSQL.
//! (The 8-process, 2-minute load test is `scripts/pg-load.sh`.)

mod store_support;

use clickprompt::store::{DbTarget, RunFilter, RunStatus, Store};
use clickprompt::train::events::{EvalSplit, Event, EventSink, LogLevel};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use store_support::*;

const WRITERS: usize = 6;
const STEPS: usize = 3000;

fn parallel_writers_and_a_reader_lose_nothing(test_db: &TestDb) {
    let db: DbTarget = test_db.target.clone();
    Store::open(&db).expect("create");
    let done = Arc::new(AtomicBool::new(false));

    let reader = {
        let db = db.clone();
        let done = done.clone();
        std::thread::spawn(move || -> (usize, usize) {
            let store = Store::open(&db).expect("reader open");
            let mut polls = 0;
            let mut seen = std::collections::HashMap::<i64, i64>::new();
            let mut rows = 0;
            while !done.load(Ordering::SeqCst) {
                let runs = store
                    .list_runs(&RunFilter::default())
                    .expect("list while writing");
                for r in &runs {
                    let last = seen.entry(r.id).or_insert(0);
                    let new = store
                        .metrics_since(r.id, *last, 100_000)
                        .expect("poll while writing");
                    // Ids only grow and batches are whole: a step's three keys arrive together.
                    assert!(new.windows(2).all(|w| w[0].id < w[1].id));
                    assert_eq!(new.len() % 3, 0, "a batch was visible half-written");
                    if let Some(m) = new.last() {
                        *last = m.id;
                    }
                    rows += new.len();
                }
                polls += 1;
            }
            (polls, rows)
        })
    };

    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let db = db.clone();
            std::thread::spawn(move || -> i64 {
                let store = Store::open(&db).expect("writer open");
                let rec = start(&store, &sweep_plan(dcnv2(), w + 1));
                rec.emit(Event::StageStarted {
                    stage: "joint".into(),
                    kind: "joint".into(),
                    epochs: 3,
                    steps_per_epoch: STEPS / 3,
                    rows: STEPS * 64,
                });
                for step in 1..=STEPS {
                    let epoch = (step - 1) / (STEPS / 3) + 1;
                    rec.emit(Event::Step {
                        stage: "joint".into(),
                        epoch,
                        step,
                        loss: step as f64,
                        lr: 1e-3,
                        samples_per_s: 1.0,
                    });
                    if step % (STEPS / 3) == 0 {
                        rec.emit(Event::Eval {
                            stage: "joint".into(),
                            epoch,
                            split: EvalSplit::Valid,
                            auc: Some(0.7 + w as f64 / 100.0),
                            logloss: Some(0.5),
                            metrics: vec![],
                        });
                        rec.emit(Event::Log {
                            level: LogLevel::Info,
                            message: format!("epoch {epoch}"),
                        });
                    }
                    if step % 500 == 0 {
                        // Give the batcher real interleaving with the other writers.
                        std::thread::sleep(std::time::Duration::from_millis(5));
                    }
                }
                let id = rec.run_id();
                rec.finish(RunStatus::Finished)
                    .expect("finish without database errors");
                id
            })
        })
        .collect();
    let ids: Vec<i64> = writers
        .into_iter()
        .map(|h| h.join().expect("writer thread"))
        .collect();
    done.store(true, Ordering::SeqCst);
    let (polls, _rows) = reader.join().expect("reader thread");
    assert!(polls > 0);

    let store = Store::open(&db).expect("open");
    for id in &ids {
        let loss = store
            .metric_series(*id, Some("joint"), Some("loss"))
            .expect("loss");
        assert_eq!(loss.len(), STEPS, "run {id}");
        assert!(loss
            .iter()
            .enumerate()
            .all(|(i, m)| m.step == i as i64 + 1 && m.value == Some((i + 1) as f64)));
        assert_eq!(
            store.metric_series(*id, None, None).expect("all").len(),
            3 * STEPS
        );
        assert_eq!(store.evaluations(*id).expect("evals").len(), 3);
        assert_eq!(store.logs_tail(*id, 100).expect("logs").len(), 3);
        assert_eq!(store.run_summary(*id).expect("summary").status, "FINISHED");
    }
    assert_eq!(
        test_db.scalar_i64("SELECT COUNT(*) FROM metrics"),
        (WRITERS * STEPS * 3) as i64
    );
    assert_eq!(test_db.scalar_i64("SELECT COUNT(*) FROM experiments"), 1);
    if !test_db.is_postgres() {
        assert_eq!(test_db.scalar_text("PRAGMA journal_mode"), "wal");
    }
}

both_backends!(parallel_writers_and_a_reader_lose_nothing);
