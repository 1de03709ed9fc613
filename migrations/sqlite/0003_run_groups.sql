-- Run groups: the runs that repeat one configuration over seeds (`seeds [1, 2, 3]` in an
-- experiment, or a sweep's `seed` axis). A group is named after its runs without their seed
-- assignment (`scratch` for `scratch[seed=2]`, `sw[prompts=5]` for `sw[prompts=5,seed=2]`);
-- a run without seed repeats is a group of one, named after itself.
--
-- key = <file_hash> || '/' || <group name>: the same experiment file run on several machines
-- or processes puts its seeds in one group (inserted with ON CONFLICT (key) DO NOTHING, then
-- read back). file_hash is 64 hex digits, so the key splits unambiguously.
CREATE TABLE run_groups (
    id            INTEGER PRIMARY KEY,
    key           TEXT NOT NULL UNIQUE,
    name          TEXT NOT NULL,
    experiment_id INTEGER REFERENCES experiments(id) ON DELETE CASCADE,
    created_at    TEXT NOT NULL
);

-- NULL only while a row predates this migration; the backfill below gives every old run a group.
ALTER TABLE runs ADD COLUMN group_id INTEGER REFERENCES run_groups(id) ON DELETE SET NULL;
CREATE INDEX runs_by_group ON runs(group_id);

-- Runs recorded before seeds existed: one group per (experiment file, run name).
INSERT INTO run_groups (key, name, experiment_id, created_at)
SELECT x.file_hash || '/' || r.name, r.name, MIN(r.experiment_id), MIN(r.started_at)
FROM runs r JOIN experiments x ON x.id = r.experiment_id
GROUP BY x.file_hash, r.name;

UPDATE runs SET group_id = (
    SELECT g.id FROM run_groups g JOIN experiments x ON x.id = runs.experiment_id
    WHERE g.key = x.file_hash || '/' || runs.name
);

-- run_summary gains the group (same columns as 0002 otherwise).
DROP VIEW run_summary;
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
           ORDER BY s.ord DESC LIMIT 1) AS final_stage,
        r.group_id      AS group_id,
        g.name          AS group_name
    FROM runs r
    JOIN experiments x ON x.id = r.experiment_id
    LEFT JOIN run_groups g ON g.id = r.group_id
) b;
