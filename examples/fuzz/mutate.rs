//! Byte and character mutations of a seed input: the edits a user's typo, a
//! bad merge or a corrupted file make.

use crate::rng::Rng;

/// Tokens worth inserting: brackets, separators, quotes, keywords, huge and
/// odd numbers, multibyte characters.
const TOKENS: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    "(",
    ")",
    ",",
    ":",
    "=",
    "\"",
    "\\",
    "#",
    "//",
    "\n",
    "\t",
    " ",
    ".",
    "-",
    "_",
    "é",
    "日本",
    "🦀",
    "\u{200b}",
    "\r\n",
    "1e309",
    "-0",
    "99999999999999999999999",
    "1_000_000_000_000",
    "0.0000000001",
    "NaN",
    "inf",
    "-1",
    "1e-400",
    "4294967297",
    "none",
    "env(\"X\")",
    "hub(\"a/b\")",
    "\\u{10ffff}",
    "\\u{d800}",
    "\\u{110000}",
];

/// Applies 1–8 random edits to `input`; `others` are splice partners.
pub fn mutate(rng: &mut Rng, input: &[u8], others: &[Vec<u8>], extra: &[&str]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..1 + rng.below(8) {
        edit(rng, &mut out, others, extra);
    }
    out
}

fn span(rng: &mut Rng, len: usize) -> (usize, usize) {
    if len == 0 {
        return (0, 0);
    }
    let start = rng.below(len + 1);
    let max = (len - start).min(if rng.one_in(8) { 4096 } else { 32 });
    (start, start + rng.below(max + 1))
}

fn edit(rng: &mut Rng, out: &mut Vec<u8>, others: &[Vec<u8>], extra: &[&str]) {
    let at = rng.below(out.len() + 1);
    match rng.below(11) {
        0 => {
            let (a, b) = span(rng, out.len());
            out.drain(a..b);
        }
        1 => {
            let (a, b) = span(rng, out.len());
            let copy = out[a..b].to_vec();
            let times = if rng.one_in(16) {
                1 + rng.below(200)
            } else {
                1
            };
            for _ in 0..times {
                out.splice(at.min(out.len())..at.min(out.len()), copy.iter().copied());
            }
        }
        2 => {
            if at < out.len() {
                out[at] = rng.next() as u8;
            }
        }
        3 => {
            // Bytes that are never valid UTF-8, or a truncated sequence.
            let bad: &[&[u8]] = &[
                b"\xff",
                b"\xc3",
                b"\xe2\x82",
                b"\xf0\x9f\xa6",
                b"\x80",
                b"\xed\xa0\x80",
            ];
            out.splice(at..at, rng.pick(bad).iter().copied());
        }
        4 => {
            let t = rng.pick(TOKENS).as_bytes();
            out.splice(at..at, t.iter().copied());
        }
        5 if !extra.is_empty() => {
            let t = rng.pick(extra).as_bytes();
            out.splice(at..at, t.iter().copied());
        }
        6 if !others.is_empty() => {
            let other = rng.pick(others);
            let (a, b) = span(rng, other.len());
            let (c, d) = span(rng, out.len());
            out.splice(c..d, other[a..b].iter().copied());
        }
        7 => {
            let open = *rng.pick(b"[({");
            let n = if rng.one_in(4) {
                10_000
            } else {
                1 + rng.below(80)
            };
            out.splice(at..at, std::iter::repeat_n(open, n));
        }
        8 => {
            let cap = if rng.one_in(8) { 5000 } else { 40 };
            let digits = 1 + rng.below(cap);
            let num: Vec<u8> = (0..digits).map(|_| b'0' + rng.below(10) as u8).collect();
            out.splice(at..at, num);
        }
        9 => out.truncate(at),
        _ => {
            if at < out.len() {
                out[at] ^= 1 << rng.below(8);
            }
        }
    }
}
