//! Key handling: moving, selecting, comparing, filtering, sorting, help.

mod common;

use clickprompt_tui::*;
use common::*;
use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

fn press(app: &mut App, code: KeyCode) {
    app.on_key(KeyEvent::new(code, KeyModifiers::NONE));
}

fn typed(app: &mut App, s: &str) {
    for c in s.chars() {
        press(app, KeyCode::Char(c));
    }
}

fn loaded() -> (App, Fixture) {
    let mut fix = mixed();
    let mut app = App::default();
    app.refresh(&mut fix);
    (app, fix)
}

fn ids(app: &App) -> Vec<i64> {
    app.visible_runs().iter().map(|r| r.id).collect()
}

#[test]
fn arrows_and_jk_move_within_bounds() {
    let (mut app, _) = loaded();
    assert_eq!(app.cursor_run().map(|r| r.id), Some(5));
    press(&mut app, KeyCode::Up);
    assert_eq!(app.cursor, 0);
    press(&mut app, KeyCode::Char('j'));
    press(&mut app, KeyCode::Down);
    assert_eq!(app.cursor_run().map(|r| r.id), Some(3));
    press(&mut app, KeyCode::Char('k'));
    assert_eq!(app.cursor_run().map(|r| r.id), Some(4));
    press(&mut app, KeyCode::End);
    assert_eq!(app.cursor_run().map(|r| r.id), Some(1));
    press(&mut app, KeyCode::Down);
    assert_eq!(app.cursor, 4);
    press(&mut app, KeyCode::Char('g'));
    assert_eq!(app.cursor, 0);
}

#[test]
fn enter_opens_the_run_under_the_cursor_live() {
    let (mut app, mut fix) = loaded();
    press(&mut app, KeyCode::Down);
    press(&mut app, KeyCode::Down);
    press(&mut app, KeyCode::Enter);
    assert_eq!(app.view, View::Live);
    assert_eq!(app.follow, Follow::Run(3));
    app.refresh(&mut fix);
    assert_eq!(app.live.as_ref().map(|d| d.summary.id), Some(3));
    // j/k step through runs from the live view.
    press(&mut app, KeyCode::Char('j'));
    assert_eq!(app.follow, Follow::Run(2));
    // f goes back to following the running run.
    press(&mut app, KeyCode::Char('f'));
    assert_eq!(app.follow, Follow::Auto);
    assert_eq!(app.live_target(), Some(5));
}

#[test]
fn space_selects_and_c_compares_only_with_two_runs() {
    let (mut app, mut fix) = loaded();
    press(&mut app, KeyCode::Char(' '));
    assert_eq!(app.selected, vec![5]);
    assert_eq!(app.cursor, 1, "space moves on to the next run");
    press(&mut app, KeyCode::Char('c'));
    assert_eq!(app.view, View::Runs);
    assert!(app.notice.as_deref().unwrap_or("").contains("at least 2"));
    press(&mut app, KeyCode::Char(' '));
    press(&mut app, KeyCode::Char(' '));
    assert_eq!(app.selected, vec![5, 4, 3]);
    // Space again unselects.
    press(&mut app, KeyCode::Up);
    press(&mut app, KeyCode::Char(' '));
    assert_eq!(app.selected, vec![5, 4]);
    press(&mut app, KeyCode::Char('c'));
    assert_eq!(app.view, View::Compare);
    app.refresh(&mut fix);
    let shown: Vec<i64> = app.compare.iter().map(|d| d.summary.id).collect();
    assert_eq!(shown, vec![5, 4]);
    // x clears the selection and goes back to the table.
    press(&mut app, KeyCode::Char('x'));
    assert!(app.selected.is_empty());
    assert_eq!(app.view, View::Runs);
}

#[test]
fn typing_filters_and_esc_clears() {
    let (mut app, _) = loaded();
    press(&mut app, KeyCode::Char('/'));
    assert!(app.filter_editing);
    // Letters go to the filter, not to the key bindings (q must not quit).
    typed(&mut app, "prompts=q");
    assert!(!app.quit);
    assert!(ids(&app).is_empty());
    press(&mut app, KeyCode::Backspace);
    assert_eq!(app.filter, "prompts=");
    assert_eq!(ids(&app), vec![4, 2, 1]);
    typed(&mut app, "5 FIN");
    assert_eq!(ids(&app), vec![2], "words all match, case-insensitive");
    press(&mut app, KeyCode::Enter);
    assert!(!app.filter_editing);
    assert_eq!(app.cursor_run().map(|r| r.id), Some(2));
    // Esc clears the filter before it quits.
    press(&mut app, KeyCode::Esc);
    assert_eq!(app.filter, "");
    assert!(!app.quit);
    assert_eq!(ids(&app).len(), 5);
    press(&mut app, KeyCode::Esc);
    assert!(app.quit);
}

#[test]
fn filter_matches_status_and_id() {
    let (mut app, _) = loaded();
    press(&mut app, KeyCode::Char('/'));
    typed(&mut app, "failed");
    assert_eq!(ids(&app), vec![3]);
    press(&mut app, KeyCode::Esc);
    assert!(!app.filter_editing);
    assert_eq!(ids(&app).len(), 5);
    press(&mut app, KeyCode::Char('/'));
    typed(&mut app, "#4");
    assert_eq!(ids(&app), vec![4]);
}

#[test]
fn sorting_by_any_column_keeps_missing_values_last() {
    let (mut app, _) = loaded();
    assert_eq!(ids(&app), vec![5, 4, 3, 2, 1]);
    // 6 = Test AUC, best first; runs without a test AUC go last.
    press(&mut app, KeyCode::Char('6'));
    assert_eq!(app.sort, SortKey::TestAuc);
    assert_eq!(ids(&app), vec![2, 1, 4, 5, 3]);
    press(&mut app, KeyCode::Char('6'));
    assert_eq!(
        ids(&app),
        vec![4, 1, 2, 5, 3],
        "reversed, still missing last"
    );
    // s walks the columns: LogLoss ascending (lower is better).
    press(&mut app, KeyCode::Char('s'));
    assert_eq!(app.sort, SortKey::LogLoss);
    assert_eq!(ids(&app), vec![2, 1, 4, 5, 3]);
    press(&mut app, KeyCode::Char('r'));
    assert_eq!(ids(&app), vec![4, 1, 2, 5, 3]);
    // Every column sorts without panicking and keeps all rows.
    for _ in 0..SortKey::ALL.len() {
        press(&mut app, KeyCode::Char('S'));
        assert_eq!(ids(&app).len(), 5);
    }
    press(&mut app, KeyCode::Char('3'));
    assert_eq!(app.sort, SortKey::Name);
    assert_eq!(ids(&app)[0], 4, "an-extremely-long… sorts first");
}

#[test]
fn cursor_stays_on_its_run_when_the_order_changes() {
    let (mut app, mut fix) = loaded();
    press(&mut app, KeyCode::Down);
    press(&mut app, KeyCode::Down);
    assert_eq!(app.cursor_run().map(|r| r.id), Some(3));
    press(&mut app, KeyCode::Char('r'));
    assert_eq!(app.cursor_run().map(|r| r.id), Some(3));
    // A new run arriving on refresh does not move the cursor off run 3.
    fix.0.push(finished_run(6, "10", [0.7, 0.7, 0.7], 0.7));
    app.refresh(&mut fix);
    assert_eq!(app.cursor_run().map(|r| r.id), Some(3));
}

#[test]
fn help_opens_and_any_key_closes_without_acting() {
    let (mut app, _) = loaded();
    press(&mut app, KeyCode::Char('?'));
    assert!(app.help);
    press(&mut app, KeyCode::Char('q'));
    assert!(!app.help);
    assert!(!app.quit, "q closes the help first");
    press(&mut app, KeyCode::Char('?'));
    press(&mut app, KeyCode::Down);
    assert_eq!(app.cursor, 0);
    press(&mut app, KeyCode::Char('q'));
    assert!(app.quit);
}

#[test]
fn tab_cycles_views_and_ctrl_c_interrupts() {
    let (mut app, _) = loaded();
    press(&mut app, KeyCode::Tab);
    assert_eq!(app.view, View::Live);
    press(&mut app, KeyCode::Tab);
    assert_eq!(app.view, View::Compare);
    press(&mut app, KeyCode::Tab);
    assert_eq!(app.view, View::Runs);
    press(&mut app, KeyCode::BackTab);
    assert_eq!(app.view, View::Compare);
    // Key releases (Windows terminals) are ignored.
    let mut release = KeyEvent::new(KeyCode::Char('q'), KeyModifiers::NONE);
    release.kind = KeyEventKind::Release;
    app.on_key(release);
    assert!(!app.quit);
    app.on_key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL));
    assert!(app.quit && app.interrupted);
}

#[test]
fn live_keys_toggle_raw_smoothing_and_stage() {
    let mut fix = mixed();
    let mut app = App::new(Follow::Run(2), View::Live);
    app.refresh(&mut fix);
    press(&mut app, KeyCode::Char('r'));
    assert!(app.raw);
    press(&mut app, KeyCode::Char('r'));
    assert!(!app.raw);
    press(&mut app, KeyCode::Char('+'));
    assert!((app.smoothing - 0.65).abs() < 1e-9);
    for _ in 0..30 {
        press(&mut app, KeyCode::Char('-'));
    }
    assert_eq!(app.smoothing, 0.0);
    for _ in 0..30 {
        press(&mut app, KeyCode::Char('+'));
    }
    assert!(app.smoothing <= 0.99);
    press(&mut app, KeyCode::Char('s'));
    assert_eq!(app.stage_pick.as_deref(), Some("pretrain"));
    press(&mut app, KeyCode::Char('s'));
    assert_eq!(app.stage_pick.as_deref(), Some("finetune"));
    let text = render_text(&app, 120, 36);
    assert!(text.contains("Loss · finetune"), "{text}");
}

#[test]
fn follow_after_picks_up_the_new_run_and_data_errors_show() {
    struct Failing;
    impl DataSource for Failing {
        fn runs(&mut self) -> Result<Vec<RunSummary>, String> {
            Err("database is locked".into())
        }
        fn run_detail(&mut self, _: i64) -> Result<RunDetail, String> {
            Err("unreachable".into())
        }
    }
    let mut fix = Fixture(vec![finished_run(1, "1", [0.7, 0.7, 0.7], 0.7)]);
    let mut app = App::new(Follow::After(1), View::Live);
    app.refresh(&mut fix);
    assert!(app.live.is_none(), "run 1 existed before we started");
    fix.0.push(nan_running_run(2));
    app.refresh(&mut fix);
    assert_eq!(app.live.as_ref().map(|d| d.summary.id), Some(2));
    app.refresh(&mut Failing);
    assert!(app
        .error
        .as_deref()
        .unwrap_or("")
        .contains("database is locked"));
    assert_eq!(
        app.live.as_ref().map(|d| d.summary.id),
        Some(2),
        "a failed poll keeps the last good data on screen"
    );
    let text = render_text(&app, 120, 36);
    assert!(text.contains("error: database is locked"), "{text}");
}

#[test]
fn a_resumed_run_is_reloaded_not_served_from_the_cache() {
    let mut fix = Fixture(vec![finished_run(1, "1", [0.7, 0.7, 0.7], 0.7)]);
    fix.0[0].summary.status = RunStatus::Interrupted;
    let mut app = App::new(Follow::Run(1), View::Live);
    app.refresh(&mut fix);
    assert_eq!(
        app.live.as_ref().unwrap().summary.status,
        RunStatus::Interrupted
    );
    // Same status: served from the cache even if the source changed.
    fix.0[0].logs.clear();
    app.refresh(&mut fix);
    assert_eq!(app.live.as_ref().unwrap().logs.len(), 2);
    // Resumed: the status differs, so the detail is fetched again.
    fix.0[0].summary.status = RunStatus::Running;
    app.refresh(&mut fix);
    let d = app.live.as_ref().unwrap();
    assert_eq!(d.summary.status, RunStatus::Running);
    assert!(d.logs.is_empty());
}

#[test]
fn v_toggles_groups_and_groups_are_picked_as_a_then_b() {
    let mut fix = grouped();
    let mut app = App::default();
    app.refresh(&mut fix);
    assert!(app.groups.is_empty(), "groups are fetched only when shown");
    press(&mut app, KeyCode::Char('v'));
    assert!(app.show_groups);
    app.refresh(&mut fix);
    // Newest group first.
    let gids: Vec<i64> = app.visible_groups().iter().map(|g| g.id).collect();
    assert_eq!(gids, [7, 6, 2]);
    // c with fewer than two groups says what to do.
    press(&mut app, KeyCode::Char('c'));
    assert_eq!(app.view, View::Runs);
    assert!(app.notice.as_deref().unwrap_or("").contains("two groups"));
    // Pick scratch (g6) as A, then clickprompt (g7) as B.
    press(&mut app, KeyCode::Down);
    press(&mut app, KeyCode::Char(' '));
    press(&mut app, KeyCode::Char('g'));
    press(&mut app, KeyCode::Char(' '));
    assert_eq!(app.selected_groups, [6, 7]);
    // A third pick replaces the oldest.
    press(&mut app, KeyCode::Char('G'));
    press(&mut app, KeyCode::Char(' '));
    assert_eq!(app.selected_groups, [7, 2]);
    // Space on a picked group unpicks it.
    press(&mut app, KeyCode::Char(' '));
    assert_eq!(app.selected_groups, [7]);
    press(&mut app, KeyCode::Char('x'));
    assert!(app.selected_groups.is_empty());
    press(&mut app, KeyCode::Char('g'));
    press(&mut app, KeyCode::Char('j'));
    press(&mut app, KeyCode::Char(' '));
    press(&mut app, KeyCode::Char('k'));
    press(&mut app, KeyCode::Char('k'));
    press(&mut app, KeyCode::Char(' '));
    assert_eq!(app.selected_groups, [6, 7]);
    press(&mut app, KeyCode::Char('c'));
    assert_eq!(app.view, View::Compare);
    assert!(app.compare_groups);
    app.refresh(&mut fix);
    let c = app.group_compare.as_ref().expect("comparison loaded");
    assert_eq!((c.a.id, c.b.id), (6, 7));
    // v switches the Compare view back to runs; x leaves for the groups table.
    press(&mut app, KeyCode::Char('v'));
    assert!(!app.compare_groups);
    press(&mut app, KeyCode::Char('v'));
    press(&mut app, KeyCode::Char('x'));
    assert_eq!(app.view, View::Runs);
    assert!(app.show_groups && app.selected_groups.is_empty() && app.group_compare.is_none());
}

#[test]
fn enter_on_a_group_lists_its_runs_and_esc_lists_all_again() {
    let mut fix = grouped();
    let mut app = App::default();
    app.refresh(&mut fix);
    let all = ids(&app).len();
    assert_eq!(all, 11);
    press(&mut app, KeyCode::Char('v'));
    app.refresh(&mut fix);
    press(&mut app, KeyCode::Down); // g6 scratch
    press(&mut app, KeyCode::Enter);
    assert!(!app.show_groups);
    assert_eq!(app.group_filter, Some(6));
    assert_eq!(ids(&app), [8, 7, 6]);
    assert_eq!(app.group_filter_name().as_deref(), Some("g6 scratch"));
    press(&mut app, KeyCode::Esc);
    assert!(!app.quit, "Esc first clears the group");
    assert_eq!(ids(&app).len(), all);
    press(&mut app, KeyCode::Esc);
    assert!(app.quit);
}

#[test]
fn the_filter_applies_to_groups_too() {
    let mut fix = grouped();
    let mut app = App::default();
    press(&mut app, KeyCode::Char('v'));
    app.refresh(&mut fix);
    press(&mut app, KeyCode::Char('/'));
    typed(&mut app, "click");
    press(&mut app, KeyCode::Enter);
    let gids: Vec<i64> = app.visible_groups().iter().map(|g| g.id).collect();
    assert_eq!(gids, [7]);
    assert_eq!(app.cursor_group().map(|g| g.id), Some(7));
    // Runs match their group's name as well.
    press(&mut app, KeyCode::Char('v'));
    assert_eq!(ids(&app), [11, 10, 9]);
}

#[test]
fn a_source_without_groups_shows_none() {
    let (mut app, mut fix) = loaded();
    press(&mut app, KeyCode::Char('v'));
    app.refresh(&mut fix);
    assert!(app.groups.is_empty());
    assert!(app.error.is_none());
}

#[test]
fn t_cycles_the_stage_whose_figures_sort_the_table() {
    let mut fix = clickprompt_runs();
    let mut app = App::default();
    app.refresh(&mut fix);
    assert_eq!(app.figure_stages(), vec!["joint", "ctr_only"]);
    // Test AUC, best first: by each run's best stage (3: ctr_only 0.788 on
    // the tie; 2: ctr_only 0.781; 1: joint 0.779), the failed run last.
    press(&mut app, KeyCode::Char('6'));
    assert_eq!(app.sort, SortKey::TestAuc);
    assert_eq!(ids(&app), vec![3, 2, 1, 4]);
    press(&mut app, KeyCode::Char('t'));
    assert_eq!(app.figures_stage.as_deref(), Some("joint"));
    assert_eq!(ids(&app), vec![3, 1, 2, 4]);
    press(&mut app, KeyCode::Char('t'));
    assert_eq!(app.figures_stage.as_deref(), Some("ctr_only"));
    assert_eq!(ids(&app), vec![3, 2, 1, 4]);
    press(&mut app, KeyCode::Char('t'));
    assert_eq!(app.figures_stage, None);
    // With no stage figures at all, `t` says so and stays on the best stage.
    let mut empty = Fixture(vec![failed_run(1)]);
    let mut app = App::default();
    app.refresh(&mut empty);
    press(&mut app, KeyCode::Char('t'));
    assert_eq!(app.figures_stage, None);
    assert!(app
        .notice
        .as_deref()
        .unwrap_or("")
        .contains("no run has stage figures"));
}
