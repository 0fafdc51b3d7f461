-- 0001_initial: tool-call events, rejected lines, ingest batches.
-- Append-only: never edit a migration once merged; add a new numbered file.
--
-- Layout choices that matter at scale:
-- * `ts` is a naive TIMESTAMP holding UTC; batches are inserted sorted by ts so DuckDB's
--   zone maps (min/max per row group) prune time windows without an index.
-- * `event_id` is the PRIMARY KEY: its ART index is the dedupe check at insert and the
--   point lookup for audits. Low-cardinality dimensions stay VARCHAR: DuckDB dictionary-
--   compresses them per row group.
-- * `batch_id` ties every row to the ingest batch that wrote it (provenance, ledger).

CREATE SEQUENCE batch_seq START 1;

CREATE TABLE batches (
    batch_id      BIGINT PRIMARY KEY,
    kind          VARCHAR NOT NULL,          -- 'file' | 'stdin' | 'http'
    source        VARCHAR NOT NULL,          -- resolved path, '<stdin>', or the collector request
    first_line    BIGINT,
    last_line     BIGINT,
    lines         BIGINT NOT NULL,
    accepted      BIGINT NOT NULL,
    duplicates    BIGINT NOT NULL,
    rejected      BIGINT NOT NULL,
    created_at    TIMESTAMP NOT NULL
);

CREATE TABLE events (
    event_id        VARCHAR PRIMARY KEY,
    ts              TIMESTAMP NOT NULL,
    tool            VARCHAR NOT NULL,
    status          VARCHAR NOT NULL,
    latency_ms      DOUBLE NOT NULL,
    schema_version  INTEGER NOT NULL,
    trace_id        VARCHAR,
    span_id         VARCHAR,
    call_id         VARCHAR,
    session_id      VARCHAR,
    tenant          VARCHAR,
    user_id         VARCHAR,                 -- the event's `user` (USER is an SQL keyword)
    service         VARCHAR,
    version         VARCHAR,
    stage           VARCHAR,
    attempt         INTEGER NOT NULL,
    idempotency_key VARCHAR,
    timeout_ms      DOUBLE,
    error_code      VARCHAR,
    message         VARCHAR,
    retryable       BOOLEAN,
    http_status     INTEGER,
    confidence      DOUBLE,
    args            JSON,
    data            JSON,
    extra           JSON,                    -- unknown fields, kept as an object
    batch_id        BIGINT NOT NULL,
    source          VARCHAR,
    line_no         BIGINT
);

CREATE TABLE rejects (
    reject_key   VARCHAR PRIMARY KEY,        -- md5(source, line_no, raw): re-ingest adds nothing
    source       VARCHAR NOT NULL,
    line_no      BIGINT,
    reason       VARCHAR NOT NULL,
    raw          VARCHAR NOT NULL,           -- up to REJECT_RAW_CAP bytes; undecodable bytes as \xNN
    raw_bytes    BIGINT NOT NULL,            -- length of the original line in bytes
    batch_id     BIGINT NOT NULL,
    rejected_at  TIMESTAMP NOT NULL
);

CREATE TABLE ingest_sources (
    source       VARCHAR NOT NULL,
    sha256       VARCHAR NOT NULL,           -- of the bytes read (compressed form for .gz)
    bytes        BIGINT NOT NULL,
    lines        BIGINT NOT NULL,
    accepted     BIGINT NOT NULL,
    duplicates   BIGINT NOT NULL,
    rejected     BIGINT NOT NULL,
    completed_at TIMESTAMP NOT NULL
);

-- Every tool call the figures count, whatever it arrived as. Later migrations extend it
-- (span-derived calls); metrics read only this view.
CREATE VIEW tool_calls AS
SELECT event_id, ts, tool, status, latency_ms, call_id, tenant, user_id, service, version,
       stage, attempt, error_code, http_status, retryable, confidence, idempotency_key,
       timeout_ms, trace_id, 'event' AS origin
FROM events;
