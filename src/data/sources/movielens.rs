//! MovieLens 100K (`u.data`, `u.user`, `u.item`, `u.genre`) and 1M
//! (`ratings.dat`, `users.dat`, `movies.dat`), joined into one row per rating.

use std::collections::HashMap;
use std::path::Path;

use anyhow::Result;

use super::{join, title_year, AttrTable, OnMissing, SourceStats};
use crate::data::raw::{decode, lines, read_bytes, snippet, ColumnBuilder, RawTable, RowOrigin};
use crate::error::invalid;

/// ML-1M README: age codes.
const ML1M_AGES: [(&str, &str); 7] = [
    ("1", "Under 18"),
    ("18", "18-24"),
    ("25", "25-34"),
    ("35", "35-44"),
    ("45", "45-49"),
    ("50", "50-55"),
    ("56", "56+"),
];

/// ML-1M README: occupation codes 0–20.
const ML1M_OCCUPATIONS: [&str; 21] = [
    "other",
    "academic/educator",
    "artist",
    "clerical/admin",
    "college/grad student",
    "customer service",
    "doctor/health care",
    "executive/managerial",
    "farmer",
    "homemaker",
    "K-12 student",
    "lawyer",
    "programmer",
    "retired",
    "sales/marketing",
    "scientist",
    "self-employed",
    "technician/engineer",
    "tradesman/craftsman",
    "unemployed",
    "writer",
];

fn bad(path: &Path, lineno: u32, line: &str, why: impl std::fmt::Display) -> anyhow::Error {
    invalid(format!(
        "{}:{lineno}: {why}: {}",
        path.display(),
        snippet(line)
    ))
}

fn check_int(path: &Path, lineno: u32, line: &str, what: &str, v: &str) -> Result<()> {
    if v.parse::<i64>().is_err() {
        return Err(bad(
            path,
            lineno,
            line,
            format!("{what} \"{v}\" is not an integer"),
        ));
    }
    Ok(())
}

fn check_number(path: &Path, lineno: u32, line: &str, what: &str, v: &str) -> Result<()> {
    match v.parse::<f64>() {
        Ok(x) if x.is_finite() => Ok(()),
        _ => Err(bad(
            path,
            lineno,
            line,
            format!("{what} \"{v}\" is not a number"),
        )),
    }
}

/// Splits into exactly `N` fields on `sep`.
fn fields<'a, const N: usize>(
    line: &'a str,
    sep: &str,
    path: &Path,
    lineno: u32,
    names: &str,
) -> Result<[&'a str; N]> {
    let mut out = [""; N];
    let mut n = 0;
    for f in line.split(sep) {
        if n < N {
            out[n] = f;
        }
        n += 1;
    }
    if n != N {
        return Err(bad(
            path,
            lineno,
            line,
            format!("expected {N} fields ({names}) separated by {sep:?}, found {n}"),
        ));
    }
    Ok(out)
}

/// Ratings: `user item rating timestamp` with separator `sep`.
fn read_ratings(path: &Path, sep: &str, source: String) -> Result<RawTable> {
    let bytes = read_bytes(path)?;
    let approx = bytes.len() / 20;
    let mut user = ColumnBuilder::with_capacity(approx);
    let mut item = ColumnBuilder::with_capacity(approx);
    let mut rating = ColumnBuilder::with_capacity(approx);
    let mut ts = ColumnBuilder::with_capacity(approx);
    let mut line_nos = Vec::with_capacity(approx);
    for (no, raw) in lines(&bytes) {
        let line = decode(raw, true, path, no)?;
        let [u, i, r, t] = fields::<4>(&line, sep, path, no, "user, item, rating, timestamp")?;
        check_number(path, no, &line, "rating", r)?;
        check_int(path, no, &line, "timestamp", t)?;
        user.push(u);
        item.push(i);
        rating.push(r);
        ts.push(t);
        line_nos.push(no);
    }
    let mut table = RawTable {
        source,
        origin: Some(RowOrigin {
            file: path.to_path_buf(),
            lines: line_nos,
        }),
        ..RawTable::default()
    };
    table.push_column("user_id", user.finish());
    table.push_column("item_id", item.finish());
    table.push_column("rating", rating.finish());
    table.push_column("timestamp", ts.finish());
    Ok(table)
}

fn attr_table(path: &Path, names: Vec<&'static str>) -> (AttrTable, Vec<ColumnBuilder>) {
    let cols = names.iter().map(|_| ColumnBuilder::default()).collect();
    (
        AttrTable {
            file: path.to_path_buf(),
            index: HashMap::new(),
            names,
            columns: Vec::new(),
        },
        cols,
    )
}

fn add_key(t: &mut AttrTable, key: &str, path: &Path, no: u32, line: &str) -> Result<()> {
    let row = t.index.len() as u32;
    if t.index.insert(key.to_string(), row).is_some() {
        return Err(bad(path, no, line, format!("id {key} appears twice")));
    }
    Ok(())
}

pub fn read_100k(dir: &Path) -> Result<(RawTable, SourceStats)> {
    let source = format!("movielens_100k({})", dir.display());
    let mut table = read_ratings(&dir.join("u.data"), "\t", source)?;
    let (users, items) = side_tables_100k(dir)?;
    join(&mut table, "user_id", users, OnMissing::Error)?;
    join(&mut table, "item_id", items, OnMissing::Error)?;
    Ok((table, SourceStats::default()))
}

/// The user and item attribute tables of MovieLens 100K (`u.user`, `u.item`
/// with the genre names of `u.genre`), keyed by user and item id.
pub fn side_tables_100k(dir: &Path) -> Result<(AttrTable, AttrTable)> {
    // u.genre: `name|index`, gives the names of the 19 flag columns.
    let gpath = dir.join("u.genre");
    let gbytes = read_bytes(&gpath)?;
    let mut genre_names: Vec<(usize, String)> = Vec::new();
    for (no, raw) in lines(&gbytes) {
        let line = decode(raw, true, &gpath, no)?;
        let [name, idx] = fields::<2>(&line, "|", &gpath, no, "name, index")?;
        let idx: usize = idx
            .trim()
            .parse()
            .map_err(|_| bad(&gpath, no, &line, "genre index is not an integer"))?;
        genre_names.push((idx, name.to_string()));
    }
    genre_names.sort();
    if genre_names
        .iter()
        .enumerate()
        .any(|(i, (idx, _))| *idx != i)
        || genre_names.is_empty()
    {
        return Err(invalid(format!(
            "{}: genre indices must be 0, 1, 2, … without gaps",
            gpath.display()
        )));
    }
    let genre_names: Vec<String> = genre_names.into_iter().map(|(_, n)| n).collect();

    // u.user: `id|age|gender|occupation|zip`.
    let upath = dir.join("u.user");
    let ubytes = read_bytes(&upath)?;
    let (mut users, mut ucols) = attr_table(&upath, vec!["age", "gender", "occupation", "zip"]);
    for (no, raw) in lines(&ubytes) {
        let line = decode(raw, true, &upath, no)?;
        let [id, age, gender, occ, zip] =
            fields::<5>(&line, "|", &upath, no, "id, age, gender, occupation, zip")?;
        check_number(&upath, no, &line, "age", age)?;
        add_key(&mut users, id, &upath, no, &line)?;
        for (c, v) in ucols.iter_mut().zip([age, gender, occ, zip]) {
            c.push(v);
        }
    }
    users.columns = ucols.into_iter().map(ColumnBuilder::finish).collect();

    // u.item: `id|title|release date|video release date|url|flags…` (Latin-1).
    let ipath = dir.join("u.item");
    let ibytes = read_bytes(&ipath)?;
    let (mut items, mut icols) = attr_table(
        &ipath,
        vec!["title", "release_date", "year", "genres", "genre"],
    );
    let n_fields = 5 + genre_names.len();
    let mut genres = String::new();
    for (no, raw) in lines(&ibytes) {
        let line = decode(raw, true, &ipath, no)?;
        let parts: Vec<&str> = line.split('|').collect();
        if parts.len() != n_fields {
            return Err(bad(
                &ipath,
                no,
                &line,
                format!(
                    "expected {n_fields} fields (id, title, release date, video date, url, {} genre flags), found {}",
                    genre_names.len(),
                    parts.len()
                ),
            ));
        }
        genres.clear();
        let mut first = None;
        for (g, flag) in parts[5..].iter().enumerate() {
            match *flag {
                "1" => {
                    if !genres.is_empty() {
                        genres.push('|');
                    }
                    genres.push_str(&genre_names[g]);
                    first.get_or_insert(g);
                }
                "0" => {}
                other => {
                    return Err(bad(
                        &ipath,
                        no,
                        &line,
                        format!("genre flag \"{other}\" is not 0 or 1"),
                    ))
                }
            }
        }
        // No flag at all: the "unknown" genre (index 0 of u.genre).
        let first = first.unwrap_or(0);
        if genres.is_empty() {
            genres.push_str(&genre_names[0]);
        }
        add_key(&mut items, parts[0], &ipath, no, &line)?;
        let title = parts[1];
        for (c, v) in icols.iter_mut().zip([
            title,
            parts[2],
            title_year(title),
            &genres,
            &genre_names[first],
        ]) {
            c.push(v);
        }
    }
    items.columns = icols.into_iter().map(ColumnBuilder::finish).collect();
    Ok((users, items))
}

pub fn read_1m(dir: &Path) -> Result<(RawTable, SourceStats)> {
    let source = format!("movielens_1m({})", dir.display());
    let mut table = read_ratings(&dir.join("ratings.dat"), "::", source)?;
    let (users, items) = side_tables_1m(dir)?;
    join(&mut table, "user_id", users, OnMissing::Error)?;
    join(&mut table, "item_id", items, OnMissing::Error)?;
    Ok((table, SourceStats::default()))
}

/// The user and item attribute tables of MovieLens 1M (`users.dat`,
/// `movies.dat`), keyed by user and movie id.
pub fn side_tables_1m(dir: &Path) -> Result<(AttrTable, AttrTable)> {
    // users.dat: `UserID::Gender::Age::Occupation::Zip-code`.
    let upath = dir.join("users.dat");
    let ubytes = read_bytes(&upath)?;
    let (mut users, mut ucols) = attr_table(
        &upath,
        vec![
            "gender",
            "age",
            "age_group",
            "occupation",
            "occupation_id",
            "zip",
        ],
    );
    for (no, raw) in lines(&ubytes) {
        let line = decode(raw, true, &upath, no)?;
        let [id, gender, age, occ, zip] = fields::<5>(
            &line,
            "::",
            &upath,
            no,
            "UserID, Gender, Age, Occupation, Zip-code",
        )?;
        let age_group = ML1M_AGES
            .iter()
            .find(|(code, _)| *code == age)
            .map(|(_, words)| *words)
            .ok_or_else(|| {
                bad(
                    &upath,
                    no,
                    &line,
                    format!("age code \"{age}\" is not one of 1, 18, 25, 35, 45, 50, 56"),
                )
            })?;
        let occ_words = occ
            .parse::<usize>()
            .ok()
            .and_then(|i| ML1M_OCCUPATIONS.get(i))
            .ok_or_else(|| {
                bad(
                    &upath,
                    no,
                    &line,
                    format!("occupation code \"{occ}\" is not 0–20"),
                )
            })?;
        add_key(&mut users, id, &upath, no, &line)?;
        for (c, v) in ucols
            .iter_mut()
            .zip([gender, age, age_group, occ_words, occ, zip])
        {
            c.push(v);
        }
    }
    users.columns = ucols.into_iter().map(ColumnBuilder::finish).collect();

    // movies.dat: `MovieID::Title::Genres` (genres `|`-separated).
    let mpath = dir.join("movies.dat");
    let mbytes = read_bytes(&mpath)?;
    let (mut items, mut icols) = attr_table(
        &mpath,
        vec!["title", "release_date", "year", "genres", "genre"],
    );
    for (no, raw) in lines(&mbytes) {
        let line = decode(raw, true, &mpath, no)?;
        let [id, title, genres] = fields::<3>(&line, "::", &mpath, no, "MovieID, Title, Genres")?;
        add_key(&mut items, id, &mpath, no, &line)?;
        let first = genres.split('|').next().unwrap_or("");
        let year = title_year(title);
        for (c, v) in icols.iter_mut().zip([title, year, year, genres, first]) {
            c.push(v);
        }
    }
    items.columns = icols.into_iter().map(ColumnBuilder::finish).collect();
    Ok((users, items))
}
