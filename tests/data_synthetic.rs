//! The synthetic generator: deterministic, and its labels carry both planted signals.

use std::collections::HashMap;

use clickprompt::data::raw::RawTable;
use clickprompt::data::synthetic::{generate, Synthetic, THEMES};
use clickprompt::error::exit_code;
use clickprompt::plan::SyntheticSource;

fn params(seed: u64, semantic: f64, collaborative: f64) -> SyntheticSource {
    SyntheticSource {
        users: 400,
        items: 2000,
        rows: 40_000,
        seed,
        themes: 8,
        semantic,
        collaborative,
        noise: 1.0,
    }
}

fn col<'a>(t: &'a RawTable, name: &str) -> Vec<&'a str> {
    let c = t.column(name).unwrap();
    (0..t.rows).map(|r| c.value(r)).collect()
}

/// Theme of a word, from the public word lists.
fn theme_of_word(w: &str) -> Option<usize> {
    let w = w.to_lowercase();
    THEMES.iter().position(|t| t.words.contains(&w.as_str()))
}

/// Per row: does the stated taste's theme (read from its words) equal the
/// title's theme (read from its words)?
fn matched_from_text(s: &Synthetic) -> Vec<bool> {
    let taste = col(&s.table, "user_taste");
    let title = col(&s.table, "title");
    taste
        .iter()
        .zip(&title)
        .map(|(ta, ti)| {
            let a: Vec<usize> = ta.split(' ').filter_map(theme_of_word).collect();
            let b: Vec<usize> = ti.split(' ').filter_map(theme_of_word).collect();
            assert_eq!(a.len(), 2, "taste {ta:?}");
            assert_eq!(b.len(), 2, "title {ti:?}");
            assert!(a[0] == a[1] && b[0] == b[1]);
            a[0] == b[0]
        })
        .collect()
}

fn rate(labels: &[f64], mask: impl Iterator<Item = bool>) -> (f64, usize) {
    let (mut n, mut pos) = (0usize, 0.0);
    for (l, m) in labels.iter().zip(mask) {
        if m {
            n += 1;
            pos += l;
        }
    }
    (pos / n.max(1) as f64, n)
}

fn labels(s: &Synthetic) -> Vec<f64> {
    col(&s.table, "label")
        .iter()
        .map(|l| l.parse().unwrap())
        .collect()
}

/// Exact tie-aware AUC (average ranks).
fn auc(scores: &[f64], labels: &[f64]) -> f64 {
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let mut ranks = vec![0.0; scores.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && scores[idx[j + 1]] == scores[idx[i]] {
            j += 1;
        }
        for k in i..=j {
            ranks[idx[k]] = (i + j) as f64 / 2.0 + 1.0;
        }
        i = j + 1;
    }
    let pos = labels.iter().filter(|&&l| l > 0.5).count() as f64;
    let neg = labels.len() as f64 - pos;
    let rsum: f64 = ranks
        .iter()
        .zip(labels)
        .filter(|(_, &l)| l > 0.5)
        .map(|(r, _)| r)
        .sum();
    (rsum - pos * (pos + 1.0) / 2.0) / (pos * neg)
}

#[test]
fn same_seed_same_table_other_seed_other_table() {
    let a = generate(&params(3, 2.0, 1.0)).unwrap();
    let b = generate(&params(3, 2.0, 1.0)).unwrap();
    let c = generate(&params(4, 2.0, 1.0)).unwrap();
    assert_eq!(
        a.table.names,
        [
            "user_id",
            "item_id",
            "user_taste",
            "title",
            "genre",
            "label",
            "rating",
            "timestamp"
        ]
    );
    for name in &a.table.names {
        assert_eq!(col(&a.table, name), col(&b.table, name), "{name}");
    }
    assert_ne!(col(&a.table, "item_id"), col(&c.table, "item_id"));
    assert_ne!(col(&a.table, "label"), col(&c.table, "label"));
}

#[test]
fn text_is_consistent_and_time_increases() {
    let s = generate(&params(5, 2.0, 1.0)).unwrap();
    let genre = col(&s.table, "genre");
    for (ti, g) in col(&s.table, "title").iter().zip(&genre) {
        let th = ti.split(' ').find_map(theme_of_word).unwrap();
        assert_eq!(THEMES[th].genre, *g);
    }
    let ts: Vec<u64> = col(&s.table, "timestamp")
        .iter()
        .map(|t| t.parse().unwrap())
        .collect();
    assert!(ts.windows(2).all(|w| w[0] < w[1]));
    // rating > 3 is the same label.
    for (r, l) in col(&s.table, "rating").iter().zip(col(&s.table, "label")) {
        assert_eq!(r.parse::<u32>().unwrap() > 3, l == "1");
    }
}

#[test]
fn popularity_is_skewed_so_many_items_are_rare() {
    let s = generate(&params(6, 2.0, 1.0)).unwrap();
    let mut count: HashMap<&str, usize> = HashMap::new();
    for i in col(&s.table, "item_id") {
        *count.entry(i).or_default() += 1;
    }
    let mut c: Vec<usize> = count.values().copied().collect();
    c.sort_unstable_by(|a, b| b.cmp(a));
    let top: usize = c[..200].iter().sum();
    assert!(
        top as f64 > 0.5 * 40_000.0,
        "top 10% of items hold {top} of 40000 rows"
    );
    let rare = (2000 - c.len()) + c.iter().filter(|&&k| k <= 3).count();
    println!("top 10% items hold {top} rows; {rare} items have at most 3 rows");
    assert!(rare > 600, "only {rare} of 2000 items have at most 3 rows");
}

#[test]
fn taste_matching_the_title_drives_clicks_even_for_rare_items() {
    let s = generate(&params(7, 2.0, 1.0)).unwrap();
    let y = labels(&s);
    let m = matched_from_text(&s);
    let (pm, nm) = rate(&y, m.iter().copied());
    let (pu, nu) = rate(&y, m.iter().map(|&x| !x));
    assert!(nm > 5000 && nu > 5000, "matched {nm}, unmatched {nu}");
    println!("positive rate: matched {pm:.3} ({nm} rows), unmatched {pu:.3} ({nu} rows)");
    assert!(pm > 0.7 && pu < 0.3, "matched {pm:.3} vs unmatched {pu:.3}");
    // Items with at most 3 rows: the same gap.
    let items = col(&s.table, "item_id");
    let mut count: HashMap<&str, usize> = HashMap::new();
    for i in &items {
        *count.entry(i).or_default() += 1;
    }
    let rare: Vec<bool> = items.iter().map(|i| count[i] <= 3).collect();
    let (rm, n_rm) = rate(&y, m.iter().zip(&rare).map(|(&a, &b)| a && b));
    let (ru, n_ru) = rate(&y, m.iter().zip(&rare).map(|(&a, &b)| !a && b));
    assert!(
        n_rm > 100 && n_ru > 100,
        "rare matched {n_rm}, rare unmatched {n_ru}"
    );
    println!("rare items: matched {rm:.3} ({n_rm} rows), unmatched {ru:.3} ({n_ru} rows)");
    assert!(
        rm - ru > 0.4,
        "rare items: matched {rm:.3} vs unmatched {ru:.3}"
    );
    // Without the semantic term the gap disappears.
    let s0 = generate(&params(7, 0.0, 1.0)).unwrap();
    let y0 = labels(&s0);
    let m0 = matched_from_text(&s0);
    let (a, _) = rate(&y0, m0.iter().copied());
    let (b, _) = rate(&y0, m0.iter().map(|&x| !x));
    assert!(
        (a - b).abs() < 0.05,
        "no semantic term, yet matched {a:.3} vs {b:.3}"
    );
}

#[test]
fn ids_alone_reveal_the_collaborative_signal() {
    // No semantic term: whatever predicts the label must come from the ids.
    let s = generate(&params(8, 0.0, 2.5)).unwrap();
    let y = labels(&s);
    let (hi, _) = rate(&y, s.truth.row_collaborative.iter().map(|&c| c > 1.0));
    let (lo, _) = rate(&y, s.truth.row_collaborative.iter().map(|&c| c < -1.0));
    assert!(
        hi > 0.75 && lo < 0.25,
        "collaborative term high {hi:.3} vs low {lo:.3}"
    );
    // Per-user and per-item click rates from the first 80% (by time) rank the last 20%.
    let users = col(&s.table, "user_id");
    let items = col(&s.table, "item_id");
    let cut = y.len() * 8 / 10;
    let mut ustat: HashMap<&str, (f64, f64)> = HashMap::new();
    let mut istat: HashMap<&str, (f64, f64)> = HashMap::new();
    for r in 0..cut {
        let u = ustat.entry(users[r]).or_default();
        u.0 += y[r];
        u.1 += 1.0;
        let i = istat.entry(items[r]).or_default();
        i.0 += y[r];
        i.1 += 1.0;
    }
    let prior = y[..cut].iter().sum::<f64>() / cut as f64;
    let smooth = |s: Option<&(f64, f64)>| s.map_or(prior, |(p, n)| (p + 2.0 * prior) / (n + 2.0));
    let scores: Vec<f64> = (cut..y.len())
        .map(|r| smooth(ustat.get(users[r])) + smooth(istat.get(items[r])))
        .collect();
    let a = auc(&scores, &y[cut..]);
    println!("collaborative high {hi:.3} vs low {lo:.3}; id-only AUC {a:.3}");
    assert!(a > 0.7, "id-only AUC {a:.3}");
    // The text carries none of it: taste/title match is unrelated to the label here.
    let m = matched_from_text(&s);
    let (pm, _) = rate(&y, m.iter().copied());
    let (pu, _) = rate(&y, m.iter().map(|&x| !x));
    assert!((pm - pu).abs() < 0.05);
}

#[test]
fn bad_parameters_are_invalid_input() {
    let mut p = params(1, 1.0, 1.0);
    p.themes = 13;
    let e = generate(&p).err().unwrap();
    assert_eq!(exit_code(&e), 2);
    assert!(e.to_string().contains("themes must be between 1 and 12"));
    let mut p = params(1, 1.0, 1.0);
    p.rows = 0;
    assert!(generate(&p).is_err());
    let mut p = params(1, 1.0, 1.0);
    p.noise = f64::NAN;
    assert!(generate(&p).is_err());
}
