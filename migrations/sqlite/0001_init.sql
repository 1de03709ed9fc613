-- clickprompt run database, schema version 1.
-- Shaped after MLflow's tracking store: experiments → runs → params/metrics/evaluations/artifacts.
-- Timestamps are RFC 3339 UTC with milliseconds ("2026-11-29T19:00:00.123Z"), so they sort as text
-- and SQLite's date functions (julianday, strftime) accept them. Documented in docs/database.md.

CREATE TABLE experiments (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,          -- the declared experiment name
    source_path TEXT NOT NULL,          -- the .cp file as given when first recorded
    file_hash   TEXT NOT NULL,          -- sha256 (hex) of the .cp source
    source_text TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    UNIQUE (name, file_hash)
);

CREATE TABLE runs (
    id          INTEGER PRIMARY KEY,
    experiment_id INTEGER NOT NULL REFERENCES experiments(id) ON DELETE CASCADE,
    name        TEXT NOT NULL,          -- plan name (sweep points: sweep[param=value,...])
    sweep_point TEXT,                   -- "prompts=5,ctr.backbone=dcnv2" or NULL
    status      TEXT NOT NULL CHECK (status IN ('RUNNING','FINISHED','FAILED','INTERRUPTED')),
    started_at  TEXT NOT NULL,
    ended_at    TEXT,                   -- NULL while RUNNING
    device      TEXT NOT NULL,          -- resolved device: "cpu", "cuda:0"
    host        TEXT NOT NULL,
    pid         INTEGER NOT NULL,       -- process writing the run; detects runs whose process died
    proc_start  TEXT,                   -- "<boot id>:<start ticks>" of that process; guards against pid reuse
    crate_version TEXT NOT NULL,
    seed        INTEGER NOT NULL,       -- u64 stored bit-for-bit as i64
    plan_yaml   TEXT NOT NULL,          -- the resolved ExperimentPlan
    error       TEXT,                   -- FAILED: the error; INTERRUPTED: why
    resumed     INTEGER NOT NULL DEFAULT 0  -- times continued with `run --resume`
);
CREATE INDEX runs_by_experiment ON runs(experiment_id);
CREATE INDEX runs_by_status ON runs(status);

-- The plan flattened to dotted keys (ctr.backbone.name = dcnv2, stages.joint.train.lr = 0.001).
CREATE TABLE params (
    run_id  INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    key     TEXT NOT NULL,
    value   TEXT NOT NULL,              -- rendered value (JSON text for lists)
    num     REAL,                       -- the value when it is a number, for numeric filters
    PRIMARY KEY (run_id, key)
);
CREATE INDEX params_by_key ON params(key, value);

-- Per optimiser step: one row per key (loss, lr, samples_per_s).
CREATE TABLE metrics (
    id      INTEGER PRIMARY KEY,        -- insertion order; poll with "WHERE id > last_seen"
    run_id  INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    stage   TEXT NOT NULL,
    epoch   INTEGER,
    step    INTEGER NOT NULL,           -- optimiser step within the stage, from 1
    key     TEXT NOT NULL,
    value   REAL,                       -- NULL when not finite (NaN loss steps)
    ts      TEXT NOT NULL
);
CREATE INDEX metrics_by_run ON metrics(run_id, stage, key, step);
CREATE INDEX metrics_by_run_id ON metrics(run_id, id);

CREATE TABLE stages (
    run_id  INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    stage   TEXT NOT NULL,
    ord     INTEGER NOT NULL,           -- execution order, from 0
    kind    TEXT NOT NULL,              -- pa_mlm, joint, ctr_only, plm_only
    epochs  INTEGER NOT NULL,
    steps_per_epoch INTEGER NOT NULL,
    rows    INTEGER NOT NULL,           -- training rows per epoch
    status  TEXT NOT NULL CHECK (status IN ('RUNNING','FINISHED','FAILED','INTERRUPTED')),
    best_epoch INTEGER,
    seconds REAL,
    train_samples_per_s REAL,
    infer_samples_per_s REAL,
    started_at TEXT NOT NULL,
    ended_at   TEXT,
    PRIMARY KEY (run_id, stage)
);

-- Per-epoch evaluations, and the final test evaluation (epoch = the best epoch).
CREATE TABLE evaluations (
    run_id  INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    stage   TEXT NOT NULL,
    epoch   INTEGER NOT NULL,
    split   TEXT NOT NULL CHECK (split IN ('train','valid','test')),
    auc     REAL,
    logloss REAL,
    extra_json TEXT NOT NULL DEFAULT '{}',  -- other metrics: {"mlm_acc": 0.41, ...}
    ts      TEXT NOT NULL,
    PRIMARY KEY (run_id, stage, epoch, split)
);
CREATE INDEX evaluations_by_split ON evaluations(split, auc);

CREATE TABLE artifacts (
    id      INTEGER PRIMARY KEY,
    run_id  INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    stage   TEXT NOT NULL,
    epoch   INTEGER,
    path    TEXT NOT NULL,
    bytes   INTEGER NOT NULL,
    sha256  TEXT NOT NULL,
    ts      TEXT NOT NULL
);
CREATE INDEX artifacts_by_run ON artifacts(run_id);

CREATE TABLE logs (
    id      INTEGER PRIMARY KEY,        -- insertion order; poll with "WHERE id > last_seen"
    run_id  INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    ts      TEXT NOT NULL,
    level   TEXT NOT NULL CHECK (level IN ('info','warn','error')),
    message TEXT NOT NULL
);
CREATE INDEX logs_by_run ON logs(run_id, id);
