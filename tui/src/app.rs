//! The dashboard's state machine: what is shown, what is selected, and how
//! keys change it. Pure (no terminal, no clock): the event loop feeds keys
//! and data, the renderer reads the state.

use std::collections::HashMap;

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use crate::model::{DataSource, GroupComparison, GroupSummary, RunDetail, RunStatus, RunSummary};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    Runs,
    Live,
    Compare,
}

impl View {
    pub const ALL: [View; 3] = [View::Runs, View::Live, View::Compare];

    pub fn title(&self) -> &'static str {
        match self {
            View::Runs => "Runs",
            View::Live => "Live",
            View::Compare => "Compare",
        }
    }

    fn next(self) -> View {
        match self {
            View::Runs => View::Live,
            View::Live => View::Compare,
            View::Compare => View::Runs,
        }
    }

    fn prev(self) -> View {
        match self {
            View::Runs => View::Compare,
            View::Live => View::Runs,
            View::Compare => View::Live,
        }
    }
}

/// Columns of the runs table, each sortable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    Id,
    Experiment,
    Name,
    Sweep,
    Status,
    TestAuc,
    LogLoss,
    Duration,
    Started,
}

impl SortKey {
    pub const ALL: [SortKey; 9] = [
        SortKey::Id,
        SortKey::Experiment,
        SortKey::Name,
        SortKey::Sweep,
        SortKey::Status,
        SortKey::TestAuc,
        SortKey::LogLoss,
        SortKey::Duration,
        SortKey::Started,
    ];

    pub fn title(&self) -> &'static str {
        match self {
            SortKey::Id => "ID",
            SortKey::Experiment => "Experiment",
            SortKey::Name => "Run",
            SortKey::Sweep => "Sweep",
            SortKey::Status => "Status",
            SortKey::TestAuc => "Test AUC",
            SortKey::LogLoss => "LogLoss",
            SortKey::Duration => "Duration",
            SortKey::Started => "Started",
        }
    }

    fn index(&self) -> usize {
        SortKey::ALL.iter().position(|k| k == self).unwrap_or(0)
    }

    fn shifted(self, by: isize) -> SortKey {
        let n = SortKey::ALL.len() as isize;
        let i = (self.index() as isize + by).rem_euclid(n);
        SortKey::ALL[i as usize]
    }

    /// The natural first direction: best/newest on top.
    fn default_descending(&self) -> bool {
        matches!(
            self,
            SortKey::Id | SortKey::TestAuc | SortKey::Duration | SortKey::Started
        )
    }
}

/// Which run the live view shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Follow {
    /// The newest running run, else the run under the cursor.
    Auto,
    /// One run, chosen with Enter or `--run`.
    Run(i64),
    /// The newest run with an id above this one: the run(s) this process is
    /// starting (`run --dash`), so a sweep's points are followed one by one.
    After(i64),
}

pub struct App {
    pub view: View,
    pub runs: Vec<RunSummary>,
    pub cursor: usize,
    pub sort: SortKey,
    pub descending: bool,
    pub filter: String,
    pub filter_editing: bool,
    /// Run ids picked for comparison, in picking order.
    pub selected: Vec<i64>,
    pub follow: Follow,
    pub live: Option<RunDetail>,
    pub compare: Vec<RunDetail>,
    pub help: bool,
    /// Show raw loss only (no smoothing).
    pub raw: bool,
    /// EMA weight, TensorBoard's default 0.6.
    pub smoothing: f64,
    /// Stage shown in the live/compare charts; None follows the active one.
    pub stage_pick: Option<String>,
    /// Stage whose figures the runs table shows; None: each run's best stage.
    pub figures_stage: Option<String>,
    pub quit: bool,
    /// Ctrl-C (as opposed to q): the caller may want to interrupt training.
    pub interrupted: bool,
    /// Last data error, shown in the footer until the next good refresh.
    pub error: Option<String>,
    /// One-shot message for the footer (e.g. "select at least 2 runs").
    pub notice: Option<String>,
    /// Set by the driver (e.g. "training finished — q to leave").
    pub banner: Option<String>,
    /// Where the data comes from, for the title bar.
    pub source_label: String,
    /// The Runs view lists groups (runs repeated over seeds) instead of runs.
    pub show_groups: bool,
    pub groups: Vec<GroupSummary>,
    pub group_cursor: usize,
    /// Groups picked for comparison: A, then B (at most two).
    pub selected_groups: Vec<i64>,
    /// The runs table shows only this group's runs (Enter on a group; Esc clears).
    pub group_filter: Option<i64>,
    /// The Compare view compares the two selected groups instead of runs.
    pub compare_groups: bool,
    pub group_compare: Option<GroupComparison>,
    /// Details fetched once per run for finished runs (they no longer change).
    cache: HashMap<i64, RunDetail>,
}

impl Default for App {
    fn default() -> Self {
        App::new(Follow::Auto, View::Runs)
    }
}

impl App {
    pub fn new(follow: Follow, view: View) -> App {
        App {
            view,
            runs: Vec::new(),
            cursor: 0,
            sort: SortKey::Id,
            descending: true,
            filter: String::new(),
            filter_editing: false,
            selected: Vec::new(),
            follow,
            live: None,
            compare: Vec::new(),
            help: false,
            raw: false,
            smoothing: 0.6,
            stage_pick: None,
            figures_stage: None,
            quit: false,
            interrupted: false,
            error: None,
            notice: None,
            banner: None,
            source_label: String::new(),
            show_groups: false,
            groups: Vec::new(),
            group_cursor: 0,
            selected_groups: Vec::new(),
            group_filter: None,
            compare_groups: false,
            group_compare: None,
            cache: HashMap::new(),
        }
    }

    fn filter_words(&self) -> Vec<String> {
        self.filter
            .split_whitespace()
            .map(|w| w.to_lowercase())
            .collect()
    }

    /// Groups after filtering, newest first, as the groups table shows them.
    pub fn visible_groups(&self) -> Vec<&GroupSummary> {
        let words = self.filter_words();
        let mut v: Vec<&GroupSummary> = self
            .groups
            .iter()
            .filter(|g| {
                let hay = format!("g{} {} {}", g.id, g.name, g.experiment).to_lowercase();
                words.iter().all(|w| hay.contains(w.as_str()))
            })
            .collect();
        v.sort_by_key(|g| std::cmp::Reverse(g.id));
        v
    }

    pub fn cursor_group(&self) -> Option<&GroupSummary> {
        self.visible_groups().get(self.group_cursor).copied()
    }

    /// The name of the group the runs table is limited to.
    pub fn group_filter_name(&self) -> Option<String> {
        let id = self.group_filter?;
        Some(
            self.groups
                .iter()
                .find(|g| g.id == id)
                .map(|g| format!("g{id} {}", g.name))
                .or_else(|| {
                    self.runs
                        .iter()
                        .find(|r| r.group_id == Some(id))
                        .and_then(|r| r.group.clone())
                        .map(|n| format!("g{id} {n}"))
                })
                .unwrap_or_else(|| format!("g{id}")),
        )
    }

    /// Runs after filtering and sorting, as the table shows them.
    pub fn visible_runs(&self) -> Vec<&RunSummary> {
        let words = self.filter_words();
        let mut v: Vec<&RunSummary> = self
            .runs
            .iter()
            .filter(|r| self.group_filter.is_none() || r.group_id == self.group_filter)
            .filter(|r| {
                if words.is_empty() {
                    return true;
                }
                let hay = format!(
                    "#{} {} {} {} {} {} {}",
                    r.id,
                    r.experiment,
                    r.name,
                    r.sweep_point.as_deref().unwrap_or(""),
                    r.status.as_str(),
                    r.device,
                    r.group.as_deref().unwrap_or("")
                )
                .to_lowercase();
                words.iter().all(|w| hay.contains(w.as_str()))
            })
            .collect();
        let key = self.sort;
        let desc = self.descending;
        let pick = self.figures_stage.as_deref();
        v.sort_by(|a, b| compare_runs(a, b, key, desc, pick));
        v
    }

    /// Stage names with figures across the runs, in the order first met
    /// (oldest run first), for cycling the runs table's figures.
    pub fn figure_stages(&self) -> Vec<String> {
        let mut runs: Vec<&RunSummary> = self.runs.iter().collect();
        runs.sort_by_key(|r| r.id);
        let mut names: Vec<String> = Vec::new();
        for r in runs {
            for s in &r.stages {
                if !names.contains(&s.stage) {
                    names.push(s.stage.clone());
                }
            }
        }
        names
    }

    pub fn cursor_run(&self) -> Option<&RunSummary> {
        self.visible_runs().get(self.cursor).copied()
    }

    /// The run id the live view should show now.
    pub fn live_target(&self) -> Option<i64> {
        match self.follow {
            Follow::Run(id) => Some(id),
            Follow::After(after) => self
                .runs
                .iter()
                .map(|r| r.id)
                .filter(|&id| id > after)
                .max(),
            Follow::Auto => self
                .runs
                .iter()
                .filter(|r| r.status.is_live())
                .map(|r| r.id)
                .max()
                .or_else(|| self.cursor_run().map(|r| r.id)),
        }
    }

    pub fn is_selected(&self, id: i64) -> bool {
        self.selected.contains(&id)
    }

    /// Polls the source for what the current view needs.
    pub fn refresh(&mut self, src: &mut dyn DataSource) {
        let keep = self.cursor_run().map(|r| r.id);
        let mut errors = Vec::new();
        match src.runs() {
            Ok(runs) => self.runs = runs,
            Err(e) => errors.push(e),
        }
        // Forget picks of runs that vanished (deleted from the database).
        let known: Vec<i64> = self.runs.iter().map(|r| r.id).collect();
        self.selected.retain(|id| known.contains(id));
        // A settled run can come back to life (`run --resume`): drop its
        // cached detail once the list says its status changed.
        let runs = &self.runs;
        self.cache.retain(|id, d| {
            runs.iter()
                .any(|r| r.id == *id && r.status == d.summary.status)
        });
        self.restore_cursor(keep);

        match self.view {
            View::Runs if self.show_groups => {
                let keep = self.cursor_group().map(|g| g.id);
                match src.groups() {
                    Ok(groups) => self.groups = groups,
                    Err(e) => errors.push(e),
                }
                let known: Vec<i64> = self.groups.iter().map(|g| g.id).collect();
                self.selected_groups.retain(|id| known.contains(id));
                self.restore_group_cursor(keep);
            }
            View::Runs => {}
            View::Compare if self.compare_groups => match self.selected_groups.as_slice() {
                &[a, b] => match src.group_comparison(a, b) {
                    Ok(c) => self.group_compare = Some(c),
                    Err(e) => {
                        errors.push(e);
                        if self
                            .group_compare
                            .as_ref()
                            .is_some_and(|c| (c.a.id, c.b.id) != (a, b))
                        {
                            self.group_compare = None;
                        }
                    }
                },
                _ => self.group_compare = None,
            },
            View::Live => {
                match self.live_target() {
                    Some(id) => match self.detail(src, id) {
                        Ok(d) => self.live = Some(d),
                        // Keep showing the last good data of the same run.
                        Err(e) => {
                            errors.push(e);
                            if self.live.as_ref().map(|d| d.summary.id) != Some(id) {
                                self.live = None;
                            }
                        }
                    },
                    None => self.live = None,
                }
            }
            View::Compare => {
                let ids = self.selected.clone();
                let mut details = Vec::new();
                for id in ids {
                    match self.detail(src, id) {
                        Ok(d) => details.push(d),
                        Err(e) => {
                            errors.push(e);
                            if let Some(old) = self.compare.iter().find(|d| d.summary.id == id) {
                                details.push(old.clone());
                            }
                        }
                    }
                }
                self.compare = details;
            }
        }
        self.error = if errors.is_empty() {
            None
        } else {
            Some(errors.join("; "))
        };
    }

    fn detail(&mut self, src: &mut dyn DataSource, id: i64) -> Result<RunDetail, String> {
        if let Some(d) = self.cache.get(&id) {
            return Ok(d.clone());
        }
        let d = src.run_detail(id)?;
        let settled = matches!(
            d.summary.status,
            RunStatus::Finished | RunStatus::Failed | RunStatus::Interrupted
        );
        if settled {
            self.cache.insert(id, d.clone());
        }
        Ok(d)
    }

    fn restore_group_cursor(&mut self, keep: Option<i64>) {
        let visible = self.visible_groups();
        if let Some(i) = keep.and_then(|id| visible.iter().position(|g| g.id == id)) {
            self.group_cursor = i;
            return;
        }
        self.group_cursor = self.group_cursor.min(visible.len().saturating_sub(1));
    }

    fn move_group_cursor(&mut self, by: isize) {
        let n = self.visible_groups().len();
        if n == 0 {
            self.group_cursor = 0;
            return;
        }
        let i = (self.group_cursor as isize + by).clamp(0, n as isize - 1);
        self.group_cursor = i as usize;
    }

    fn restore_cursor(&mut self, keep: Option<i64>) {
        let visible = self.visible_runs();
        let n = visible.len();
        if let Some(id) = keep {
            if let Some(i) = visible.iter().position(|r| r.id == id) {
                self.cursor = i;
                return;
            }
        }
        self.cursor = self.cursor.min(n.saturating_sub(1));
    }

    pub fn on_key(&mut self, key: KeyEvent) {
        if key.kind != KeyEventKind::Press {
            return;
        }
        self.notice = None;
        if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
            self.quit = true;
            self.interrupted = true;
            return;
        }
        if self.help {
            // Any key closes the help; q/Esc do not also quit.
            self.help = false;
            return;
        }
        if self.filter_editing {
            self.on_filter_key(key);
            return;
        }
        match key.code {
            KeyCode::Char('q') => self.quit = true,
            KeyCode::Esc => {
                if self.view == View::Runs && !self.filter.is_empty() {
                    self.filter.clear();
                    self.restore_cursor(None);
                    self.restore_group_cursor(None);
                } else if self.view == View::Runs
                    && !self.show_groups
                    && self.group_filter.is_some()
                {
                    self.group_filter = None;
                    self.restore_cursor(None);
                } else {
                    self.quit = true;
                }
            }
            KeyCode::Char('?') => self.help = true,
            KeyCode::Tab => self.view = self.view.next(),
            KeyCode::BackTab => self.view = self.view.prev(),
            _ => match self.view {
                View::Runs => self.on_runs_key(key),
                View::Live => self.on_live_key(key),
                View::Compare => self.on_compare_key(key),
            },
        }
    }

    fn on_filter_key(&mut self, key: KeyEvent) {
        let keep = self.cursor_run().map(|r| r.id);
        match key.code {
            KeyCode::Enter => self.filter_editing = false,
            KeyCode::Esc => {
                self.filter.clear();
                self.filter_editing = false;
            }
            KeyCode::Backspace => {
                self.filter.pop();
            }
            KeyCode::Up if self.show_groups => self.move_group_cursor(-1),
            KeyCode::Down if self.show_groups => self.move_group_cursor(1),
            KeyCode::Up => self.move_cursor(-1),
            KeyCode::Down => self.move_cursor(1),
            KeyCode::Char(c) => self.filter.push(c),
            _ => {}
        }
        self.restore_cursor(keep);
        self.restore_group_cursor(None);
    }

    fn move_cursor(&mut self, by: isize) {
        let n = self.visible_runs().len();
        if n == 0 {
            self.cursor = 0;
            return;
        }
        let i = (self.cursor as isize + by).clamp(0, n as isize - 1);
        self.cursor = i as usize;
    }

    fn on_runs_key(&mut self, key: KeyEvent) {
        if key.code == KeyCode::Char('v') {
            self.show_groups = !self.show_groups;
            // The next refresh fetches the groups; keep the cursor in range meanwhile.
            self.restore_group_cursor(None);
            return;
        }
        if self.show_groups {
            self.on_groups_key(key);
            return;
        }
        match key.code {
            KeyCode::Up | KeyCode::Char('k') => self.move_cursor(-1),
            KeyCode::Down | KeyCode::Char('j') => self.move_cursor(1),
            KeyCode::PageUp => self.move_cursor(-10),
            KeyCode::PageDown => self.move_cursor(10),
            KeyCode::Home | KeyCode::Char('g') => self.cursor = 0,
            KeyCode::End | KeyCode::Char('G') => self.move_cursor(isize::MAX / 2),
            KeyCode::Enter => {
                if let Some(id) = self.cursor_run().map(|r| r.id) {
                    self.follow = Follow::Run(id);
                    self.stage_pick = None;
                    self.view = View::Live;
                }
            }
            KeyCode::Char(' ') => {
                if let Some(id) = self.cursor_run().map(|r| r.id) {
                    if let Some(i) = self.selected.iter().position(|&s| s == id) {
                        self.selected.remove(i);
                    } else {
                        self.selected.push(id);
                    }
                    self.move_cursor(1);
                }
            }
            KeyCode::Char('x') => self.selected.clear(),
            KeyCode::Char('t') => {
                // best → each stage → best.
                let keep = self.cursor_run().map(|r| r.id);
                let names = self.figure_stages();
                self.figures_stage = match &self.figures_stage {
                    None => names.first().cloned(),
                    Some(cur) => names
                        .iter()
                        .position(|n| n == cur)
                        .and_then(|i| names.get(i + 1))
                        .cloned(),
                };
                if self.figures_stage.is_none() && names.is_empty() {
                    self.notice = Some("no run has stage figures yet".into());
                }
                self.restore_cursor(keep);
            }
            KeyCode::Char('c') => {
                if self.selected.len() >= 2 {
                    self.stage_pick = None;
                    self.compare_groups = false;
                    self.view = View::Compare;
                } else {
                    self.notice = Some("select at least 2 runs with space to compare".into());
                }
            }
            KeyCode::Char('/') => self.filter_editing = true,
            KeyCode::Char('s') | KeyCode::Right | KeyCode::Char('l') => self.set_sort(1),
            KeyCode::Char('S') | KeyCode::Left | KeyCode::Char('h') => self.set_sort(-1),
            KeyCode::Char('r') => {
                let keep = self.cursor_run().map(|r| r.id);
                self.descending = !self.descending;
                self.restore_cursor(keep);
            }
            KeyCode::Char(c @ '1'..='9') => {
                let i = c as usize - '1' as usize;
                if let Some(&k) = SortKey::ALL.get(i) {
                    let keep = self.cursor_run().map(|r| r.id);
                    if k == self.sort {
                        self.descending = !self.descending;
                    } else {
                        self.sort = k;
                        self.descending = k.default_descending();
                    }
                    self.restore_cursor(keep);
                }
            }
            _ => {}
        }
    }

    fn on_groups_key(&mut self, key: KeyEvent) {
        match key.code {
            KeyCode::Up | KeyCode::Char('k') => self.move_group_cursor(-1),
            KeyCode::Down | KeyCode::Char('j') => self.move_group_cursor(1),
            KeyCode::PageUp => self.move_group_cursor(-10),
            KeyCode::PageDown => self.move_group_cursor(10),
            KeyCode::Home | KeyCode::Char('g') => self.group_cursor = 0,
            KeyCode::End | KeyCode::Char('G') => self.move_group_cursor(isize::MAX / 2),
            KeyCode::Enter => {
                if let Some(id) = self.cursor_group().map(|g| g.id) {
                    self.group_filter = Some(id);
                    self.show_groups = false;
                    self.filter.clear();
                    self.cursor = 0;
                }
            }
            KeyCode::Char(' ') => {
                if let Some(id) = self.cursor_group().map(|g| g.id) {
                    if let Some(i) = self.selected_groups.iter().position(|&s| s == id) {
                        self.selected_groups.remove(i);
                    } else {
                        if self.selected_groups.len() == 2 {
                            // A comparison has two sides: the oldest pick makes room.
                            self.selected_groups.remove(0);
                        }
                        self.selected_groups.push(id);
                    }
                    self.move_group_cursor(1);
                }
            }
            KeyCode::Char('x') => self.selected_groups.clear(),
            KeyCode::Char('c') => {
                if self.selected_groups.len() == 2 {
                    self.compare_groups = true;
                    self.group_compare = None;
                    self.view = View::Compare;
                } else {
                    self.notice = Some(
                        "select two groups with space to compare (the first picked is A, the second B)"
                            .into(),
                    );
                }
            }
            KeyCode::Char('/') => self.filter_editing = true,
            _ => {}
        }
    }

    fn set_sort(&mut self, by: isize) {
        let keep = self.cursor_run().map(|r| r.id);
        self.sort = self.sort.shifted(by);
        self.descending = self.sort.default_descending();
        self.restore_cursor(keep);
    }

    fn on_live_key(&mut self, key: KeyEvent) {
        match key.code {
            KeyCode::Char('r') => self.raw = !self.raw,
            KeyCode::Char('+') | KeyCode::Char('=') => {
                self.smoothing = ((self.smoothing + 0.05) * 100.0).round() / 100.0;
                self.smoothing = self.smoothing.min(0.99);
            }
            KeyCode::Char('-') => {
                self.smoothing = ((self.smoothing - 0.05) * 100.0).round() / 100.0;
                self.smoothing = self.smoothing.max(0.0);
            }
            KeyCode::Char('s') => {
                let names = self
                    .live
                    .as_ref()
                    .map(|d| d.stage_names())
                    .unwrap_or_default();
                self.stage_pick = next_stage(&names, self.stage_pick.as_deref());
            }
            KeyCode::Char('f') => {
                self.follow = Follow::Auto;
                self.stage_pick = None;
                self.notice = Some("following the newest running run".into());
            }
            KeyCode::Up | KeyCode::Char('k') | KeyCode::Down | KeyCode::Char('j') => {
                // Step through runs without going back to the table.
                let by = if matches!(key.code, KeyCode::Up | KeyCode::Char('k')) {
                    -1
                } else {
                    1
                };
                if let Some(cur) = self.live_target() {
                    let ids: Vec<i64> = self.visible_runs().iter().map(|r| r.id).collect();
                    if let Some(i) = ids.iter().position(|&id| id == cur) {
                        let j = (i as isize + by).clamp(0, ids.len() as isize - 1) as usize;
                        self.follow = Follow::Run(ids[j]);
                        self.cursor = j;
                        self.stage_pick = None;
                    }
                }
            }
            _ => {}
        }
    }

    fn on_compare_key(&mut self, key: KeyEvent) {
        match key.code {
            KeyCode::Char('v') => self.compare_groups = !self.compare_groups,
            KeyCode::Char('r') => self.raw = !self.raw,
            KeyCode::Char('s') => {
                let mut names: Vec<String> = Vec::new();
                for d in &self.compare {
                    for n in d.stage_names() {
                        if !names.contains(&n) {
                            names.push(n);
                        }
                    }
                }
                self.stage_pick = next_stage(&names, self.stage_pick.as_deref());
            }
            KeyCode::Char('x') if self.compare_groups => {
                self.selected_groups.clear();
                self.group_compare = None;
                self.compare_groups = false;
                self.view = View::Runs;
            }
            KeyCode::Char('x') => {
                self.selected.clear();
                self.compare.clear();
                self.view = View::Runs;
            }
            _ => {}
        }
    }
}

fn next_stage(names: &[String], current: Option<&str>) -> Option<String> {
    if names.is_empty() {
        return None;
    }
    let i = current
        .and_then(|c| names.iter().position(|n| n == c))
        .map(|i| (i + 1) % names.len())
        .unwrap_or(0);
    Some(names[i].clone())
}

/// Orders two runs by `key` (metrics: the figures of stage `pick`, else of
/// each run's best stage); missing values always sort last, ties by id.
fn compare_runs(
    a: &RunSummary,
    b: &RunSummary,
    key: SortKey,
    desc: bool,
    pick: Option<&str>,
) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    fn opt<T: PartialOrd>(a: Option<T>, b: Option<T>, desc: bool) -> Ordering {
        match (a, b) {
            (Some(x), Some(y)) => {
                let o = x.partial_cmp(&y).unwrap_or(Ordering::Equal);
                if desc {
                    o.reverse()
                } else {
                    o
                }
            }
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => Ordering::Equal,
        }
    }
    let finite = |v: Option<f64>| v.filter(|x| x.is_finite());
    let test_auc = |r: &RunSummary| match pick {
        None => r.test_auc,
        Some(_) => r.figures(pick).and_then(|f| f.test_auc),
    };
    let test_logloss = |r: &RunSummary| match pick {
        None => r.test_logloss,
        Some(_) => r.figures(pick).and_then(|f| f.test_logloss),
    };
    let o = match key {
        SortKey::Id => opt(Some(a.id), Some(b.id), desc),
        SortKey::Experiment => opt(Some(&a.experiment), Some(&b.experiment), desc),
        SortKey::Name => opt(Some(&a.name), Some(&b.name), desc),
        SortKey::Sweep => opt(a.sweep_point.as_ref(), b.sweep_point.as_ref(), desc),
        SortKey::Status => opt(Some(a.status), Some(b.status), desc),
        SortKey::TestAuc => opt(finite(test_auc(a)), finite(test_auc(b)), desc),
        SortKey::LogLoss => opt(finite(test_logloss(a)), finite(test_logloss(b)), desc),
        SortKey::Duration => opt(finite(a.duration_s), finite(b.duration_s), desc),
        SortKey::Started => opt(Some(&a.started_at), Some(&b.started_at), desc),
    };
    o.then_with(|| b.id.cmp(&a.id))
}
