//! Tokenization: BERT WordPiece from vocab.txt, tokenizer.json overrides,
//! RoBERTa specials, the word-table fast path against the library, MiniLM ids.

mod data_common;

use clickprompt::data::{self, LoadOptions, TextTokenizer, TokenColumn};
use clickprompt::plan::*;
use data_common::*;

fn rows(c: &TokenColumn) -> Vec<Vec<u32>> {
    (0..c.offsets.len() - 1)
        .map(|r| c.row(r).to_vec())
        .collect()
}

const WORDS: &[&str] = &["user", "id", "is", "gender", "male", "kol", "##ya"];

/// Letter `c` of the tiny vocabulary (after 9 specials/punctuation, 7 words, 20 digit entries).
fn letter(c: char) -> u32 {
    36 + 2 * (c as u32 - 'a' as u32)
}

#[test]
fn wordpiece_from_vocab_txt_matches_hand_computed_ids() {
    let d = tempfile::tempdir().unwrap();
    let vocab = tiny_vocab(d.path(), WORDS);
    let tok = TextTokenizer::from_dir(d.path(), 64).unwrap();
    assert_eq!(tok.file, vocab);
    let ids = tok
        .encode("User ID is 196. Gender is male. Kolya (x)")
        .unwrap();
    // [CLS] user id is 1 ##9 ##6 . gender is male . kol ##ya ( x ) [SEP]
    assert_eq!(
        ids,
        [
            2,
            9,
            10,
            11,
            18,
            35,
            29,
            5,
            12,
            11,
            13,
            5,
            14,
            15,
            7,
            letter('x'),
            8,
            3
        ]
    );
    let m = tok.meta();
    assert_eq!(
        (m.pad_id, m.mask_id, m.max_len, m.vocab_size),
        (0, 4, 64, 16 + 20 + 52)
    );
    assert_eq!(m.special_ids, [0, 1, 2, 3, 4]);
    assert!(tok.word_level());
}

#[test]
fn truncation_keeps_specials_and_there_is_no_padding() {
    let d = tempfile::tempdir().unwrap();
    tiny_vocab(d.path(), WORDS);
    let tok = TextTokenizer::from_dir(d.path(), 6).unwrap();
    let col = tok
        .encode_batch(&["user is male . user is male", "user", ""])
        .unwrap();
    assert_eq!(
        rows(&col),
        vec![vec![2, 9, 11, 13, 5, 3], vec![2, 9, 3], vec![2, 3]]
    );
    assert_eq!(
        col,
        tok.encode_batch_reference(&["user is male . user is male", "user", ""])
            .unwrap()
    );
    assert!(
        TextTokenizer::from_dir(d.path(), 2).is_err(),
        "max_len 2 leaves no room for text"
    );
}

#[test]
fn word_table_path_equals_the_library_on_awkward_text() {
    let d = tempfile::tempdir().unwrap();
    tiny_vocab(d.path(), &["café", "cafe", "muller"]);
    let tok = TextTokenizer::from_dir(d.path(), 24).unwrap();
    assert!(tok.word_level());
    let long = "a".repeat(150);
    let texts = [
        "Café Müller (1996).",
        "tabs\tand\nnew lines  and   runs of spaces ",
        "",
        "   ",
        "中文字 mixed in",
        long.as_str(),
        "a [MASK] token and foo[SEP]bar and [CLS]",
        "unknown £ € symbols, and punctuation!!! ...",
        "user is male user is male user is male user is male user is male user is male user is male",
        "\u{0}control\u{7}chars",
    ];
    assert_eq!(
        tok.encode_batch(&texts).unwrap(),
        tok.encode_batch_reference(&texts).unwrap()
    );
}

#[test]
fn tokenizer_json_padding_and_truncation_are_overridden() {
    let d = tempfile::tempdir().unwrap();
    tiny_vocab(d.path(), WORDS);
    // A tokenizer.json that pads and truncates to 8, like MiniLM's does to 128.
    let base = TextTokenizer::from_dir(d.path(), 64).unwrap();
    let mut inner = base.inner().clone();
    inner.with_padding(Some(tokenizers::PaddingParams {
        strategy: tokenizers::PaddingStrategy::Fixed(8),
        ..Default::default()
    }));
    inner
        .with_truncation(Some(tokenizers::TruncationParams {
            max_length: 8,
            ..Default::default()
        }))
        .unwrap();
    let j = d.path().join("json");
    std::fs::create_dir_all(&j).unwrap();
    inner.save(j.join("tokenizer.json"), false).unwrap();
    let tok = TextTokenizer::from_dir(&j, 32).unwrap();
    let col = tok
        .encode_batch(&["user", "user is male . user is male . user is male"])
        .unwrap();
    assert_eq!(col.len_of(0), 3, "padding must be off");
    assert_eq!(
        col.len_of(1),
        13,
        "truncation must follow max_len, not the file"
    );
    assert_eq!(
        col,
        tok.encode_batch_reference(&["user", "user is male . user is male . user is male"])
            .unwrap()
    );
}

const ROBERTA: &str = r#"{
  "version": "1.0", "truncation": null, "padding": null,
  "added_tokens": [
    {"id": 0, "content": "<s>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
    {"id": 1, "content": "<pad>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
    {"id": 2, "content": "</s>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
    {"id": 3, "content": "<unk>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
    {"id": 4, "content": "<mask>", "single_word": false, "lstrip": true, "rstrip": false, "normalized": false, "special": true}
  ],
  "normalizer": null,
  "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},
  "post_processor": {"type": "RobertaProcessing", "sep": ["</s>", 2], "cls": ["<s>", 0], "trim_offsets": true, "add_prefix_space": false},
  "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
  "model": {"type": "BPE", "dropout": null, "unk_token": "<unk>", "continuing_subword_prefix": "", "end_of_word_suffix": "",
    "fuse_unk": false, "byte_fallback": false,
    "vocab": {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3, "<mask>": 4, "h": 5, "i": 6, "Ġ": 7, "t": 8, "e": 9, "r": 10, "hi": 11, "Ġt": 12},
    "merges": ["h i", "Ġ t"]}
}"#;

#[test]
fn roberta_specials_and_byte_level_path() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("tokenizer.json"), ROBERTA).unwrap();
    let tok = TextTokenizer::from_dir(d.path(), 16).unwrap();
    // <s> hi Ġt h e r e </s>
    assert_eq!(tok.encode("hi there").unwrap(), [0, 11, 12, 5, 9, 10, 9, 2]);
    let m = tok.meta();
    assert_eq!((m.pad_id, m.mask_id), (1, 4));
    assert_eq!(m.special_ids, [0, 1, 2, 3, 4]);
    // A word's tokens depend on the space before it: no word table here.
    assert!(!tok.word_level());
    let col = tok
        .encode_batch(&[
            "hi there",
            "hi hi hi hi hi hi hi hi hi hi hi hi hi hi hi hi",
        ])
        .unwrap();
    assert_eq!(col.len_of(1), 16);
    assert_eq!(col.row(1)[15], 2);
}

#[test]
fn minilm_tokenizer_matches_independent_ids() {
    let Some(dir) = minilm_dir() else {
        println!("skipped: assets/plm/all-MiniLM-L6-v2 is absent (run scripts/fetch-plm.sh)");
        return;
    };
    let tok = TextTokenizer::from_dir(&dir, 128).unwrap();
    assert!(tok.word_level());
    let cases: [(&str, &[u32]); 2] = [
        (
            "User ID is 196. Gender is male. Age is 49. Job is writer. Zipcode is 55105. Movie ID is 242. Title is Kolya (1996). Film genre is Comedy.",
            &[
                101, 5310, 8909, 2003, 20035, 1012, 5907, 2003, 3287, 1012, 2287, 2003, 4749, 1012, 3105, 2003, 3213,
                1012, 14101, 16044, 2003, 4583, 10790, 2629, 1012, 3185, 8909, 2003, 22431, 1012, 2516, 2003, 12849,
                2135, 2050, 1006, 2727, 1007, 1012, 2143, 6907, 2003, 4038, 1012, 102,
            ],
        ),
        (
            "A young woman who is an artist watches the animated comedy Toy Story.",
            &[101, 1037, 2402, 2450, 2040, 2003, 2019, 3063, 12197, 1996, 6579, 4038, 9121, 2466, 1012, 102],
        ),
    ];
    let texts: Vec<&str> = cases.iter().map(|c| c.0).collect();
    let col = tok.encode_batch(&texts).unwrap();
    for (r, (_, want)) in cases.iter().enumerate() {
        assert_eq!(col.row(r), *want);
    }
    assert_eq!(col, tok.encode_batch_reference(&texts).unwrap());
    let m = tok.meta();
    assert_eq!((m.pad_id, m.mask_id, m.vocab_size), (0, 103, 30522));
    assert_eq!(m.special_ids, [0, 100, 101, 102, 103]);
}

#[test]
fn load_produces_aligned_tokens_for_every_split() {
    let d = tempfile::tempdir().unwrap();
    tiny_vocab(
        d.path(),
        &[
            "user", "id", "is", "gender", "male", "female", "item", "title",
        ],
    );
    let p = d.path().join("c.csv");
    let mut s = String::from("user,gender,item,title,rating,ts\n");
    for i in 0..50 {
        s.push_str(&format!(
            "{},{},{},Title {i},{},{i}\n",
            i % 7,
            ["M", "F"][i % 2],
            i % 11,
            i % 5 + 1
        ));
    }
    std::fs::write(&p, s).unwrap();
    let mut gender = field("gender", "Gender", FieldKind::Category);
    gender.map = vec![("M".into(), "male".into()), ("F".into(), "female".into())];
    let ds = DatasetPlan {
        name: "tok".into(),
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
            gender,
            field("item", "Item ID", FieldKind::Id),
            field("title", "Title", FieldKind::Text),
        ],
    };
    let plan = experiment(
        ds,
        Some(each_template(&["user", "gender", "title"])),
        Some(32),
    );
    let loaded = data::load(
        &plan,
        &LoadOptions {
            cache_dir: d.path().join("cache"),
            rebuild: false,
            tokenizer_dir: Some(d.path().to_path_buf()),
        },
    )
    .unwrap();
    let ds = &loaded.dataset;
    let meta = ds.meta.text.as_ref().unwrap();
    assert_eq!(meta.max_len, 32);
    let tok = TextTokenizer::from_dir(d.path(), 32).unwrap();
    for (name, split) in ds.splits() {
        let t = split.tokens.as_ref().unwrap();
        assert_eq!(t.offsets.len(), split.rows + 1, "{name}");
    }
    // Row 0 of train is the earliest row: user 0, male, "Title 0".
    assert_eq!(
        loaded.samples[0].text,
        "User ID is 0. Gender is male. Title is Title 0."
    );
    assert_eq!(
        ds.train.tokens.as_ref().unwrap().row(0),
        tok.encode(&loaded.samples[0].text).unwrap()
    );
    // The last test row is ts 49: user 0, female, "Title 49".
    let last = ds.test.rows - 1;
    assert_eq!(
        ds.test.tokens.as_ref().unwrap().row(last),
        tok.encode("User ID is 0. Gender is female. Title is Title 49.")
            .unwrap()
    );
    // Changing the tokenizer invalidates the cache.
    let again = data::load(
        &plan,
        &LoadOptions {
            cache_dir: d.path().join("cache"),
            rebuild: false,
            tokenizer_dir: Some(d.path().to_path_buf()),
        },
    )
    .unwrap();
    assert!(again.cache.hit);
    tiny_vocab(
        d.path(),
        &["user", "id", "is", "gender", "male", "female", "item"],
    );
    let changed = data::load(
        &plan,
        &LoadOptions {
            cache_dir: d.path().join("cache"),
            rebuild: false,
            tokenizer_dir: Some(d.path().to_path_buf()),
        },
    )
    .unwrap();
    assert!(!changed.cache.hit);
}

/// Rendered rows with where their values are, as the template renderer reports them.
fn texts_with_values(rows: &[(&str, &[(u16, &str)])]) -> data::render::Texts {
    let mut t = data::render::Texts {
        buf: String::new(),
        offsets: vec![0],
        spans: Vec::new(),
        slots: rows[0].1.len(),
    };
    for (text, values) in rows {
        let mut from = 0;
        for &(field, v) in *values {
            let at = from + text[from..].find(v).unwrap();
            t.spans.push(data::render::ValueSpan {
                field,
                start: at as u32,
                end: (at + v.len()) as u32,
            });
            from = at + v.len();
        }
        t.buf.push_str(text);
        t.offsets.push(t.buf.len());
    }
    t
}

#[test]
fn tokens_are_tagged_with_their_field_and_word() {
    let d = tempfile::tempdir().unwrap();
    tiny_vocab(d.path(), WORDS);
    let tok = TextTokenizer::from_dir(d.path(), 16).unwrap();
    let texts = texts_with_values(&[
        (
            "User ID is 196. Gender is male.",
            &[(0, "196"), (1, "male")],
        ),
        (
            "User ID is 7. Gender is Kolya (x).",
            &[(0, "7"), (1, "Kolya (x)")],
        ),
    ]);
    let col = tok.encode_texts(&texts).unwrap();
    // [CLS] user id is 1 ##9 ##6 . gender is male . [SEP]
    assert_eq!(col.row(0), [2, 9, 10, 11, 18, 35, 29, 5, 12, 11, 13, 5, 3]);
    let row0 = |v: &[u16]| v[..13].to_vec();
    assert_eq!(row0(&col.fields), [0, 0, 0, 0, 1, 1, 1, 0, 0, 0, 2, 0, 0]);
    let nw = data::NO_WORD;
    assert_eq!(row0(&col.words), [nw, 0, 1, 2, 3, 3, 3, 4, 5, 6, 7, 8, nw]);
    // [CLS] user id is 7 . gender is kol ##ya ( x ) . [SEP]: the value's
    // punctuation belongs to it, the template's full stop does not.
    let (a, b) = (col.offsets[1] as usize, col.offsets[2] as usize);
    assert_eq!(
        col.fields[a..b],
        [0, 0, 0, 0, 1, 0, 0, 0, 2, 2, 2, 2, 2, 0, 0]
    );
    assert_eq!(col.words[a + 8..a + 10], [7, 7], "kol ##ya is one word");
    // The library's own encoder tags the same way.
    assert_eq!(col, tok.encode_texts_reference(&texts).unwrap());
}
