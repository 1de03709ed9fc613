//! Run groups (migration 0003): the runs that repeat one configuration over
//! seeds. Reading them; the statistics over a group live in `crate::stats`.

use anyhow::{Context, Result};
use serde::Serialize;

use super::db::Store;
use super::read::RunSummary;
use crate::error::invalid;

/// A group as stored.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct GroupInfo {
    pub id: i64,
    /// The run name without its seed assignment.
    pub name: String,
    /// The experiment its runs belong to (None once that experiment is deleted).
    pub experiment: Option<String>,
    /// `<file sha256>/<name>`: how runs of other processes find the group.
    pub key: String,
    pub created_at: String,
}

const GROUP_SELECT: &str = "SELECT g.id, g.name, x.name AS experiment, g.key, g.created_at
     FROM run_groups g LEFT JOIN experiments x ON x.id = g.experiment_id";

impl Store {
    /// Group `id`; an invalid-input error when there is none.
    pub fn group(&self, id: i64) -> Result<GroupInfo> {
        self.block_on(
            sqlx::query_as::<_, GroupInfo>(&format!("{GROUP_SELECT} WHERE g.id = $1"))
                .bind(id)
                .fetch_optional(self.pool()),
        )
        .context("reading a run group")?
        .ok_or_else(|| {
            invalid(format!(
                "no group g{id} in {} (`clickprompt runs list --groups` lists them)",
                self.target()
            ))
        })
    }

    /// Groups called `name` (several when files with different contents used it), newest first.
    pub fn groups_named(&self, name: &str) -> Result<Vec<GroupInfo>> {
        self.block_on(
            sqlx::query_as::<_, GroupInfo>(&format!(
                "{GROUP_SELECT} WHERE g.name = $1 ORDER BY g.id DESC"
            ))
            .bind(name)
            .fetch_all(self.pool()),
        )
        .context("reading run groups")
    }

    /// The runs of group `id`, oldest first.
    pub fn group_runs(&self, id: i64) -> Result<Vec<RunSummary>> {
        self.block_on(
            sqlx::query_as::<_, RunSummary>(
                "SELECT s.* FROM run_summary s WHERE s.group_id = $1 ORDER BY s.id",
            )
            .bind(id)
            .fetch_all(self.pool()),
        )
        .context("reading a group's runs")
    }
}
