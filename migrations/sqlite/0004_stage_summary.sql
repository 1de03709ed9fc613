-- Stage figures, and the best stage of each run.
--
-- stage_summary: one row per run × stage with its final figures:
--   valid_auc / valid_logloss: the best over the stage's epochs;
--   test_auc / test_logloss: its test evaluation (at the best epoch; NULL until it has one).
CREATE VIEW stage_summary AS
SELECT
    st.run_id   AS run_id,
    st.stage    AS stage,
    st.ord      AS ord,
    st.kind     AS kind,
    st.status   AS status,
    st.best_epoch AS best_epoch,
    st.seconds  AS seconds,
    st.train_samples_per_s AS train_samples_per_s,
    st.infer_samples_per_s AS infer_samples_per_s,
    (SELECT MAX(e.auc) FROM evaluations e
       WHERE e.run_id = st.run_id AND e.stage = st.stage AND e.split = 'valid') AS valid_auc,
    (SELECT MIN(e.logloss) FROM evaluations e
       WHERE e.run_id = st.run_id AND e.stage = st.stage AND e.split = 'valid') AS valid_logloss,
    (SELECT e.auc FROM evaluations e
       WHERE e.run_id = st.run_id AND e.stage = st.stage AND e.split = 'test'
       ORDER BY e.epoch DESC LIMIT 1) AS test_auc,
    (SELECT e.logloss FROM evaluations e
       WHERE e.run_id = st.run_id AND e.stage = st.stage AND e.split = 'test'
       ORDER BY e.epoch DESC LIMIT 1) AS test_logloss
FROM stages st;

-- run_summary as in 0003 (with the run's group), but its figures are those of the best stage:
-- best_stage: the stage with the highest validation AUC (the later one on a
-- tie; without validation AUCs, the last stage with a test AUC), so a
-- ClickPrompt run's joint result is not hidden behind its CTR-only stage and
-- the test set never chooses; best_valid_auc: that stage's best validation
-- AUC; test_auc / test_logloss: its test evaluation.
-- final_stage stays the last stage with an AUC evaluation.
DROP VIEW run_summary;
CREATE VIEW run_summary AS
SELECT
    b.*,
    (SELECT MAX(e.auc) FROM evaluations e
       WHERE e.run_id = b.id AND e.stage = b.best_stage AND e.split = 'valid') AS best_valid_auc,
    (SELECT e.auc FROM evaluations e
       WHERE e.run_id = b.id AND e.stage = b.best_stage AND e.split = 'test'
       ORDER BY e.epoch DESC LIMIT 1) AS test_auc,
    (SELECT e.logloss FROM evaluations e
       WHERE e.run_id = b.id AND e.stage = b.best_stage AND e.split = 'test'
       ORDER BY e.epoch DESC LIMIT 1) AS test_logloss
FROM (
    SELECT
        r.id            AS id,
        x.name          AS experiment,
        r.name          AS name,
        r.sweep_point   AS sweep_point,
        r.status        AS status,
        r.started_at    AS started_at,
        r.ended_at      AS ended_at,
        ROUND((julianday(COALESCE(r.ended_at, 'now')) - julianday(r.started_at)) * 86400.0, 3) AS duration_s,
        r.device        AS device,
        r.host          AS host,
        r.seed          AS seed,
        r.crate_version AS crate_version,
        r.error         AS error,
        (SELECT s.stage FROM stages s
           WHERE s.run_id = r.id
             AND EXISTS (SELECT 1 FROM evaluations e
                           WHERE e.run_id = r.id AND e.stage = s.stage
                             AND e.split IN ('valid', 'test') AND e.auc IS NOT NULL)
           ORDER BY s.ord DESC LIMIT 1) AS final_stage,
        (SELECT ss.stage FROM stage_summary ss
           WHERE ss.run_id = r.id AND (ss.valid_auc IS NOT NULL OR ss.test_auc IS NOT NULL)
           ORDER BY ss.valid_auc IS NULL, ss.valid_auc DESC, ss.ord DESC LIMIT 1) AS best_stage,
        r.group_id      AS group_id,
        g.name          AS group_name
    FROM runs r
    JOIN experiments x ON x.id = r.experiment_id
    LEFT JOIN run_groups g ON g.id = r.group_id
) b;
