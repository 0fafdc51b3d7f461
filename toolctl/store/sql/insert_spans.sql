-- insert_spans: store the decoded spans of one batch (`_spans_in`, an Arrow table with the
-- columns of collector.otlp.COLUMNS); a (trace_id, span_id) already stored is skipped.
-- Parameters: $batch_id, $source.
-- Output: one row per newly stored span: trace_id, span_id, is_tool (the span counts as a
-- tool call); the keys let a group commit of several requests count each one's new spans.
-- Rows go in sorted by start time so zone maps prune time windows.
-- After ORDER BY, a marker filled with nothing (a stored or repeated key fails the
-- statement) or writer.SKIP_STORED (skip stored keys; DuckDB plans that as a hash join
-- against every stored key, so spans.write_span_batch uses it only after a plain insert failed).
INSERT INTO spans
SELECT trace_id, span_id, parent_span_id, trace_state, name, kind, start_ns, end_ns,
       start_time, status_code, status_message, flags, service, service_version,
       resource::JSON, scope_name, scope_version, attributes::JSON, events::JSON, links::JSON,
       dropped_attributes_count, dropped_events_count, dropped_links_count, auth_signal,
       tool_rule, tool, status, latency_ms, call_id, session_id, tenant, user_id, attempt,
       idempotency_key, retryable, confidence, error_code, http_status, args::JSON,
       result::JSON, $batch_id, $source
FROM _spans_in
ORDER BY start_ns{skip_stored}
RETURNING trace_id, span_id, tool_rule IS NOT NULL AS is_tool;
