-- insert_rejects: keep the rejected lines of `_parsed` with their reason.
-- Parameters: $batch_id, $source, $raw_cap (bytes of raw text kept).
-- The key (source, line_no, raw) makes re-ingesting the same file add nothing (with
-- writer.SKIP_STORED appended; without it a stored key fails the statement).
INSERT INTO rejects
SELECT md5($source || chr(0) || line_no::VARCHAR || chr(0) || raw) AS reject_key,
       $source, line_no, reason, left(raw, $raw_cap), coalesce(raw_bytes, strlen(raw)), $batch_id, now()::TIMESTAMP
FROM _parsed
WHERE reason IS NOT NULL
