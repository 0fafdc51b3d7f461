-- row_hashes: a WITH-prefix (not a statement on its own) defining `row_hashes`:
-- batch_id, k (the row's key, prefixed by table), h = sha256 of the row's canonical JSON.
-- The canonical serialisation lists the columns explicitly (schema 0001/0002 columns), so
-- a later ALTER TABLE ADD COLUMN does not change the digests of stored batches. It lives
-- in toolctl's code, not in the database, so editing the database cannot change it.
-- Used by ledger digests at ingest (inside the batch transaction) and by `audit verify`.
-- The events and spans branches (rows of batch_id, k, h) are filled in by
-- ledger.row_hashes_sql(): ledger.EVENT_HASHES / SPAN_HASHES (event_row_hash.sql,
-- sha256 of span_row_json.sql, over the stored rows), or, for a batch whose rows were hashed
-- before they were stored, those hashes (writer.PARSED_EVENT_HASHES,
-- spans.PREPARED_SPAN_HASHES).
WITH row_hashes AS (
    {event_hashes}
    UNION ALL
    SELECT batch_id, 'r:' || reject_key AS k,
           sha256(to_json(struct_pack(reject_key, source, line_no, reason, raw, raw_bytes,
               batch_id, rejected_at))) AS h
    FROM rejects
    UNION ALL
    {span_hashes}
)
