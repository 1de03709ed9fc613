//! Batches: aligned field ids, token ids, masks and labels; seeded orders.

mod data_common;

use candle_core::Device;
use clickprompt::data::{
    self, epoch_batches, Column, DeviceSplit, LoadStats, OrderSpec, TextTokenizer,
};
use clickprompt::plan::*;
use data_common::*;

fn dataset(dir: &std::path::Path) -> (ExperimentPlan, TextTokenizer) {
    tiny_vocab(
        dir,
        &[
            "user", "id", "is", "genres", "title", "the", "long", "short",
        ],
    );
    let p = dir.join("c.csv");
    let mut s = String::from("user,genres,title,score,rating,ts\n");
    for i in 0..40 {
        let title = if i % 3 == 0 {
            "the long long long long title"
        } else {
            "short"
        };
        s.push_str(&format!(
            "{},{},{title},{},{},{i}\n",
            i % 6,
            ["a|b", "b", "c|a|b"][i % 3],
            i as f64 / 2.0,
            i % 5 + 1
        ));
    }
    std::fs::write(&p, s).unwrap();
    let ds = DatasetPlan {
        name: "b".into(),
        source: SourcePlan::Csv(CsvSource {
            path: p,
            sep: ",".into(),
            header: true,
            columns: vec![],
            latin1: false,
        }),
        label: LabelRule::Threshold {
            column: "rating".into(),
            op: CmpOp::Gt,
            value: 3.0,
        },
        split: SplitPlan::ByTime {
            column: "ts".into(),
            ratios: [8.0, 1.0, 1.0],
        },
        min_count: 1,
        skip_bad_rows: false,
        fields: vec![
            field("user", "User ID", FieldKind::Id),
            field("genres", "Genres", FieldKind::Multi { sep: "|".into() }),
            field("score", "Score", FieldKind::Number),
            field("title", "Title", FieldKind::Text),
        ],
    };
    let plan = experiment(ds, Some(each_template(&["user", "title"])), Some(12));
    let tok = TextTokenizer::from_dir(dir, 12).unwrap();
    (plan, tok)
}

#[test]
fn batches_are_aligned_row_by_row() {
    let d = tempfile::tempdir().unwrap();
    let (plan, tok) = dataset(d.path());
    let (ds, _) = data::build(&plan, Some(&tok), &mut LoadStats::default()).unwrap();
    let train = &ds.train;
    let dev = DeviceSplit::new(train, &ds.meta, &Device::Cpu).unwrap();
    let rows = [3usize, 0, 7];
    let b = dev.batch(&rows).unwrap();
    assert_eq!(b.rows, 3);
    let Column::Single(users) = &train.columns[0] else {
        panic!()
    };
    let Column::Number(scores) = &train.columns[2] else {
        panic!()
    };
    let Column::Single(titles) = &train.columns[3] else {
        panic!()
    };
    let single = b.single.unwrap().to_vec2::<u32>().unwrap();
    for (k, &r) in rows.iter().enumerate() {
        assert_eq!(single[k], [users[r], titles[r]]);
    }
    let Column::Multi { width, ids } = &train.columns[1] else {
        panic!()
    };
    let multi = b.multi[0].to_vec2::<u32>().unwrap();
    for (k, &r) in rows.iter().enumerate() {
        assert_eq!(multi[k], ids[r * width..(r + 1) * width]);
    }
    let nums = b.numbers.unwrap().to_vec2::<f32>().unwrap();
    assert_eq!(
        nums.iter().map(|v| v[0]).collect::<Vec<_>>(),
        rows.map(|r| scores[r])
    );
    assert_eq!(
        b.labels.to_vec1::<f32>().unwrap(),
        rows.map(|r| train.labels[r])
    );
    // Text: padded to the longest row of this batch, mask marks real tokens.
    let text = b.text.unwrap();
    let tokens = train.tokens.as_ref().unwrap();
    let t_ids = text.ids.to_vec2::<u32>().unwrap();
    let mask = text.mask.to_vec2::<f32>().unwrap();
    let longest = rows.iter().map(|&r| tokens.len_of(r)).max().unwrap();
    assert_eq!(t_ids[0].len(), longest);
    assert!(tokens.len_of(7) < longest, "fixture should mix lengths");
    for (k, &r) in rows.iter().enumerate() {
        let real = tokens.row(r);
        assert_eq!(&t_ids[k][..real.len()], real);
        assert!(t_ids[k][real.len()..].iter().all(|&t| t == 0));
        assert_eq!(mask[k].iter().filter(|&&m| m == 1.0).count(), real.len());
        assert_eq!(text.lengths[k], real.len());
    }
}

#[test]
fn epoch_orders_are_seeded_complete_and_bucketing_cuts_padding() {
    let lens: Vec<usize> = (0..1000).map(|i| 5 + (i * 7919) % 60).collect();
    let spec = OrderSpec {
        batch: 32,
        shuffle: true,
        bucket_by_length: false,
        seed: 9,
        epoch: 0,
        max_rows: None,
    };
    let a = epoch_batches(1000, &lens, spec);
    assert_eq!(a, epoch_batches(1000, &lens, spec));
    assert_ne!(
        a,
        epoch_batches(1000, &lens, OrderSpec { epoch: 1, ..spec })
    );
    let mut all: Vec<usize> = a.concat();
    all.sort_unstable();
    assert_eq!(all, (0..1000).collect::<Vec<_>>());
    let padded = |bs: &[Vec<usize>]| -> usize {
        bs.iter()
            .map(|b| b.len() * b.iter().map(|&r| lens[r]).max().unwrap())
            .sum()
    };
    let bucketed = epoch_batches(
        1000,
        &lens,
        OrderSpec {
            bucket_by_length: true,
            ..spec
        },
    );
    let mut all: Vec<usize> = bucketed.concat();
    all.sort_unstable();
    assert_eq!(all.len(), 1000);
    assert!(
        padded(&bucketed) * 10 < padded(&a) * 8,
        "{} vs {}",
        padded(&bucketed),
        padded(&a)
    );
    let capped = epoch_batches(
        1000,
        &lens,
        OrderSpec {
            max_rows: Some(100),
            ..spec
        },
    );
    assert_eq!(capped.concat().len(), 100);
    // The same 100 rows every epoch, in a different order.
    let next = epoch_batches(
        1000,
        &lens,
        OrderSpec {
            max_rows: Some(100),
            epoch: spec.epoch + 1,
            ..spec
        },
    );
    let (mut a1, mut a2) = (capped.concat(), next.concat());
    assert_ne!(a1, a2, "epochs must reshuffle");
    a1.sort_unstable();
    a2.sort_unstable();
    assert_eq!(a1, a2, "max_rows must keep one subset for the whole stage");
}

/// A subset (`valid_rows`) gives exactly the original rows' batches, and
/// `sample_rows` is seeded, distinct, sorted and complete when n ≥ rows.
#[test]
fn subsets_keep_rows_intact_and_samples_are_seeded() {
    let d = tempfile::tempdir().unwrap();
    let (plan, tok) = dataset(d.path());
    let (ds, _) = data::build(&plan, Some(&tok), &mut LoadStats::default()).unwrap();
    let full = DeviceSplit::new(&ds.train, &ds.meta, &Device::Cpu).unwrap();
    let picked = data::sample_rows(full.rows, 9, 3);
    assert_eq!(picked, data::sample_rows(full.rows, 9, 3));
    assert_ne!(picked, data::sample_rows(full.rows, 9, 4));
    assert_eq!(picked.len(), 9);
    assert!(picked.windows(2).all(|w| w[0] < w[1]), "{picked:?}");
    assert_eq!(
        data::sample_rows(full.rows, full.rows + 5, 3),
        (0..full.rows).collect::<Vec<_>>()
    );
    let sub = full.subset(&picked).unwrap();
    assert_eq!(sub.rows, 9);
    assert_eq!(
        sub.token_lengths(),
        picked
            .iter()
            .map(|&r| full.token_lengths()[r])
            .collect::<Vec<_>>()
    );
    let a = sub.batch(&[0, 4, 8]).unwrap();
    let b = full.batch(&[picked[0], picked[4], picked[8]]).unwrap();
    assert_eq!(
        a.single.unwrap().to_vec2::<u32>().unwrap(),
        b.single.unwrap().to_vec2::<u32>().unwrap()
    );
    assert_eq!(
        a.multi[0].to_vec2::<u32>().unwrap(),
        b.multi[0].to_vec2::<u32>().unwrap()
    );
    assert_eq!(
        a.labels.to_vec1::<f32>().unwrap(),
        b.labels.to_vec1::<f32>().unwrap()
    );
    let (ta, tb) = (a.text.unwrap(), b.text.unwrap());
    assert_eq!(
        ta.ids.to_vec2::<u32>().unwrap(),
        tb.ids.to_vec2::<u32>().unwrap()
    );
    assert_eq!(ta.lengths, tb.lengths);
    let err = match full.subset(&[0, full.rows]) {
        Ok(_) => panic!("a row past the end must be an error"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("outside a split"), "{err}");
}
