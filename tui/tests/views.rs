//! Snapshot tests of every view rendered off-screen from fixture data.

mod common;

use clickprompt_tui::*;
use common::*;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

const W: u16 = 120;
const H: u16 = 36;

fn key(c: KeyCode) -> KeyEvent {
    KeyEvent::new(c, KeyModifiers::NONE)
}

fn app_with(fix: &mut Fixture, follow: Follow, view: View) -> App {
    let mut app = App::new(follow, view);
    app.refresh(fix);
    app
}

#[test]
fn empty_database_runs_view() {
    let mut fix = Fixture(vec![]);
    let app = app_with(&mut fix, Follow::Auto, View::Runs);
    let text = render_text(&app, W, H);
    assert!(text.contains("no runs yet"), "{text}");
    assert!(text.contains("Runs · 0 of 0"), "{text}");
    snapshot("runs_empty", &text);
}

#[test]
fn empty_database_live_and_compare_views() {
    let mut fix = Fixture(vec![]);
    let app = app_with(&mut fix, Follow::Auto, View::Live);
    let text = render_text(&app, W, H);
    assert!(text.contains("no runs yet"), "{text}");
    let app = app_with(&mut fix, Follow::After(0), View::Live);
    assert!(render_text(&app, W, H).contains("waiting for the run to start"));
    let app = app_with(&mut fix, Follow::Auto, View::Compare);
    let text = render_text(&app, W, H);
    assert!(text.contains("select two or more runs"), "{text}");
    snapshot("compare_empty", &text);
}

#[test]
fn runs_view_lists_every_kind_of_run() {
    let mut fix = mixed();
    let app = app_with(&mut fix, Follow::Auto, View::Runs);
    let text = render_text(&app, W, H);
    // Newest first; the running one is marked live, the failed one says so.
    let lines: Vec<&str> = text.lines().collect();
    let row = |id: &str| {
        lines
            .iter()
            .position(|l| l.starts_with('│') && l.contains(&format!(" {id}     ")))
            .unwrap_or_else(|| panic!("no row {id}\n{text}"))
    };
    assert!(row("5") < row("4") && row("4") < row("1"));
    assert!(lines[row("5")].contains("● live"), "{text}");
    assert!(lines[row("3")].contains("FAILED"), "{text}");
    assert!(lines[row("2")].contains("0.7390"), "{text}");
    // The long name is cut with an ellipsis, not wrapped or overflowing.
    assert!(lines[row("4")].contains("an-extremely-long"), "{text}");
    assert!(!text.contains("reasonable-column-width-sweep"), "{text}");
    assert!(lines.iter().all(|l| l.chars().count() <= W as usize));
    snapshot("runs_mixed", &text);
}

#[test]
fn live_view_of_a_finished_run() {
    let mut fix = mixed();
    let app = app_with(&mut fix, Follow::Run(2), View::Live);
    let text = render_text(&app, W, H);
    for want in [
        "scratch",
        "#2 sweep[prompts=5]",
        "FINISHED",
        "pretrain (mlm)",
        "finetune (ctr)",
        "best epoch 3",
        "Loss · finetune · EMA 0.60",
        "Learning rate",
        "Validation · finetune",
        "test @3",
        "0.7390",
        "samples/s · now",
        "MLM head created, not loaded",
    ] {
        assert!(text.contains(want), "missing {want:?}\n{text}");
    }
    snapshot("live_finished", &text);
}

#[test]
fn live_view_of_a_failed_run_shows_the_error() {
    let mut fix = mixed();
    let app = app_with(&mut fix, Follow::Run(3), View::Live);
    let text = render_text(&app, W, H);
    assert!(text.contains("FAILED"), "{text}");
    assert!(
        text.contains("error: data file train.csv: line 17"),
        "{text}"
    );
    assert!(text.contains("no evaluation yet"), "{text}");
    assert!(
        text.contains("stopped at epoch 1/2 · step 4/20 · 20%"),
        "{text}"
    );
    snapshot("live_failed", &text);
}

#[test]
fn live_view_with_nan_loss_steps() {
    let mut fix = mixed();
    // Auto-follow picks the running run.
    let mut app = app_with(&mut fix, Follow::Auto, View::Live);
    assert_eq!(app.live.as_ref().map(|d| d.summary.id), Some(5));
    let text = render_text(&app, W, H);
    assert!(text.contains("RUNNING"), "{text}");
    assert!(text.contains("3 NaN steps skipped"), "{text}");
    assert!(
        text.contains("NaN ×3"),
        "legend marks the NaN steps\n{text}"
    );
    // The markers sit on the chart's top row, one per NaN step (two are
    // adjacent steps and may share a cell).
    let top = text
        .lines()
        .find(|l| l.contains("│0.6"))
        .unwrap_or_default();
    assert!(top.matches('•').count() >= 2, "{text}");
    // 40 of 100 steps in 80 s: 60 steps left at 2 s each.
    assert!(
        text.contains("epoch 2/4 · step 40/100 · 40% · ETA 2m00s"),
        "{text}"
    );
    assert!(text.contains("pending · 1 epochs"), "{text}");
    assert!(text.contains("non-finite loss at step 10"), "{text}");
    snapshot("live_nan", &text);
    app.on_key(key(KeyCode::Char('r')));
    let raw = render_text(&app, W, H);
    assert!(raw.contains("Loss · finetune · raw"), "{raw}");
}

#[test]
fn live_view_of_the_long_name_survives_a_narrow_terminal() {
    let mut fix = mixed();
    let app = app_with(&mut fix, Follow::Run(4), View::Live);
    for (w, h) in [(W, H), (60, 20), (30, 10), (10, 4), (1, 1)] {
        let text = render_text(&app, w, h);
        assert!(text.lines().all(|l| l.chars().count() <= w as usize));
    }
    let text = render_text(&app, W, H);
    assert!(text.contains("#4 an-extremely-long"), "{text}");
    snapshot("live_long_name", &text);
}

#[test]
fn compare_view_of_a_sweep() {
    let mut fix = mixed();
    let mut app = app_with(&mut fix, Follow::Auto, View::Runs);
    // Pick runs 2 and 1 (rows 4 and 5 from the top, newest first).
    app.on_key(key(KeyCode::Char('G')));
    app.on_key(key(KeyCode::Char(' ')));
    app.on_key(key(KeyCode::Char('k')));
    app.on_key(key(KeyCode::Char(' ')));
    assert_eq!(app.selected, vec![1, 2]);
    app.on_key(key(KeyCode::Char('c')));
    assert_eq!(app.view, View::Compare);
    app.refresh(&mut fix);
    let text = render_text(&app, W, H);
    for want in [
        "Valid AUC · finetune",
        "Loss · finetune · EMA 0.60",
        "#1 prompts=1",
        "#2 prompts=5",
        "prompts",
        "test AUC",
        "0.7390 ★",
        "Test AUC (bars from 0.691)",
    ] {
        assert!(text.contains(want), "missing {want:?}\n{text}");
    }
    // Only the differing parameter is listed; lower log loss wins.
    let table: Vec<&str> = text.lines().filter(|l| l.contains("seed")).collect();
    assert!(table.is_empty(), "{text}");
    assert!(text.contains("0.1610 ★"), "{text}");
    snapshot("compare_sweep", &text);
}

#[test]
fn help_popup_lists_the_keys() {
    let mut fix = mixed();
    let mut app = app_with(&mut fix, Follow::Auto, View::Runs);
    app.on_key(key(KeyCode::Char('?')));
    let text = render_text(&app, W, H);
    assert!(text.contains(" Keys "), "{text}");
    assert!(
        text.contains("select / unselect a run for comparison"),
        "{text}"
    );
    snapshot("help", &text);
}

#[test]
fn every_view_survives_any_terminal_size() {
    let mut fix = mixed();
    let mut app = app_with(&mut fix, Follow::Run(5), View::Runs);
    app.selected = vec![1, 2, 3, 4, 5];
    for view in [View::Runs, View::Live, View::Compare] {
        app.view = view;
        app.refresh(&mut fix);
        for help in [false, true] {
            app.help = help;
            for (w, h) in [
                (200, 60),
                (80, 24),
                (40, 12),
                (20, 6),
                (3, 3),
                (1, 1),
                (0, 0),
            ] {
                let text = render_text(&app, w, h);
                assert!(text.lines().all(|l| l.chars().count() <= w as usize));
                assert_eq!(text.lines().count(), h as usize);
            }
        }
    }
}

#[test]
fn groups_view_shows_mean_sd_over_seeds() {
    let mut fix = grouped();
    let mut app = App::new(Follow::Auto, View::Runs);
    app.on_key(key(KeyCode::Char('v')));
    app.refresh(&mut fix);
    app.on_key(key(KeyCode::Char('j')));
    app.on_key(key(KeyCode::Char(' ')));
    let text = render_text(&app, W, H);
    for want in [
        "Groups · 3 of 3",
        "A g6",
        "g7",
        "clickprompt",
        "sweep[prompts=5]",
        "0.7333 ± 0.0153",
        "0.7100 ± 0.0100",
        "0.7390",
        "3/3",
        "1/2",
        "1,2,3",
        "v runs",
    ] {
        assert!(text.contains(want), "missing {want:?}\n{text}");
    }
    let lines: Vec<&str> = text.lines().collect();
    let row = |g: &str| {
        lines
            .iter()
            .position(|l| l.starts_with('│') && l.contains(&format!(" {g} ")))
            .unwrap_or_else(|| panic!("no row {g}\n{text}"))
    };
    assert!(row("g7") < row("g6") && row("g6") < row("g2"));
    assert!(lines[row("g6")].contains('A'), "{text}");
    snapshot("groups", &text);
}

#[test]
fn compare_view_of_two_groups_shows_the_paired_difference() {
    let mut fix = grouped();
    let mut app = App::new(Follow::Auto, View::Runs);
    app.on_key(key(KeyCode::Char('v')));
    app.refresh(&mut fix);
    for k in ['j', ' ', 'g', ' ', 'c'] {
        app.on_key(key(KeyCode::Char(k)));
    }
    assert_eq!(app.view, View::Compare);
    app.refresh(&mut fix);
    let text = render_text(&app, W, H);
    for want in [
        "Compare groups: B against A",
        " A  g6 scratch",
        " B  g7 clickprompt",
        "seeds 1,2,3",
        "test AUC",
        "higher",
        "0.7100 ± 0.0100",
        "0.7333 ± 0.0153",
        "+0.0233",
        "0.0120",
        "+1.94",
        "2 of 3 (1 tied)",
        "test LogLoss",
        "lower",
        "1 of 3 (1 tied)",
        "Per seed: B − A",
        "#6",
        "#11",
        "+0.0300",
        "+0.0400",
        "-0.0100",
    ] {
        assert!(text.contains(want), "missing {want:?}\n{text}");
    }
    snapshot("compare_groups", &text);
}

#[test]
fn group_views_survive_any_terminal_size() {
    let mut fix = grouped();
    let mut app = App::new(Follow::Auto, View::Runs);
    app.show_groups = true;
    app.selected_groups = vec![6, 7];
    for (view, groups) in [
        (View::Runs, true),
        (View::Compare, true),
        (View::Compare, false),
    ] {
        app.view = view;
        app.compare_groups = groups;
        app.refresh(&mut fix);
        for (w, h) in [
            (200, 60),
            (80, 24),
            (40, 12),
            (20, 6),
            (3, 3),
            (1, 1),
            (0, 0),
        ] {
            let text = render_text(&app, w, h);
            assert!(text.lines().all(|l| l.chars().count() <= w as usize));
            assert_eq!(text.lines().count(), h as usize);
        }
    }
}

#[test]
fn help_lists_the_group_keys() {
    let mut fix = grouped();
    let mut app = app_with(&mut fix.runs, Follow::Auto, View::Runs);
    app.on_key(key(KeyCode::Char('?')));
    let text = render_text(&app, W, H);
    assert!(text.contains("runs ↔ groups of seed repeats"), "{text}");
    assert!(text.contains("pick group A, then B"), "{text}");
}

#[test]
fn runs_view_shows_the_best_stage_and_any_stage_on_t() {
    let mut fix = clickprompt_runs();
    let mut app = app_with(&mut fix, Follow::Auto, View::Runs);
    // The words of run `id`'s row hold `stage` followed by `auc`.
    let shows = |text: &str, id: &str, stage: &str, auc: &str| {
        let row = text
            .lines()
            .find(|l| l.starts_with('│') && l.contains(&format!(" {id}     ")))
            .unwrap_or_else(|| panic!("no row {id}\n{text}"));
        let words: Vec<&str> = row.split_whitespace().collect();
        words.windows(2).any(|w| w == [stage, auc])
    };
    let text = render_text(&app, W, H);
    assert!(text.contains("figures: best stage"), "{text}");
    // Run 1's joint stage won on validation; run 2's CTR-only stage did;
    // run 3's tie goes to the later stage.
    assert!(shows(&text, "1", "joint", "0.7790"), "{text}");
    assert!(shows(&text, "2", "ctr_only", "0.7810"), "{text}");
    assert!(shows(&text, "3", "ctr_only", "0.7880"), "{text}");
    assert!(shows(&text, "4", "—", "—"), "{text}");
    snapshot("runs_best_stage", &text);

    app.on_key(key(KeyCode::Char('t')));
    let text = render_text(&app, W, H);
    assert!(text.contains("figures: stage joint"), "{text}");
    assert!(shows(&text, "1", "joint", "0.7790"), "{text}");
    assert!(shows(&text, "2", "joint", "0.7680"), "{text}");
    assert!(shows(&text, "3", "joint", "0.7860"), "{text}");
    snapshot("runs_stage_joint", &text);
}
