-- batch_digest (appended to row_hashes.sql): row count and digest of one batch's stored rows.
-- Parameters: $batch_id. Output: row_count, rows_digest (sha256 of the concatenated per-row
-- hashes ordered by key; sha256('') for no rows). Zone maps on batch_id keep this cheap:
-- batches are appended in batch_id order.
SELECT count(*) AS row_count, sha256(coalesce(string_agg(h, '' ORDER BY k), '')) AS rows_digest
FROM row_hashes
WHERE batch_id = $batch_id
