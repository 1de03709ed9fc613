//! What `predict` reads: raw rows in each source's format give the same
//! strings training read from the same lines, and encode to the same ids
//! and numbers as the training pipeline's encoding of those rows.

use std::io::Cursor;
use std::path::Path;

use clickprompt::data::encode::encode;
use clickprompt::data::input::{InputFormat, Next, RowReader};
use clickprompt::data::raw::{ColumnBuilder, RawTable};
use clickprompt::data::sources;
use clickprompt::data::vocab::{RowEncoder, Vocabularies};
use clickprompt::data::{Column, DatasetMeta};
use clickprompt::plan::*;

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    std::fs::write(dir.join(name), bytes).unwrap();
}

fn dataset(source: SourcePlan) -> DatasetPlan {
    DatasetPlan::new(
        "d",
        source,
        LabelRule::Threshold {
            column: "rating".into(),
            op: CmpOp::Gt,
            value: 3.0,
        },
        SplitPlan::Random {
            seed: 1,
            ratios: [8.0, 1.0, 1.0],
        },
    )
}

/// Every row `input` yields: Ok(values) or Err(message).
fn read_all(
    input: &[u8],
    source: &SourcePlan,
    format: InputFormat,
    columns: &[&str],
) -> Vec<Result<Vec<String>, String>> {
    let mut r =
        RowReader::open(Cursor::new(input.to_vec()), "in", source, format, columns).unwrap();
    let mut out = Vec::new();
    let mut values = Vec::new();
    loop {
        match r.next(&mut values).unwrap() {
            Next::End => return out,
            Next::Row { .. } => out.push(Ok(values.clone())),
            Next::Bad { message, .. } => out.push(Err(message)),
        }
    }
}

fn table_rows(t: &RawTable, columns: &[&str]) -> Vec<Vec<String>> {
    (0..t.rows)
        .map(|r| {
            columns
                .iter()
                .map(|c| t.column(c).unwrap().value(r).to_string())
                .collect()
        })
        .collect()
}

const UDATA: &[u8] = b"1\t10\t5\t881250949\n2\t11\t3\t881250950\n1\t11\t4\t881250940\n";

#[test]
fn movielens_lines_are_joined_with_the_attribute_files() {
    let d = tempfile::tempdir().unwrap();
    write(d.path(), "u.data", UDATA);
    write(
        d.path(),
        "u.user",
        b"1|24|M|technician|85711\n2|53|F|other|94043\n",
    );
    write(
        d.path(),
        "u.item",
        b"10|Mis\xe9rables, Les (1995)|01-Jan-1995||http://x|0|1|1|0\n11|Kolya (1996)|24-Jan-1997||http://y|0|0|0|0\n",
    );
    write(
        d.path(),
        "u.genre",
        b"unknown|0\nAction|1\nComedy|2\nDrama|3\n",
    );
    let source = SourcePlan::MovieLens100k {
        dir: d.path().into(),
    };
    let cols = [
        "user_id", "gender", "age", "item_id", "title", "genres", "genre", "rating",
    ];
    let (table, _) = sources::read(&dataset(source.clone())).unwrap();
    let got: Vec<Vec<String>> = read_all(UDATA, &source, InputFormat::Source, &cols)
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(got, table_rows(&table, &cols));

    // Rating and timestamp may be left out unless a field reads them; an
    // unknown user is a bad row naming the attribute file.
    let lines = b"2\t10\n9\t10\t4\t1\n1\t10\n";
    let got = read_all(lines, &source, InputFormat::Source, &cols[..7]);
    assert_eq!(got[0].as_ref().unwrap()[1], "F");
    let bad = got[1].as_ref().unwrap_err();
    assert!(bad.starts_with("in:2: user_id 9 has no row in"), "{bad}");
    assert!(bad.contains("u.user"), "{bad}");
    assert!(got[2].is_ok());
    let got = read_all(b"2\t10\n", &source, InputFormat::Source, &cols);
    let bad = got[0].as_ref().unwrap_err();
    assert!(bad.contains("reads 'rating'"), "{bad}");
    let got = read_all(b"2\n", &source, InputFormat::Source, &cols);
    assert!(
        got[0]
            .as_ref()
            .unwrap_err()
            .contains("expected 2 to 4 fields"),
        "{got:?}"
    );

    // A column the source does not have is an error before any row.
    let err = RowReader::open(
        Cursor::new(UDATA.to_vec()),
        "in",
        &source,
        InputFormat::Source,
        &["user_id", "shoe_size"],
    )
    .err()
    .unwrap();
    assert!(format!("{err}").contains("column 'shoe_size'"), "{err}");
}

#[test]
fn bookcrossing_lines_are_quoted_and_joined() {
    let d = tempfile::tempdir().unwrap();
    let ratings: &[u8] =
        b"\"User-ID\";\"ISBN\";\"Book-Rating\"\n\"1\";\"A1\";\"8\"\n\"2\";\"A2\";\"0\"\n\"1\";\"ZZ\";\"9\"\n";
    write(d.path(), "BX-Book-Ratings.csv", ratings);
    write(
        d.path(),
        "BX-Users.csv",
        b"\"User-ID\";\"Location\";\"Age\"\n\"1\";\"n\xfcrnberg, bayern, germany\";\"NULL\"\n\"2\";\"porto, portugal\";\"33\"\n",
    );
    write(
        d.path(),
        "BX-Books.csv",
        b"\"ISBN\";\"Book-Title\";\"Book-Author\";\"Year-Of-Publication\";\"Publisher\";\"Image-URL-S\";\"Image-URL-M\";\"Image-URL-L\"\n\
\"A1\";\"The \"\"Best\"\" Book; Vol. 1\";\"Ann Author\";\"2001\";\"Pub\";\"s\";\"m\";\"l\"\n\
\"A2\";\"Plain\";\"Bob\";\"1999\";\"Pub2\";\"s\";\"m\";\"l\"\n",
    );
    let source = SourcePlan::Bookcrossing {
        dir: d.path().into(),
    };
    let cols = [
        "user_id", "location", "age", "isbn", "title", "author", "year",
    ];
    let (table, _) = sources::read(&dataset(source.clone())).unwrap();
    let got = read_all(ratings, &source, InputFormat::Source, &cols);
    assert_eq!(got.len(), 3, "the header line is skipped");
    let ok: Vec<Vec<String>> = got[..2].iter().map(|r| r.clone().unwrap()).collect();
    assert_eq!(ok, table_rows(&table, &cols));
    assert!(got[2]
        .as_ref()
        .unwrap_err()
        .contains("isbn ZZ has no row in"));
    // Without the header and the rating.
    let got = read_all(b"\"2\";\"A1\"\n", &source, InputFormat::Source, &cols);
    assert_eq!(got[0].as_ref().unwrap()[4], "The \"Best\" Book; Vol. 1");
}

#[test]
fn csv_sources_keep_their_own_layout() {
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("x.csv");
    let body: &[u8] = b"7::caf\xe9::3\n8::\"a::b\"::4\n";
    write(d.path(), "x.csv", body);
    let source = SourcePlan::Csv(CsvSource {
        path: path.clone(),
        sep: "::".into(),
        header: false,
        columns: vec!["id".into(), "name".into(), "rating".into()],
        latin1: true,
    });
    let (table, _) = sources::read(&dataset(source.clone())).unwrap();
    let got: Vec<Vec<String>> = read_all(body, &source, InputFormat::Source, &["name", "id"])
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(got, table_rows(&table, &["name", "id"]));
    assert_eq!(got[0][0], "café");

    // csv / tsv with a header: columns by name, extra ones ignored, BOM and CRLF tolerated.
    let got = read_all(
        b"\xEF\xBB\xBFname,extra,id\r\n\"x, y\",1,2\r\n\r\nz,1\r\n",
        &source,
        InputFormat::Csv,
        &["id", "name"],
    );
    assert_eq!(got[0], Ok(vec!["2".to_string(), "x, y".to_string()]));
    let bad = got[1].as_ref().unwrap_err();
    assert!(bad.starts_with("in:4: expected 3 fields"), "{bad}");
    let got = read_all(b"id\tname\n5\tq\n", &source, InputFormat::Tsv, &["name"]);
    assert_eq!(got, vec![Ok(vec!["q".to_string()])]);
    let got = read_all(b"id,name\n5,\xff\n", &source, InputFormat::Csv, &["name"]);
    assert!(
        got[0].as_ref().unwrap_err().contains("invalid UTF-8"),
        "{got:?}"
    );
}

fn field(name: &str, kind: FieldKind) -> FieldPlan {
    FieldPlan::new(name, name, kind)
}

/// A table exercising every encoding rule: value maps, rare values (OOV
/// under min_count 2), multi cells with spaces, repeats, empty cells and
/// unknown elements, missing and spaced numbers, bucket edges.
fn table() -> RawTable {
    let rows: Vec<[&str; 5]> = vec![
        ["a", "x|y", "10", " 3.5", "M"],
        ["a", "y | x | y", "20", "4", "F"],
        ["b", "", "NA", "", "M"],
        ["b", "z", "30", "7", "F"],
        ["c", "x", "18", "1e1", "M"],
        ["a", "x|q|w", "45", "2", "X"],
        ["d", "y|unseen", "17.9", "na", "F"],
        ["b", "x", "", "5", "M"],
    ];
    let names = ["user", "tags", "age", "score", "sex"];
    let mut t = RawTable::default();
    for (c, name) in names.iter().enumerate() {
        let mut b = ColumnBuilder::default();
        for r in &rows {
            b.push(r[c]);
        }
        t.push_column(name, b.finish());
    }
    t
}

#[test]
fn row_encoder_matches_the_training_encoding() {
    let t = table();
    let mut sex = field("sex", FieldKind::Category);
    sex.map = vec![("M".into(), "male".into()), ("F".into(), "female".into())];
    let fields = vec![
        field("user", FieldKind::Id),
        field("tags", FieldKind::Multi { sep: "|".into() }),
        field(
            "age",
            FieldKind::Bucket {
                edges: vec![18.0, 30.0],
            },
        ),
        field("score", FieldKind::Number),
        sex,
    ];
    let splits = [vec![0, 1, 2, 3, 4], vec![5, 6], vec![7]];
    let enc = encode(&t, &fields, &splits, 2, "d").unwrap();
    let mut plan = ExperimentPlan::new(
        "e",
        dataset(SourcePlan::Csv(CsvSource {
            path: "unused".into(),
            sep: ",".into(),
            header: true,
            columns: vec![],
            latin1: false,
        })),
    );
    std::sync::Arc::make_mut(&mut plan.dataset).fields = fields;
    let meta = DatasetMeta {
        fields: enc.meta.clone(),
        text: None,
    };
    let vocab = Vocabularies::new(&plan, &meta, None).unwrap();
    // Through the file format and back.
    let vocab = Vocabularies::from_yaml(&vocab.to_yaml().unwrap(), Path::new("v.yaml")).unwrap();
    assert_eq!(vocab.meta(), meta);

    let mut encoder = RowEncoder::new(&vocab).unwrap();
    for (s, rows) in splits.iter().enumerate() {
        for &r in rows {
            let values: Vec<&str> = vocab
                .columns()
                .iter()
                .map(|c| t.column(c).unwrap().value(r as usize))
                .collect();
            encoder.push(&values).unwrap();
        }
        let split = encoder.take_split();
        assert_eq!(split.columns, enc.columns[s], "split {s}");
    }
    // The user `d` and the tag `unseen` appear only outside training: OOV.
    let Column::Single(users) = &enc.columns[1][0] else {
        panic!()
    };
    assert_eq!(users[1], 1);

    // A number field holding text is refused, and nothing is added.
    let err = encoder.push(&["a", "x", "20", "lots", "M"]).unwrap_err();
    assert_eq!(err, "field score needs a number, got \"lots\"");
    assert_eq!(encoder.rows(), 0);
    // More elements than the training width keep the first ones.
    encoder.push(&["a", "x|y|z|q|w|v", "20", "1", "M"]).unwrap();
    let batch = encoder.take_batch(&candle_core::Device::Cpu).unwrap();
    assert_eq!(batch.multi[0].dims(), &[1, 3]);
    assert_eq!(batch.single.as_ref().unwrap().dims(), &[1, 3]);
    assert_eq!(batch.numbers.as_ref().unwrap().dims(), &[1, 1]);
}
