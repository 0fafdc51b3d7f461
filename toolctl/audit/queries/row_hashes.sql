-- row_hashes: a WITH-prefix (not a statement on its own) defining `row_hashes`:
-- batch_id, k (the row's key, prefixed by table), h = sha256 of the row's canonical JSON.
-- The canonical serialisation lists the columns explicitly (schema 0001/0002 columns), so
-- a later ALTER TABLE ADD COLUMN does not change the digests of stored batches. It lives
-- in toolctl's code, not in the database, so editing the database cannot change it.
-- Used by ledger digests at ingest (inside the batch transaction) and by `audit verify`.
-- The events branch below (rows of batch_id, k, h) is filled in by ledger.row_hashes_sql():
-- ledger.EVENT_HASHES (event_row_hash.sql over the stored rows), or, for a batch whose rows
-- were hashed when they were parsed, those hashes (writer.PARSED_EVENT_HASHES).
WITH row_hashes AS (
    {event_hashes}
    UNION ALL
    SELECT batch_id, 'r:' || reject_key AS k,
           sha256(to_json(struct_pack(reject_key, source, line_no, reason, raw, raw_bytes,
               batch_id, rejected_at))) AS h
    FROM rejects
    UNION ALL
    SELECT batch_id, 's:' || trace_id || ':' || span_id AS k,
           sha256(to_json(struct_pack(trace_id, span_id, parent_span_id, trace_state, name, kind,
               start_ns, end_ns, start_time, status_code, status_message, flags, service,
               service_version, resource, scope_name, scope_version, attributes, events, links,
               dropped_attributes_count, dropped_events_count, dropped_links_count, auth_signal,
               tool_rule, tool, status, latency_ms, call_id, session_id, tenant, user_id, attempt,
               idempotency_key, retryable, confidence, error_code, http_status, args, result,
               batch_id, source))) AS h
    FROM spans
)
