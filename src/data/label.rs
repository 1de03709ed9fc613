//! Label rules: a threshold on a numeric column, or a column already 0/1.

use anyhow::Result;

use super::raw::{parse_numbers, RawTable, StrColumn};
use crate::error::invalid;
use crate::plan::{CmpOp, LabelRule};

fn holds(op: CmpOp, x: f64, v: f64) -> bool {
    match op {
        CmpOp::Gt => x > v,
        CmpOp::Ge => x >= v,
        CmpOp::Lt => x < v,
        CmpOp::Le => x <= v,
        CmpOp::Eq => x == v,
        CmpOp::Ne => x != v,
    }
}

/// One 0.0/1.0 label per row. Missing or unparsable values are errors naming the row.
pub fn labels(table: &RawTable, rule: &LabelRule, dataset: &str) -> Result<Vec<f32>> {
    let (LabelRule::Threshold { column, .. } | LabelRule::Binary { column }) = rule;
    let who = format!("the label rule of dataset '{dataset}'");
    let col = table.require(column, &who)?;
    let at = |code: usize| {
        col.first_row_with(code as u32)
            .map(|r| table.locate(r))
            .unwrap_or_else(|| table.source.clone())
    };
    let by_code: Vec<f32> = match rule {
        LabelRule::Threshold { op, value, .. } => parse_numbers(table, col, column, &who)?
            .iter()
            .enumerate()
            .map(|(code, x)| match x {
                Some(x) => Ok(f32::from(u8::from(holds(*op, *x, *value)))),
                None => Err(invalid(format!(
                    "{}: column '{column}' (read by {who}) is empty or missing",
                    at(code)
                ))),
            })
            .collect::<Result<_>>()?,
        LabelRule::Binary { .. } => col
            .dict
            .iter()
            .enumerate()
            .map(|(code, v)| {
                binary(v).ok_or_else(|| {
                    invalid(format!(
                        "{}: label column '{column}' holds \"{v}\"; {who} expects 0 or 1 \
                     (use a threshold such as `{column} > 3` for ratings)",
                        at(code)
                    ))
                })
            })
            .collect::<Result<_>>()?,
    };
    Ok(gather(col, &by_code))
}

fn binary(v: &str) -> Option<f32> {
    match v.trim() {
        "1" | "1.0" | "true" | "True" | "TRUE" => Some(1.0),
        "0" | "0.0" | "false" | "False" | "FALSE" => Some(0.0),
        _ => None,
    }
}

fn gather(col: &StrColumn, by_code: &[f32]) -> Vec<f32> {
    col.codes.iter().map(|&c| by_code[c as usize]).collect()
}
