-- 0003_gate: canary-gate history (runs, evaluations, check results) and saved baselines.
-- Append-only: never edit a migration once merged; add a new numbered file.
--
-- A gate "run" is keyed by runbook content hash + baseline + candidate, so the
-- "K consecutive failing evaluations" rule works across separate CI invocations.

CREATE SEQUENCE gate_evaluation_seq START 1;

CREATE TABLE gate_runs (
    run_key       VARCHAR PRIMARY KEY,       -- sha256(runbook_hash, baseline, candidate)
    runbook_name  VARCHAR NOT NULL,
    runbook_hash  VARCHAR NOT NULL,
    baseline      VARCHAR NOT NULL,
    candidate     VARCHAR NOT NULL,
    created_at    TIMESTAMP NOT NULL
);

CREATE TABLE gate_evaluations (
    evaluation_id BIGINT PRIMARY KEY,
    run_key       VARCHAR NOT NULL,
    seq           INTEGER NOT NULL,          -- 1, 2, … within the run
    evaluated_at  TIMESTAMP NOT NULL,
    since         TIMESTAMP,
    until         TIMESTAMP,
    verdict       VARCHAR NOT NULL,          -- promote | hold | rollback | inconclusive | error
    reason        VARCHAR NOT NULL,
    report        JSON NOT NULL              -- the whole JSON document of the evaluation
);

CREATE TABLE gate_check_results (
    evaluation_id BIGINT NOT NULL,
    check_name    VARCHAR NOT NULL,
    kind          VARCHAR NOT NULL,
    severity      VARCHAR NOT NULL,
    dry_run       BOOLEAN NOT NULL,
    outcome       VARCHAR NOT NULL,          -- pass | fail | inconclusive | error
    estimate      DOUBLE,
    lower         DOUBLE,
    upper         DOUBLE,
    margin        DOUBLE,
    n_baseline    BIGINT,
    n_candidate   BIGINT,
    reason        VARCHAR NOT NULL,
    PRIMARY KEY (evaluation_id, check_name)
);

CREATE TABLE baselines (
    name        VARCHAR PRIMARY KEY,
    version     VARCHAR,
    since       TIMESTAMP,
    until       TIMESTAMP,
    created_at  TIMESTAMP NOT NULL
);

-- Per-tool figures of a baseline plus a latency sketch: exact quantiles of the attempt
-- latencies at fixed fractions (dense in the tail), enough to bound p95/p99 later.
CREATE TABLE baseline_tools (
    name           VARCHAR NOT NULL,
    tool           VARCHAR NOT NULL,
    attempts       BIGINT NOT NULL,
    calls          BIGINT NOT NULL,
    errors         BIGINT NOT NULL,
    auth_failures  BIGINT NOT NULL,
    p50_ms         DOUBLE,
    p95_ms         DOUBLE,
    p99_ms         DOUBLE,
    sketch_fracs   DOUBLE[] NOT NULL,
    sketch_values  DOUBLE[] NOT NULL,
    PRIMARY KEY (name, tool)
);
