-- clickprompt run database, schema version 1.
-- Shaped after MLflow's tracking store: experiments → runs → params/metrics/evaluations/artifacts.

CREATE TABLE experiments (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,
    source_path TEXT NOT NULL,
    file_hash   TEXT NOT NULL,          -- sha256 of the .cp source
    source_text TEXT NOT NULL,
    created_at  TEXT NOT NULL,          -- RFC 3339 UTC
    UNIQUE (name, file_hash)
);

CREATE TABLE runs (
    id          INTEGER PRIMARY KEY,
    experiment_id INTEGER NOT NULL REFERENCES experiments(id) ON DELETE CASCADE,
    name        TEXT NOT NULL,          -- plan name (sweep points: sweep[param=value])
    sweep_point TEXT,                   -- "prompts=5,ctr=dcnv2" or NULL
    status      TEXT NOT NULL CHECK (status IN ('RUNNING','FINISHED','FAILED','INTERRUPTED')),
    started_at  TEXT NOT NULL,
    ended_at    TEXT,
    device      TEXT NOT NULL,
    host        TEXT NOT NULL,
    pid         INTEGER NOT NULL,       -- to detect runs whose process died (kill -9)
    crate_version TEXT NOT NULL,
    seed        INTEGER NOT NULL,
    plan_yaml   TEXT NOT NULL,
    error       TEXT
);
CREATE INDEX runs_by_experiment ON runs(experiment_id);
CREATE INDEX runs_by_status ON runs(status);

CREATE TABLE params (
    run_id  INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    key     TEXT NOT NULL,
    value   TEXT NOT NULL,
    PRIMARY KEY (run_id, key)
);
CREATE INDEX params_by_key ON params(key, value);

CREATE TABLE metrics (
    run_id  INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    stage   TEXT NOT NULL,
    epoch   INTEGER,
    step    INTEGER NOT NULL,
    key     TEXT NOT NULL,              -- loss, lr, samples_per_s, mlm_acc, ...
    value   REAL,                       -- NULL when not finite (NaN loss steps)
    ts      TEXT NOT NULL
);
CREATE INDEX metrics_by_run ON metrics(run_id, stage, key, step);

CREATE TABLE evaluations (
    run_id  INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    stage   TEXT NOT NULL,
    epoch   INTEGER NOT NULL,           -- the best epoch for the final test evaluation
    split   TEXT NOT NULL CHECK (split IN ('train','valid','test')),
    auc     REAL,
    logloss REAL,
    extra_json TEXT NOT NULL DEFAULT '{}',
    ts      TEXT NOT NULL,
    PRIMARY KEY (run_id, stage, epoch, split)
);
CREATE INDEX evaluations_by_split ON evaluations(split, auc);

CREATE TABLE stages (
    run_id  INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    stage   TEXT NOT NULL,
    ord     INTEGER NOT NULL,
    kind    TEXT NOT NULL,
    epochs  INTEGER NOT NULL,
    steps_per_epoch INTEGER NOT NULL,
    rows    INTEGER NOT NULL,
    status  TEXT NOT NULL,              -- RUNNING / FINISHED
    best_epoch INTEGER,
    seconds REAL,
    train_samples_per_s REAL,
    infer_samples_per_s REAL,
    PRIMARY KEY (run_id, stage)
);

CREATE TABLE artifacts (
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
    run_id  INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    ts      TEXT NOT NULL,
    level   TEXT NOT NULL,
    message TEXT NOT NULL
);
CREATE INDEX logs_by_run ON logs(run_id);
