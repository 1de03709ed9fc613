-- One row per run with the numbers `clickprompt runs list` shows. A view, so `sqlite3 runs.db
-- 'SELECT * FROM run_summary'` gives the same answers as the CLI.
--
-- final_stage: the last stage (in execution order) with an AUC evaluation on valid or test.
-- best_valid_auc: the highest validation AUC of that stage over its epochs;
-- test_auc / test_logloss: its test evaluation (NULL until the stage has one).
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
           ORDER BY s.ord DESC LIMIT 1) AS final_stage
    FROM runs r
    JOIN experiments x ON x.id = r.experiment_id
) b;
