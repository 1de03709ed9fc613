//! Bounds on what checking one file may cost. Sweeps and `seeds` resolve an
//! experiment once per run and `extends` copies a base into every child, so
//! a 60 KB experiment under a 2 000-point sweep took seconds, and a base
//! with 6 000 unknown parameters extended 1 500 times took 15 s (every child
//! re-raised its base's errors). The budget stops checking at the item where
//! it runs out, with a diagnostic there, so `check` answers in tens of
//! milliseconds whatever the file.

use super::values::Diags;
use crate::dsl::{Diagnostic, Span};

/// Bytes of experiment settings that checking may resolve, summed over
/// every spec built and every run (see `Spec::weight`). Resolving costs up
/// to ~20 ns a byte (long lists, many stages), so this is about 40 ms; a
/// 2 000-point sweep over a typical experiment (300–700 bytes of settings)
/// spends 0.6–1.4 MB.
pub const MAX_CHECK_WORK: usize = 2 << 20;

/// Checking stops after this many diagnostics were raised, repeats
/// included (each costs a message and a did-you-mean search; only the first
/// 100 are shown).
pub const MAX_RAISED: usize = 1_000;

#[derive(Debug, Default)]
pub struct Budget {
    spent: usize,
    stopped: bool,
}

impl Budget {
    /// Whether checking already stopped.
    pub fn stopped(&self) -> bool {
        self.stopped
    }

    /// Spends `work` on the item at `at`. False, with a diagnostic at `at`
    /// the first time, when the work or the diagnostics are used up: the
    /// caller skips the item and everything after it.
    pub fn spend(&mut self, work: usize, at: Span, d: &mut Diags) -> bool {
        if self.stopped {
            return false;
        }
        self.spent = self.spent.saturating_add(work);
        let (message, hint) = if d.raised() > MAX_RAISED {
            (
                format!("checking stops here after {MAX_RAISED} errors"),
                "fix the errors above and check again",
            )
        } else if self.spent > MAX_CHECK_WORK {
            (
                format!(
                    "checking stops here: the runs so far resolve more than {} MB of experiment settings",
                    MAX_CHECK_WORK >> 20
                ),
                "sweeps, `seeds` and `extends` repeat an experiment's settings in every run: \
                 shorten long lists and stage chains, or split the file",
            )
        } else {
            return true;
        };
        self.stopped = true;
        d.push(Diagnostic::new(at, message).with_hint(hint).pinned());
        false
    }
}
