//! Exit-code classes. Everything else is `anyhow`; `main` downcasts to pick
//! the process exit code: 0 ok, 1 run failure, 2 invalid input.

use std::fmt;

/// Input the user must fix (experiment file, data file, model folder, flags).
/// The message is already rendered for people (diagnostics with carets).
#[derive(Debug)]
pub struct InvalidInput(pub String);

impl fmt::Display for InvalidInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InvalidInput {}

/// Shorthand: `return Err(invalid(format!(...)))`.
pub fn invalid(msg: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(InvalidInput(msg.into()))
}

/// 2 when any error in the chain is `InvalidInput`, else 1.
pub fn exit_code(err: &anyhow::Error) -> i32 {
    if err.chain().any(|e| e.is::<InvalidInput>()) {
        2
    } else {
        1
    }
}
