-- Stage figures and the best stage of each run on PostgreSQL: the same views, columns and
-- best-stage rule as migrations/sqlite/0004_stage_summary.sql (see there for what they hold).
-- `valid_auc IS NULL` sorts FALSE before TRUE as SQLite's 0 before 1, so stages with a
-- validation AUC come first and PostgreSQL's NULLS FIRST for DESC never comes into play.
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
        ROUND(EXTRACT(EPOCH FROM (COALESCE(r.ended_at::timestamptz, now()) - r.started_at::timestamptz)), 3)
            ::DOUBLE PRECISION AS duration_s,
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
