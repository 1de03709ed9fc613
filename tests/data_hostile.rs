//! Hostile data files (found by `examples/fuzz.rs --target data`): each is
//! read or refused with the file and line named, never a panic.

use clickprompt::data::sources::{self, title_year};
use clickprompt::plan::*;

fn read(source: SourcePlan) -> anyhow::Result<usize> {
    let plan = DatasetPlan::new(
        "d",
        source,
        LabelRule::Threshold {
            column: "rating".into(),
            op: CmpOp::Gt,
            value: 3.0,
        },
        SplitPlan::ByTime {
            column: "timestamp".into(),
            ratios: [8.0, 1.0, 1.0],
        },
    );
    sources::read(&plan).map(|(t, _)| t.rows)
}

#[test]
fn a_multibyte_character_before_the_closing_parenthesis_is_no_year() {
    // Slicing the four bytes before `)` cut `é` in half: 59 panics in the fuzzer.
    assert_eq!(title_year("Amélie (é)"), "");
    assert_eq!(title_year("x(ééé)"), "");
    assert_eq!(title_year("🦀)"), "");
    assert_eq!(title_year("Amélie (2001)"), "2001");
}

#[test]
fn movielens_titles_with_multibyte_endings_are_read() {
    let d = tempfile::tempdir().unwrap();
    let w = |name: &str, bytes: &[u8]| std::fs::write(d.path().join(name), bytes).unwrap();
    w("u.data", b"1\t1\t5\t881250949\n1\t2\t3\t881250950\n");
    w("u.user", b"1|24|M|technician|85711\n");
    w("u.item", "1|Am\u{e9}lie (\u{e9})|01-Jan-1995||http://x|0|1|1|0\n2|x(\u{e9}\u{e9}\u{e9})|01-Jan-1995||http://x|0|0|0|0\n".as_bytes());
    w("u.genre", b"unknown|0\nAction|1\nComedy|2\nDrama|3\n");
    let rows = read(SourcePlan::MovieLens100k {
        dir: d.path().into(),
    })
    .expect("read");
    assert_eq!(rows, 2);
    w("movies.dat", "1::x(\u{e9}\u{e9}\u{e9})::Drama\n".as_bytes());
    w("ratings.dat", b"1::1::5::978300760\n");
    w("users.dat", b"1::F::1::10::48067\n");
    let rows = read(SourcePlan::MovieLens1m {
        dir: d.path().into(),
    })
    .expect("read 1m");
    assert_eq!(rows, 1);
}
