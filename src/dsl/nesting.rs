//! A cap on bracket nesting, checked before pest sees the text: the parser
//! and the checker recurse once per level, so a file of a million `[` would
//! overflow the stack (an abort no error handler can catch) instead of
//! getting an error. Real files nest three or four levels.

use super::ast::Span;
use super::diagnostic::Diagnostic;

/// `[`, `(` and `{` nested deeper than this are refused.
pub const MAX_NESTING: usize = 32;

/// The first opening bracket deeper than [`MAX_NESTING`], outside strings
/// and comments, as a diagnostic.
pub fn check_nesting(source: &str) -> Result<(), Diagnostic> {
    let bytes = source.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                // Strings end at the closing quote or, unterminated, at the
                // line's end (the grammar reports those).
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' && bytes[i] != b'\n' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'#' => i = skip_line(bytes, i),
            b'/' if bytes.get(i + 1) == Some(&b'/') => i = skip_line(bytes, i),
            b'[' | b'(' | b'{' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Err(Diagnostic::new(
                        Span::new(i, i + 1),
                        format!("brackets nested deeper than {MAX_NESTING} levels"),
                    )
                    .with_hint("lists and blocks nest a few levels at most; close the open ones"));
                }
            }
            b']' | b')' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    Ok(())
}

fn skip_line(bytes: &[u8], from: usize) -> usize {
    bytes[from..]
        .iter()
        .position(|&b| b == b'\n')
        .map(|p| from + p)
        .unwrap_or(bytes.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deep_lists_are_refused_at_the_first_bracket_too_deep() {
        let src = format!("x {}", "[".repeat(MAX_NESTING + 5));
        let err = check_nesting(&src).unwrap_err();
        assert_eq!(err.span.start, 2 + MAX_NESTING);
        assert!(err.message.contains("nested deeper than 32"));
    }

    #[test]
    fn brackets_in_strings_and_comments_do_not_count() {
        let deep = "[".repeat(MAX_NESTING + 1);
        assert!(check_nesting(&format!("\"{deep}\"\n# {deep}\n// {deep}\n[[1]]")).is_ok());
        assert!(check_nesting(&"[]".repeat(1000)).is_ok());
    }
}
