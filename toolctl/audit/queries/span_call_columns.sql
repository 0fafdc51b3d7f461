-- span_call_columns: an expression list (not a statement) over one `spans` row that a rule
-- counts as a tool call (tool_rule set): the row as a tool call, with the columns of an
-- event row of search_events.sql, in that order. The mapping is the tool_calls view's
-- (migrations 0002): event_id is trace_id:span_id, ts the start truncated to microseconds,
-- version the resource service.version, no stage, timeout or schema version; besides it,
-- message is the span status message, data the tool result, origin 'span'.
-- load_query splices it into the audit queries that name it, so every audit command sees a
-- span-derived call the same way.
trace_id || ':' || span_id AS event_id, make_timestamp(start_ns // 1000) AS ts, tool, status,
latency_ms, NULL AS schema_version, trace_id, span_id, call_id, session_id, tenant,
user_id AS "user", service, service_version AS version, NULL AS stage, attempt, idempotency_key,
NULL AS timeout_ms, error_code, status_message AS message, retryable, http_status, confidence,
args, result AS data, NULL AS extra, batch_id, source, NULL AS line_no, 'span' AS origin
