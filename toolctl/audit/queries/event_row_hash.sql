-- event_row_hash: an expression (not a statement): the sha256 of one events row's canonical
-- JSON, over columns named and typed as in `events`. Filled into row_hashes.sql for the
-- stored rows, and evaluated by ingest on a batch's parsed rows before they are stored
-- (toolctl.store.writer.export_parsed), so both must see the same names and types.
-- The columns are listed explicitly (schema 0001 columns): a later ALTER TABLE ADD COLUMN
-- does not change the digests of stored batches.
sha256(to_json(struct_pack(event_id, ts, tool, status, latency_ms, schema_version,
    trace_id, span_id, call_id, session_id, tenant, user_id, service, version, stage,
    attempt, idempotency_key, timeout_ms, error_code, message, retryable, http_status,
    confidence, args, data, extra, batch_id, source, line_no)))
