//! Random mutations of the example files (delete, duplicate, swap
//! characters): the checker must return plans or diagnostics, never panic,
//! and every diagnostic must render.

use std::path::Path;

use clickprompt::plan::check_source;

/// xorshift64*: deterministic, no dependency on a seeded RNG's stability.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(src: &str, rng: &mut Rng) -> String {
    let mut chars: Vec<char> = src.chars().collect();
    let edits = 1 + rng.below(3);
    for _ in 0..edits {
        if chars.is_empty() {
            break;
        }
        let i = rng.below(chars.len());
        match rng.below(4) {
            0 => {
                chars.remove(i);
            }
            1 => {
                let c = chars[i];
                chars.insert(i, c);
            }
            2 => {
                let len = 1 + rng.below(8);
                let end = (i + len).min(chars.len());
                chars.drain(i..end);
            }
            _ => {
                let j = (i + 1).min(chars.len() - 1);
                chars.swap(i, j);
            }
        }
    }
    chars.into_iter().collect()
}

#[test]
fn mutated_examples_never_panic() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments");
    let mut sources = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        if e.path().extension().is_some_and(|x| x == "cp") {
            sources.push(std::fs::read_to_string(e.path()).unwrap());
        }
    }
    sources.sort();
    assert!(!sources.is_empty());
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let (mut ok, mut bad) = (0usize, 0usize);
    for n in 0..3000 {
        let src = &sources[n % sources.len()];
        let m = mutate(src, &mut rng);
        match check_source(&m) {
            Ok(_) => ok += 1,
            Err(diags) => {
                assert!(!diags.is_empty(), "an error result carries diagnostics");
                let text = clickprompt::dsl::render(&diags, &m, "m.cp");
                assert!(text.contains("m.cp:"), "{text}");
                bad += 1;
            }
        }
    }
    // Both outcomes occur: mutations in comments survive, most others do not.
    assert!(ok > 0 && bad > 0, "ok {ok}, bad {bad}");
}
