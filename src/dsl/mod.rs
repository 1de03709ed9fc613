//! The experiment language: pest grammar (`grammar/clickprompt.pest`) → AST with spans.
