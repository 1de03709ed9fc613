//! Source parsers against fixture files written here, well-formed and not.

use std::path::Path;

use clickprompt::data::raw::RawTable;
use clickprompt::data::sources::{self, SourceStats};
use clickprompt::error::exit_code;
use clickprompt::plan::*;

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    std::fs::write(dir.join(name), bytes).unwrap();
}

fn dataset(source: SourcePlan, skip_bad_rows: bool) -> DatasetPlan {
    DatasetPlan {
        name: "d".into(),
        source,
        label: LabelRule::Threshold {
            column: "rating".into(),
            op: CmpOp::Gt,
            value: 3.0,
        },
        split: SplitPlan::ByTime {
            column: "timestamp".into(),
            ratios: [8.0, 1.0, 1.0],
        },
        min_count: 1,
        skip_bad_rows,
        fields: Vec::new(),
    }
}

fn read(source: SourcePlan, skip: bool) -> anyhow::Result<(RawTable, SourceStats)> {
    sources::read(&dataset(source, skip))
}

fn col(t: &RawTable, name: &str) -> Vec<String> {
    let c = t.column(name).unwrap_or_else(|| panic!("no column {name}"));
    (0..t.rows).map(|r| c.value(r).to_string()).collect()
}

/// Asserts an invalid-input error whose message contains every fragment.
fn assert_invalid<T>(r: anyhow::Result<T>, fragments: &[&str]) {
    let e = match r {
        Ok(_) => panic!("expected an error containing {fragments:?}"),
        Err(e) => e,
    };
    let msg = format!("{e:#}");
    assert_eq!(exit_code(&e), 2, "not an invalid-input error: {msg}");
    for f in fragments {
        assert!(msg.contains(f), "message {msg:?} lacks {f:?}");
    }
}

const GENRES: &str = "unknown|0\nAction|1\nComedy|2\nDrama|3\n";

fn ml100k(dir: &Path) {
    write(
        dir,
        "u.data",
        b"1\t10\t5\t881250949\n2\t11\t3\t881250950\n1\t11\t4\t881250940\n",
    );
    write(
        dir,
        "u.user",
        b"1|24|M|technician|85711\n2|53|F|other|94043\n",
    );
    write(
        dir,
        "u.item",
        b"10|Mis\xe9rables, Les (1995)|01-Jan-1995||http://x|0|1|1|0\n11|Kolya (1996)|24-Jan-1997||http://y|0|0|0|0\n",
    );
    write(dir, "u.genre", GENRES.as_bytes());
}

#[test]
fn movielens_100k_joins_users_items_and_genres() {
    let d = tempfile::tempdir().unwrap();
    ml100k(d.path());
    let (t, stats) = read(
        SourcePlan::MovieLens100k {
            dir: d.path().into(),
        },
        false,
    )
    .unwrap();
    assert_eq!(t.rows, 3);
    assert_eq!(stats.rows, 3);
    assert_eq!(col(&t, "user_id"), ["1", "2", "1"]);
    assert_eq!(col(&t, "rating"), ["5", "3", "4"]);
    assert_eq!(col(&t, "gender"), ["M", "F", "M"]);
    assert_eq!(col(&t, "age"), ["24", "53", "24"]);
    assert_eq!(col(&t, "occupation"), ["technician", "other", "technician"]);
    // Latin-1 decoded; multi-genre list and first genre; no flag = "unknown".
    assert_eq!(col(&t, "title")[0], "Misérables, Les (1995)");
    assert_eq!(col(&t, "genres"), ["Action|Comedy", "unknown", "unknown"]);
    assert_eq!(col(&t, "genre"), ["Action", "unknown", "unknown"]);
    assert_eq!(col(&t, "year"), ["1995", "1996", "1996"]);
    assert_eq!(col(&t, "release_date")[1], "24-Jan-1997");
    assert_eq!(
        t.locate(1),
        format!("{}:2", d.path().join("u.data").display())
    );
}

#[test]
fn movielens_100k_malformed_inputs_name_file_and_line() {
    let d = tempfile::tempdir().unwrap();
    let src = || SourcePlan::MovieLens100k {
        dir: d.path().into(),
    };
    ml100k(d.path());
    write(d.path(), "u.data", b"1\t10\t5\t881250949\n2\t11\t3\n");
    assert_invalid(
        read(src(), false),
        &["u.data:2", "expected 4 fields", "found 3"],
    );
    write(d.path(), "u.data", b"1\t10\tfive\t881250949\n");
    assert_invalid(
        read(src(), false),
        &["u.data:1", "rating \"five\" is not a number"],
    );
    write(d.path(), "u.data", b"1\t10\t5\t88125x\n");
    assert_invalid(
        read(src(), false),
        &["u.data:1", "timestamp \"88125x\" is not an integer"],
    );
    write(d.path(), "u.data", b"1\t10\t5\t1\n\n3\t10\t5\t2\n");
    assert_invalid(
        read(src(), false),
        &["u.data:3", "user_id 3 has no row in", "u.user"],
    );
    ml100k(d.path());
    write(d.path(), "u.item", b"10|A (1995)|x||u|0|1|1\n");
    assert_invalid(read(src(), false), &["u.item:1", "expected 9 fields"]);
    write(d.path(), "u.item", b"10|A (1995)|x||u|0|1|2|0\n");
    assert_invalid(read(src(), false), &["u.item:1", "genre flag \"2\""]);
    std::fs::remove_file(d.path().join("u.user")).unwrap();
    assert_invalid(read(src(), false), &["cannot read", "u.user"]);
}

#[test]
fn movielens_1m_codes_become_words() {
    let d = tempfile::tempdir().unwrap();
    write(
        d.path(),
        "ratings.dat",
        b"1::1193::5::978300760\n2::661::3::978302109\n",
    );
    write(
        d.path(),
        "users.dat",
        b"1::F::1::10::48067\n2::M::56::16::70072\n",
    );
    write(
        d.path(),
        "movies.dat",
        b"1193::One Flew Over the Cuckoo's Nest (1975)::Drama\n661::James and the Giant Peach (1996)::Animation|Children's|Musical\n",
    );
    let (t, _) = read(
        SourcePlan::MovieLens1m {
            dir: d.path().into(),
        },
        false,
    )
    .unwrap();
    assert_eq!(col(&t, "age"), ["1", "56"]);
    assert_eq!(col(&t, "age_group"), ["Under 18", "56+"]);
    assert_eq!(col(&t, "occupation"), ["K-12 student", "self-employed"]);
    assert_eq!(col(&t, "occupation_id"), ["10", "16"]);
    assert_eq!(col(&t, "genre"), ["Drama", "Animation"]);
    assert_eq!(col(&t, "genres")[1], "Animation|Children's|Musical");
    assert_eq!(col(&t, "release_date"), ["1975", "1996"]);
    write(
        d.path(),
        "users.dat",
        b"1::F::7::10::48067\n2::M::56::16::70072\n",
    );
    assert_invalid(
        read(
            SourcePlan::MovieLens1m {
                dir: d.path().into(),
            },
            false,
        ),
        &["users.dat:1", "age code \"7\""],
    );
}

fn bx(dir: &Path) {
    write(
        dir,
        "BX-Book-Ratings.csv",
        b"\"User-ID\";\"ISBN\";\"Book-Rating\"\n\"1\";\"A1\";\"8\"\n\"2\";\"A2\";\"0\"\n\"1\";\"ZZ\";\"9\"\n\"2\";\"A1\";\"x\"\n",
    );
    write(
        dir,
        "BX-Users.csv",
        b"\"User-ID\";\"Location\";\"Age\"\n\"1\";\"n\xfcrnberg, bayern, germany\";\"NULL\"\n\"2\";\"porto, portugal\";\"33\"\n",
    );
    write(
        dir,
        "BX-Books.csv",
        b"\"ISBN\";\"Book-Title\";\"Book-Author\";\"Year-Of-Publication\";\"Publisher\";\"Image-URL-S\";\"Image-URL-M\";\"Image-URL-L\"\n\
\"A1\";\"The \"\"Best\"\" Book; Vol. 1\";\"Ann Author\";\"2001\";\"Pub\";\"s\";\"m\";\"l\"\n\
\"A2\";\"Plain\";\"Bob\";\"1999\";\"Pub2\";\"s\";\"m\";\"l\"\n\
\"A3\";\"DK Readers (Level 4)\\\";Michael Teitelbaum\";\"2000\";\"DK Publishing Inc\";\"s\";\"m\";\"l\"\n",
    );
}

#[test]
fn bookcrossing_malformed_lines_fail_or_are_skipped_and_counted() {
    let d = tempfile::tempdir().unwrap();
    bx(d.path());
    let src = || SourcePlan::Bookcrossing {
        dir: d.path().into(),
    };
    assert_invalid(
        read(src(), false),
        &["BX-Book-Ratings.csv:5", "rating \"x\"", "skip_bad_rows"],
    );
    let (t, stats) = read(src(), true).unwrap();
    // Ratings line 5 (bad rating) and the books line with a stray quote are skipped;
    // the rating of unknown ISBN ZZ is dropped at the join.
    assert_eq!(stats.skipped_bad_rows, 2, "{:?}", stats.skipped_examples);
    assert_eq!(stats.dropped_unjoined, 1);
    assert_eq!(t.rows, 2);
    assert_eq!(col(&t, "isbn"), ["A1", "A2"]);
    assert_eq!(col(&t, "title")[0], "The \"Best\" Book; Vol. 1");
    assert_eq!(col(&t, "location")[0], "nürnberg, bayern, germany");
    assert_eq!(col(&t, "age"), ["NULL", "33"]);
    assert_eq!(col(&t, "year"), ["2001", "1999"]);
    assert_eq!(col(&t, "author")[1], "Bob");
    assert_eq!(col(&t, "publisher")[0], "Pub");
    assert_eq!(col(&t, "rating"), ["8", "0"]);
}

fn csv_source(path: &Path, header: bool, columns: &[&str], latin1: bool) -> SourcePlan {
    SourcePlan::Csv(CsvSource {
        path: path.into(),
        sep: ",".into(),
        header,
        columns: columns.iter().map(|s| s.to_string()).collect(),
        latin1,
    })
}

#[test]
fn csv_header_quotes_and_declared_columns() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("clicks.csv");
    std::fs::write(&p, "user,item,clicked\r\nu1,\"a, b\",1\r\nu2,plain,0\r\n").unwrap();
    let (t, _) = read(csv_source(&p, true, &[], false), false).unwrap();
    assert_eq!(t.names, ["user", "item", "clicked"]);
    assert_eq!(col(&t, "item"), ["a, b", "plain"]);
    // Renaming through declared columns; no header.
    std::fs::write(&p, "u1::x::1\nu2::y::0\n").unwrap();
    let mut src = csv_source(&p, false, &["user", "item", "clicked"], false);
    if let SourcePlan::Csv(c) = &mut src {
        c.sep = "::".into();
    }
    let (t, _) = read(src, false).unwrap();
    assert_eq!(col(&t, "item"), ["x", "y"]);
}

#[test]
fn csv_bad_rows_and_encodings() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("c.csv");
    std::fs::write(&p, "a,b\n1,2\n3\n4,5\n").unwrap();
    assert_invalid(
        read(csv_source(&p, true, &[], false), false),
        &["c.csv:3", "expected 2 fields", "found 1", "\"3\""],
    );
    let (t, stats) = read(csv_source(&p, true, &[], false), true).unwrap();
    assert_eq!((t.rows, stats.skipped_bad_rows), (2, 1));
    std::fs::write(&p, b"a,b\n1,caf\xe9\n").unwrap();
    assert_invalid(
        read(csv_source(&p, true, &[], false), false),
        &["c.csv:2", "invalid UTF-8", "Latin-1"],
    );
    let (t, _) = read(csv_source(&p, true, &[], true), false).unwrap();
    assert_eq!(col(&t, "b"), ["café"]);
    std::fs::write(&p, "a,b\n1,\"open\n").unwrap();
    assert_invalid(
        read(csv_source(&p, true, &[], false), false),
        &["c.csv:2", "unterminated"],
    );
    std::fs::write(&p, "a,a\n1,2\n").unwrap();
    assert_invalid(read(csv_source(&p, true, &[], false), false), &["distinct"]);
    std::fs::write(&p, "a,b\n").unwrap();
    assert_invalid(
        read(csv_source(&p, true, &[], false), false),
        &["has no rows"],
    );
    assert_invalid(
        read(
            csv_source(&d.path().join("missing.csv"), true, &[], false),
            false,
        ),
        &["cannot read", "missing.csv"],
    );
}
