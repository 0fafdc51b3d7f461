-- 0004_audit: point-lookup indexes, the tamper-evident ledger, per-store audit settings.
-- Append-only: never edit a migration once merged; add a new numbered file.
--
-- * ART indexes on the ids an investigator starts from. event_id already has one (its
--   PRIMARY KEY). DuckDB uses an ART index only for a simple equality / IN predicate on
--   one table, so the lookups run one query per id kind (toolctl/audit/queries/*.sql).
--   Cost: every insert maintains them (measured in benchmarks/audit_lookup.py).
-- * ledger: one row per ingest batch, per fully read source and per control-plane
--   mutation (gate decision, baseline save, runbook run, prune, configuration change).
--   entry_hash = sha256 of the entry's canonical JSON, which includes prev_hash, so the
--   entries form a chain; hmac is set when TOOLCTL_LEDGER_KEY was set at write time.
--   rows_digest is computed in SQL from the stored rows of the batch (see
--   toolctl/audit/ledger.py for the canonical row serialisation).
-- * audit_settings: the per-store random salt of redaction fingerprints.

CREATE INDEX events_call_id_idx ON events (call_id);
CREATE INDEX events_trace_id_idx ON events (trace_id);
CREATE INDEX events_idempotency_key_idx ON events (idempotency_key);

CREATE SEQUENCE ledger_seq START 1;

CREATE TABLE ledger (
    seq           BIGINT PRIMARY KEY,
    kind          VARCHAR NOT NULL,      -- ingest_batch | ingest_source | gate_decision | baseline_save | runbook_run | prune | config | ...
    created_at    TIMESTAMP NOT NULL,    -- UTC, microseconds
    batch_id      BIGINT,                -- for batch entries: the batch whose rows are digested
    source        VARCHAR,               -- file path, '<stdin>', or the collector request
    source_sha256 VARCHAR,               -- content hash of a fully read source
    row_count     BIGINT,                -- rows the batch stored (events + rejects + spans)
    rows_digest   VARCHAR,               -- sha256 over the batch's per-row sha256s, ordered by key
    payload       JSON NOT NULL,         -- canonical JSON of the entry's details
    prev_hash     VARCHAR NOT NULL,      -- entry_hash of the previous entry ('' for the first)
    entry_hash    VARCHAR NOT NULL,
    hmac          VARCHAR                -- HMAC-SHA256(TOOLCTL_LEDGER_KEY, entry_hash), or NULL
);

CREATE TABLE audit_settings (
    key   VARCHAR PRIMARY KEY,
    value VARCHAR NOT NULL
);

-- 2 x 122 random bits (UUID v4), hashed: never leaves the store.
INSERT INTO audit_settings
SELECT 'redaction_salt', sha256(gen_random_uuid()::VARCHAR || gen_random_uuid()::VARCHAR);
