//! Data files for the readers of `src/data/sources`: a small well-formed
//! MovieLens 100K / 1M, Book-Crossing or generic CSV source, then one file
//! of it damaged (byte edits, truncation, non-UTF-8, huge fields, wrong
//! column counts, duplicate ids, stray quotes).

use std::path::{Path, PathBuf};

use clickprompt::plan::{CsvSource, SourcePlan};

use crate::mutate::mutate;
use crate::rng::Rng;

/// A source's files, as bytes, and the plan that reads them.
pub struct DataCase {
    pub kind: &'static str,
    pub files: Vec<(&'static str, Vec<u8>)>,
    pub damaged: &'static str,
    csv: Option<(String, bool, Vec<String>, bool)>,
}

const TITLES: &[&str] = &[
    "Toy Story (1995)",
    "Misérables, Les (1995)",
    "Amélie (é)",
    "x(ééé)",
    "(1999)",
    "Kolya (1996) ",
    "日本 (2000)",
    "Plain",
    "",
    "A (19é9)",
    "B (12345)",
    "🦀)",
    "Ten (1)",
];

fn ml100k(r: &mut Rng) -> Vec<(&'static str, Vec<u8>)> {
    let users = 1 + r.below(5);
    let items = 1 + r.below(5);
    let mut data = String::new();
    for _ in 0..1 + r.below(20) {
        data.push_str(&format!(
            "{}\t{}\t{}\t{}\n",
            1 + r.below(users),
            1 + r.below(items),
            1 + r.below(5),
            881250949 + r.below(1000)
        ));
    }
    let mut user = String::new();
    for u in 1..=users {
        user.push_str(&format!(
            "{u}|{}|{}|{}|{}\n",
            10 + r.below(60),
            r.pick(&["M", "F"]),
            r.pick(&["other", "writer", "é"]),
            10000 + r.below(9999)
        ));
    }
    let mut item = Vec::new();
    for i in 1..=items {
        let title = r.pick(TITLES);
        let flags: Vec<&str> = (0..4)
            .map(|_| if r.one_in(2) { "1" } else { "0" })
            .collect();
        let mut line =
            format!("{i}|{title}|01-Jan-1995||http://x|{}\n", flags.join("|")).into_bytes();
        if r.one_in(4) {
            // MovieLens 100K is Latin-1: a raw 0xe9 is `é`.
            line.splice(2..2, b"\xe9".iter().copied());
        }
        item.extend(line);
    }
    vec![
        ("u.data", data.into_bytes()),
        ("u.user", user.into_bytes()),
        ("u.item", item),
        (
            "u.genre",
            b"unknown|0\nAction|1\nComedy|2\nDrama|3\n".to_vec(),
        ),
    ]
}

fn ml1m(r: &mut Rng) -> Vec<(&'static str, Vec<u8>)> {
    let users = 1 + r.below(5);
    let items = 1 + r.below(5);
    let mut ratings = String::new();
    for _ in 0..1 + r.below(20) {
        ratings.push_str(&format!(
            "{}::{}::{}::{}\n",
            1 + r.below(users),
            1 + r.below(items),
            1 + r.below(5),
            978300760 + r.below(1000)
        ));
    }
    let mut users_s = String::new();
    for u in 1..=users {
        users_s.push_str(&format!(
            "{u}::{}::{}::{}::48067\n",
            r.pick(&["M", "F"]),
            r.pick(&["1", "18", "25", "56", "7"]),
            r.below(22)
        ));
    }
    let mut movies = String::new();
    for i in 1..=items {
        movies.push_str(&format!(
            "{i}::{}::{}\n",
            r.pick(TITLES),
            r.pick(&["Drama", "Animation|Children's", "", "|"])
        ));
    }
    vec![
        ("ratings.dat", ratings.into_bytes()),
        ("users.dat", users_s.into_bytes()),
        ("movies.dat", movies.into_bytes()),
    ]
}

fn bx(r: &mut Rng) -> Vec<(&'static str, Vec<u8>)> {
    let mut ratings = String::from("\"User-ID\";\"ISBN\";\"Book-Rating\"\n");
    for _ in 0..1 + r.below(20) {
        ratings.push_str(&format!(
            "\"{}\";\"A{}\";\"{}\"\n",
            1 + r.below(4),
            r.below(4),
            r.below(11)
        ));
    }
    let mut users = String::from("\"User-ID\";\"Location\";\"Age\"\n");
    for u in 1..=4 {
        users.push_str(&format!(
            "\"{u}\";\"porto, portugal\";\"{}\"\n",
            r.pick(&["NULL", "33", "x"])
        ));
    }
    let mut books = String::from("\"ISBN\";\"Book-Title\";\"Book-Author\";\"Year-Of-Publication\";\"Publisher\";\"Image-URL-S\";\"Image-URL-M\";\"Image-URL-L\"\n");
    for b in 0..4 {
        books.push_str(&format!(
            "\"A{b}\";\"{}\";\"Ann\";\"{}\";\"Pub\";\"s\";\"m\";\"l\"\n",
            r.pick(&["The \"\"Best\"\" Book; Vol. 1", "Plain", "x"]),
            r.pick(&["2001", "0", "x"])
        ));
    }
    vec![
        ("BX-Book-Ratings.csv", ratings.into_bytes()),
        ("BX-Users.csv", users.into_bytes()),
        ("BX-Books.csv", books.into_bytes()),
    ]
}

/// A CSV source's files and its declaration: separator, header, declared
/// column names, and whether quoting is on.
type CsvCase = (
    Vec<(&'static str, Vec<u8>)>,
    (String, bool, Vec<String>, bool),
);

fn csv(r: &mut Rng) -> CsvCase {
    let sep = r.pick(&[",", ";", "\t", "::", "|"]).to_string();
    let header = !r.one_in(4);
    let ncol = 1 + r.below(5);
    let names: Vec<String> = (0..ncol).map(|i| format!("c{i}")).collect();
    let mut text = String::new();
    if header {
        text.push_str(&names.join(&sep));
        text.push('\n');
    }
    for _ in 0..1 + r.below(20) {
        let row: Vec<String> = (0..ncol)
            .map(|_| match r.below(4) {
                0 => format!("\"a{sep}b \"\"q\"\"\""),
                1 => "é".to_string(),
                _ => format!("{}", r.below(100)),
            })
            .collect();
        text.push_str(&row.join(&sep));
        text.push_str(if r.one_in(5) { "\r\n" } else { "\n" });
    }
    let declared = if header && r.one_in(2) {
        Vec::new()
    } else {
        names
    };
    (
        vec![("rows.csv", text.into_bytes())],
        (sep, header, declared, r.one_in(3)),
    )
}

/// Damage aimed at delimited rows (on top of the generic byte edits).
fn damage(r: &mut Rng, bytes: &mut Vec<u8>, others: &[Vec<u8>]) {
    match r.below(8) {
        0 => {
            let at = r.below(bytes.len() + 1);
            bytes.truncate(at);
        }
        1 => {
            // A huge field: up to a mebibyte on one line. (Larger inputs
            // only measure reading speed, ~100 MB/s, not a pathology.)
            let at = r.below(bytes.len() + 1);
            let n = if r.one_in(4) {
                1 << 20
            } else {
                1 + r.below(200_000)
            };
            bytes.splice(at..at, std::iter::repeat_n(*r.pick(b"x\"9("), n));
        }
        2 => {
            // Many short lines.
            let line = b"1\t1\t1\t1\n";
            let n = 1 + r.below(100_000);
            for _ in 0..n {
                bytes.extend_from_slice(line);
            }
        }
        _ => {
            let extra = [
                "\t", "|", "::", ";", "\"", "\"\"", "\n", "\r", "\u{feff}", "é", ")",
            ];
            *bytes = mutate(r, bytes, others, &extra);
        }
    }
}

pub fn case(r: &mut Rng) -> DataCase {
    let (kind, mut files, csv) = match r.below(4) {
        0 => ("movielens_100k", ml100k(r), None),
        1 => ("movielens_1m", ml1m(r), None),
        2 => ("bookcrossing", bx(r), None),
        _ => {
            let (f, c) = csv(r);
            ("csv", f, Some(c))
        }
    };
    let others: Vec<Vec<u8>> = files.iter().map(|f| f.1.clone()).collect();
    let which = r.below(files.len());
    damage(r, &mut files[which].1, &others);
    if r.one_in(4) {
        let second = r.below(files.len());
        damage(r, &mut files[second].1, &others);
    }
    let damaged = files[which].0;
    DataCase {
        kind,
        files,
        damaged,
        csv,
    }
}

impl DataCase {
    pub fn write(&self, dir: &Path) -> std::io::Result<()> {
        for (name, bytes) in &self.files {
            std::fs::write(dir.join(name), bytes)?;
        }
        Ok(())
    }

    pub fn source(&self, dir: &Path) -> SourcePlan {
        let dir: PathBuf = dir.to_path_buf();
        match (self.kind, &self.csv) {
            ("movielens_100k", _) => SourcePlan::MovieLens100k { dir },
            ("movielens_1m", _) => SourcePlan::MovieLens1m { dir },
            ("bookcrossing", _) => SourcePlan::Bookcrossing { dir },
            (_, Some((sep, header, columns, latin1))) => SourcePlan::Csv(CsvSource {
                path: dir.join("rows.csv"),
                sep: sep.clone(),
                header: *header,
                columns: columns.clone(),
                latin1: *latin1,
            }),
            _ => SourcePlan::MovieLens100k { dir },
        }
    }

    /// The files as one reproducible blob: `== NAME ==` headers.
    pub fn dump(&self) -> Vec<u8> {
        let mut out = format!("kind {} csv {:?}\n", self.kind, self.csv).into_bytes();
        for (name, bytes) in &self.files {
            out.extend(format!("== {name} ({} bytes) ==\n", bytes.len()).bytes());
            out.extend(bytes);
            out.push(b'\n');
        }
        out
    }
}
