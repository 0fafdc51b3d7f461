-- 0005_lake: what this store wrote to Parquet lakes (toolctl/lake, docs/lake.md).
-- Append-only: never edit a migration once merged; add a new numbered file.
--
-- * lake_state: one row per lake this store writes to, keyed by the lake's id (the
--   `lake_id` of DIR/_toolctl_lake.json, so a lake mounted at another path is the same
--   lake). writer_id names every file this store writes there; next_seq is the sequence
--   of its next file. A file with this writer_id and a seq >= next_seq was renamed into
--   place by an export whose transaction never committed: the next export deletes it
--   before writing (no doubled rows after a crash). complete_through: every batch with
--   batch_id <= it has been exported entirely (unwindowed exports advance it), so
--   exports only look at newer batches plus what lake_exports says is missing.
-- * lake_exports: one row per (dataset, batch, hour) exported: re-exporting a window
--   adds only the (batch, hour) pairs not yet in the lake.

CREATE TABLE lake_state (
    lake_id          VARCHAR PRIMARY KEY,
    lake_path        VARCHAR NOT NULL,      -- where it was last written (informational)
    writer_id        VARCHAR NOT NULL,
    next_seq         BIGINT NOT NULL,
    complete_through BIGINT NOT NULL
);

CREATE TABLE lake_exports (
    lake_id     VARCHAR NOT NULL,
    dataset     VARCHAR NOT NULL,           -- 'events' | 'spans'
    batch_id    BIGINT NOT NULL,
    hour        TIMESTAMP NOT NULL,         -- the partition (UTC hour)
    rows        BIGINT NOT NULL,
    file        VARCHAR NOT NULL,           -- path relative to the lake
    exported_at TIMESTAMP NOT NULL,
    PRIMARY KEY (lake_id, dataset, batch_id, hour)
);
