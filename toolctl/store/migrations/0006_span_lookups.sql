-- 0006_span_lookups: point-lookup indexes on spans, as 0004 added on events.
-- Append-only: never edit a migration once merged; add a new numbered file.
--
-- * The audit commands (search, export, call, trace, duplicates) find tool calls that
--   arrived as OTLP tool spans by the same ids as events: trace_id, call_id,
--   idempotency_key. The (trace_id, span_id) PRIMARY KEY does not serve them: DuckDB scans
--   an ART index only for an equality on a single-column index (a span-derived event id,
--   trace_id:span_id, is looked up through trace_id).
-- * Cost: every span insert maintains three more ART indexes.

CREATE INDEX spans_trace_id_idx ON spans (trace_id);
CREATE INDEX spans_call_id_idx ON spans (call_id);
CREATE INDEX spans_idempotency_key_idx ON spans (idempotency_key);
