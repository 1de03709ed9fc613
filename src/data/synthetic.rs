//! A built-in generator of click data with a planted signal of two kinds, so
//! that experiments can show what ids learn, what text adds, and what
//! ClickPrompt's alignment buys — offline and in seconds.
//!
//! # The generating process
//!
//! Parameters (`SyntheticSource`): `users` U, `items` I, `rows` N, `seed`,
//! `themes` T (1 ≤ T ≤ 12), `semantic` s, `collaborative` c, `noise` σ.
//! One `StdRng` seeded with `seed` drives every draw, in the order below, so
//! the same parameters always give the same table.
//!
//! 1. **Items** j = 1…I, in order: a theme θⱼ uniform over the first T of
//!    [`THEMES`] (space, romance, horror, cooking, sports, war, sea, western,
//!    music, crime, fantasy, wildlife); a hidden group γⱼ uniform over
//!    [`ITEM_GROUPS`] groups, independent of the theme; a bias bⱼ ~ N(0,1);
//!    a title `"<opener> <Word> <Word>"` — an opener from [`OPENERS`] and two
//!    distinct words of θⱼ's word list, capitalised (`Legend of the Rocket
//!    Nebula`); its `genre` is θⱼ's genre word (`space`). Popularity: the
//!    items are put in a random order and the k-th gets weight 1/k^1.1
//!    (Zipf), so a few items are everywhere and most are rare.
//! 2. **Users** u = 1…U, in order: a taste τᵤ uniform over the T themes; a
//!    bias bᵤ ~ N(0,1); affinities aᵤ,g ~ N(0,1) for each item group g; a
//!    stated taste `user_taste` = `"<word> and <word>"`, two distinct words
//!    of τᵤ's list drawn independently of any title (`galaxy and comet`);
//!    activity weight 1/k^0.5 over a random order of users.
//! 3. **Rows** r = 0…N−1, in order: a user u by activity; with probability ½
//!    an item of the user's taste theme (by popularity within the theme),
//!    otherwise any item (by popularity); then
//!    * semantic term   S = s · (+1 if θⱼ = τᵤ else −1),
//!    * collaborative   C = c · (½bᵤ + ½bⱼ + aᵤ,γⱼ) / √1.5 (unit variance
//!      before scaling; only the ids reveal bᵤ, bⱼ, aᵤ and γⱼ),
//!    * y = S + C + σ·ε with ε standard logistic (ln(v/(1−v)), v uniform).
//!
//!    `label` = 1 if y > 0 else 0 — i.e. P(click) = sigmoid((S + C)/σ);
//!    `rating` = 5 if y > 1.5, 4 if y > 0, 3 if y > −1, 2 if y > −2, else 1,
//!    so `rating > 3` is the same label; `timestamp` = 1 000 000 000 + 60·r,
//!    strictly increasing, so a by-time split is a split in generation order.
//!
//! The semantic term depends only on whether the meaning of the item's words
//! matches the user's stated taste, so it holds for items seen once; an
//! id-only model can learn it only per item (from that item's clicks) or from
//! `genre`, while a language model can read it from the title words. The
//! collaborative term is invisible in the text.
//!
//! Columns: `user_id, item_id, user_taste, title, genre, label, rating, timestamp`
//! (ids are `1…U` and `1…I` as text).

use anyhow::Result;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;

use super::raw::{ColumnBuilder, RawTable, StrColumn};
use crate::error::invalid;
use crate::plan::SyntheticSource;

/// Number of hidden item groups of the collaborative signal.
pub const ITEM_GROUPS: usize = 8;

pub struct Theme {
    pub genre: &'static str,
    pub words: [&'static str; 12],
}

pub const THEMES: [Theme; 12] = [
    Theme {
        genre: "space",
        words: [
            "galaxy",
            "rocket",
            "planet",
            "astronaut",
            "orbit",
            "nebula",
            "alien",
            "comet",
            "spaceship",
            "moon",
            "cosmos",
            "satellite",
        ],
    },
    Theme {
        genre: "romance",
        words: [
            "love",
            "kiss",
            "wedding",
            "heart",
            "romance",
            "sweetheart",
            "valentine",
            "bride",
            "passion",
            "darling",
            "honeymoon",
            "lover",
        ],
    },
    Theme {
        genre: "horror",
        words: [
            "ghost",
            "haunted",
            "blood",
            "zombie",
            "nightmare",
            "grave",
            "vampire",
            "scream",
            "curse",
            "monster",
            "demon",
            "corpse",
        ],
    },
    Theme {
        genre: "cooking",
        words: [
            "kitchen", "recipe", "chef", "bread", "soup", "feast", "baking", "spice", "garlic",
            "dessert", "noodle", "pastry",
        ],
    },
    Theme {
        genre: "sports",
        words: [
            "football", "champion", "stadium", "goal", "team", "race", "coach", "victory",
            "marathon", "trophy", "tennis", "league",
        ],
    },
    Theme {
        genre: "war",
        words: [
            "soldier", "battle", "army", "general", "tank", "invasion", "sniper", "trench",
            "medal", "siege", "regiment", "bomber",
        ],
    },
    Theme {
        genre: "sea",
        words: [
            "ocean", "pirate", "sailor", "island", "ship", "whale", "treasure", "harbor", "storm",
            "reef", "captain", "anchor",
        ],
    },
    Theme {
        genre: "western",
        words: [
            "cowboy",
            "sheriff",
            "saloon",
            "outlaw",
            "ranch",
            "horse",
            "desert",
            "frontier",
            "rodeo",
            "gunslinger",
            "cattle",
            "canyon",
        ],
    },
    Theme {
        genre: "music",
        words: [
            "guitar",
            "concert",
            "song",
            "piano",
            "band",
            "melody",
            "singer",
            "jazz",
            "rhythm",
            "drummer",
            "orchestra",
            "violin",
        ],
    },
    Theme {
        genre: "crime",
        words: [
            "detective",
            "murder",
            "police",
            "heist",
            "gangster",
            "robbery",
            "crime",
            "prison",
            "clue",
            "suspect",
            "thief",
            "mafia",
        ],
    },
    Theme {
        genre: "fantasy",
        words: [
            "dragon", "wizard", "castle", "kingdom", "sword", "magic", "elf", "knight", "quest",
            "spell", "witch", "throne",
        ],
    },
    Theme {
        genre: "wildlife",
        words: [
            "forest",
            "wolf",
            "jungle",
            "tiger",
            "mountain",
            "river",
            "eagle",
            "wilderness",
            "bear",
            "safari",
            "lion",
            "elephant",
        ],
    },
];

/// Title openers: deliberately theme-neutral.
pub const OPENERS: [&str; 8] = [
    "The",
    "A",
    "Return of the",
    "Tales of the",
    "Secret of the",
    "Beyond the",
    "Journey to the",
    "Legend of the",
];

/// The generated table and the hidden quantities behind it.
pub struct Synthetic {
    pub table: RawTable,
    pub truth: Truth,
}

/// Hidden generating values (for tests and diagnostics), 0-based indices.
#[derive(Debug, Clone)]
pub struct Truth {
    pub item_theme: Vec<usize>,
    pub item_group: Vec<usize>,
    pub user_theme: Vec<usize>,
    pub row_user: Vec<u32>,
    pub row_item: Vec<u32>,
    /// S per row.
    pub row_semantic: Vec<f64>,
    /// C per row.
    pub row_collaborative: Vec<f64>,
}

fn capitalised(w: &str) -> String {
    let mut c = w.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

fn two_words(rng: &mut impl Rng, words: &[&'static str]) -> (&'static str, &'static str) {
    let a = rng.random_range(0..words.len());
    let mut b = rng.random_range(0..words.len() - 1);
    if b >= a {
        b += 1;
    }
    (words[a], words[b])
}

/// Cumulative weights for sampling by binary search.
fn cumulative(weights: impl Iterator<Item = f64>) -> Vec<f64> {
    let mut acc = 0.0;
    weights
        .map(|w| {
            acc += w;
            acc
        })
        .collect()
}

fn draw(rng: &mut impl Rng, cum: &[f64]) -> usize {
    let total = cum.last().copied().unwrap_or(0.0);
    let x = rng.random::<f64>() * total;
    cum.partition_point(|&c| c <= x).min(cum.len() - 1)
}

/// Zipf weights 1/k^a over a random order of `n` entities.
fn zipf_weights(rng: &mut impl Rng, n: usize, a: f64) -> Vec<f64> {
    let mut rank: Vec<usize> = (0..n).collect();
    rank.shuffle(rng);
    rank.iter()
        .map(|&k| 1.0 / ((k + 1) as f64).powf(a))
        .collect()
}

fn check(p: &SyntheticSource) -> Result<()> {
    let bad = |m: String| Err(invalid(format!("synthetic source: {m}")));
    if p.users == 0 || p.items == 0 || p.rows == 0 {
        return bad("users, items and rows must all be at least 1".into());
    }
    if p.themes == 0 || p.themes > THEMES.len() {
        return bad(format!(
            "themes must be between 1 and {}, got {}",
            THEMES.len(),
            p.themes
        ));
    }
    for (name, v) in [
        ("semantic", p.semantic),
        ("collaborative", p.collaborative),
        ("noise", p.noise),
    ] {
        if !v.is_finite() || v < 0.0 {
            return bad(format!("{name} must be a finite number ≥ 0, got {v}"));
        }
    }
    Ok(())
}

pub fn generate(p: &SyntheticSource) -> Result<Synthetic> {
    check(p)?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(p.seed);
    let t = p.themes;

    // 1. items
    let mut item_theme = Vec::with_capacity(p.items);
    let mut item_group = Vec::with_capacity(p.items);
    let mut item_bias = Vec::with_capacity(p.items);
    let mut titles = ColumnBuilder::with_capacity(p.items);
    let mut genres = ColumnBuilder::with_capacity(p.items);
    for _ in 0..p.items {
        let th = rng.random_range(0..t);
        item_theme.push(th);
        item_group.push(rng.random_range(0..ITEM_GROUPS));
        item_bias.push(rng.sample::<f64, _>(StandardNormal));
        let opener = OPENERS[rng.random_range(0..OPENERS.len())];
        let (a, b) = two_words(&mut rng, &THEMES[th].words);
        titles.push(&format!("{opener} {} {}", capitalised(a), capitalised(b)));
        genres.push(THEMES[th].genre);
    }
    let item_pop = zipf_weights(&mut rng, p.items, 1.1);

    // 2. users
    let mut user_theme = Vec::with_capacity(p.users);
    let mut user_bias = Vec::with_capacity(p.users);
    let mut affinity = Vec::with_capacity(p.users * ITEM_GROUPS);
    let mut tastes = ColumnBuilder::with_capacity(p.users);
    for _ in 0..p.users {
        let th = rng.random_range(0..t);
        user_theme.push(th);
        user_bias.push(rng.sample::<f64, _>(StandardNormal));
        for _ in 0..ITEM_GROUPS {
            affinity.push(rng.sample::<f64, _>(StandardNormal));
        }
        let (a, b) = two_words(&mut rng, &THEMES[th].words);
        tastes.push(&format!("{a} and {b}"));
    }
    let user_act = cumulative(zipf_weights(&mut rng, p.users, 0.5).into_iter());

    let all_items = cumulative(item_pop.iter().copied());
    let mut theme_items: Vec<Vec<usize>> = vec![Vec::new(); t];
    for (j, &th) in item_theme.iter().enumerate() {
        theme_items[th].push(j);
    }
    let theme_cum: Vec<Vec<f64>> = theme_items
        .iter()
        .map(|js| cumulative(js.iter().map(|&j| item_pop[j])))
        .collect();

    // 3. rows
    let n = p.rows;
    let mut truth = Truth {
        item_theme,
        item_group,
        user_theme,
        row_user: Vec::with_capacity(n),
        row_item: Vec::with_capacity(n),
        row_semantic: Vec::with_capacity(n),
        row_collaborative: Vec::with_capacity(n),
    };
    let mut label = Vec::with_capacity(n);
    let mut rating = Vec::with_capacity(n);
    let norm = 1.5f64.sqrt();
    for _ in 0..n {
        let u = draw(&mut rng, &user_act);
        let taste = truth.user_theme[u];
        let j = if rng.random::<f64>() < 0.5 && !theme_items[taste].is_empty() {
            theme_items[taste][draw(&mut rng, &theme_cum[taste])]
        } else {
            draw(&mut rng, &all_items)
        };
        let s = if truth.item_theme[j] == taste {
            p.semantic
        } else {
            -p.semantic
        };
        let c = p.collaborative
            * (0.5 * user_bias[u]
                + 0.5 * item_bias[j]
                + affinity[u * ITEM_GROUPS + truth.item_group[j]])
            / norm;
        let v: f64 = rng.random::<f64>().clamp(1e-12, 1.0 - 1e-12);
        let y = s + c + p.noise * (v / (1.0 - v)).ln();
        truth.row_user.push(u as u32);
        truth.row_item.push(j as u32);
        truth.row_semantic.push(s);
        truth.row_collaborative.push(c);
        label.push(u32::from(y > 0.0));
        rating.push(if y > 1.5 {
            5
        } else if y > 0.0 {
            4
        } else if y > -1.0 {
            3
        } else if y > -2.0 {
            2
        } else {
            1
        });
    }

    let numbers = |count: usize| StrColumn {
        dict: (1..=count).map(|i| i.to_string()).collect(),
        codes: Vec::new(),
    };
    let mut table = RawTable {
        source: format!(
            "synthetic(users={}, items={}, rows={}, seed={})",
            p.users, p.items, p.rows, p.seed
        ),
        ..RawTable::default()
    };
    let by_user = |col: &StrColumn| StrColumn {
        dict: col.dict.clone(),
        codes: truth
            .row_user
            .iter()
            .map(|&u| col.codes[u as usize])
            .collect(),
    };
    let by_item = |col: &StrColumn| StrColumn {
        dict: col.dict.clone(),
        codes: truth
            .row_item
            .iter()
            .map(|&j| col.codes[j as usize])
            .collect(),
    };
    let mut user_ids = numbers(p.users);
    user_ids.codes = truth.row_user.clone();
    let mut item_ids = numbers(p.items);
    item_ids.codes = truth.row_item.clone();
    let tastes = tastes.finish();
    let titles = titles.finish();
    let genres = genres.finish();
    table.push_column("user_id", user_ids);
    table.push_column("item_id", item_ids);
    table.push_column("user_taste", by_user(&tastes));
    table.push_column("title", by_item(&titles));
    table.push_column("genre", by_item(&genres));
    table.push_column(
        "label",
        StrColumn {
            dict: vec!["0".into(), "1".into()],
            codes: label,
        },
    );
    table.push_column(
        "rating",
        StrColumn {
            dict: (1..=5).map(|r: u32| r.to_string()).collect(),
            codes: rating.into_iter().map(|r: u32| r - 1).collect(),
        },
    );
    table.push_column(
        "timestamp",
        StrColumn {
            dict: (0..n)
                .map(|r| (1_000_000_000u64 + 60 * r as u64).to_string())
                .collect(),
            codes: (0..n as u32).collect(),
        },
    );
    Ok(Synthetic { table, truth })
}
