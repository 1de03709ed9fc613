//! The experiment language: pest grammar (`grammar/clickprompt.pest`) → AST with spans.

pub mod ast;
pub mod diagnostic;
pub mod nesting;
pub mod parser;
mod syntax;

pub use ast::*;
pub use diagnostic::{render, Diagnostic};
pub use parser::parse_file;
