-- The run_summary view, column for column as in migrations/sqlite/0002_run_summary.sql. The only
-- difference is the date arithmetic of duration_s: SQLite's julianday() there, the text timestamps
-- cast to timestamptz here (both round to milliseconds).
CREATE VIEW run_summary AS
SELECT
    b.*,
    (SELECT MAX(e.auc) FROM evaluations e
       WHERE e.run_id = b.id AND e.stage = b.final_stage AND e.split = 'valid') AS best_valid_auc,
    (SELECT e.auc FROM evaluations e
       WHERE e.run_id = b.id AND e.stage = b.final_stage AND e.split = 'test'
       ORDER BY e.epoch DESC LIMIT 1) AS test_auc,
    (SELECT e.logloss FROM evaluations e
       WHERE e.run_id = b.id AND e.stage = b.final_stage AND e.split = 'test'
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
           ORDER BY s.ord DESC LIMIT 1) AS final_stage
    FROM runs r
    JOIN experiments x ON x.id = r.experiment_id
) b;
