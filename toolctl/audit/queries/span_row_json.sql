-- span_row_json: an expression (not a statement): one spans row's canonical JSON, over
-- columns named and typed as in `spans`. row_hashes.sql hashes it for the stored rows;
-- the collector evaluates it on a request's decoded rows before they are stored, with
-- batch_id and source NULL (not known yet), and finishes each hash in the writer once the
-- batch has its id (toolctl.store.spans.prepare_spans), so both must see the same names
-- and types, and batch_id, source must stay the last two fields.
-- The columns are listed explicitly (schema 0002 columns): a later ALTER TABLE ADD COLUMN
-- does not change the digests of stored batches.
to_json(struct_pack(trace_id, span_id, parent_span_id, trace_state, name, kind,
    start_ns, end_ns, start_time, status_code, status_message, flags, service,
    service_version, resource, scope_name, scope_version, attributes, events, links,
    dropped_attributes_count, dropped_events_count, dropped_links_count, auth_signal,
    tool_rule, tool, status, latency_ms, call_id, session_id, tenant, user_id, attempt,
    idempotency_key, retryable, confidence, error_code, http_status, args, result,
    batch_id, source))
