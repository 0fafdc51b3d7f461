-- insert_span_rejects: keep the spans (or OTLP documents) a batch refused, with the reason.
-- Input: `_span_rejects` (Arrow): line_no BIGINT (NULL for a whole-file document or a
--   request), reason VARCHAR (starts with the span's locator), raw VARCHAR, raw_bytes BIGINT.
-- Parameters: $batch_id, $source, $raw_cap (bytes of raw text kept).
-- The key (source, line_no, reason, raw) makes re-ingesting the same file add nothing.
-- (ON CONFLICT: DuckDB plans it as a hash join against every stored reject, but it runs only
-- for a batch that refused something, and rejects stay few.)
INSERT INTO rejects
SELECT md5($source || chr(0) || coalesce(line_no::VARCHAR, '') || chr(0) || reason || chr(0) || raw),
       $source, line_no, reason, left(raw, $raw_cap), raw_bytes, $batch_id, now()::TIMESTAMP
FROM _span_rejects
ON CONFLICT DO NOTHING;
