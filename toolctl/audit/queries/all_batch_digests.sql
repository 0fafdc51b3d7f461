-- all_batch_digests (appended to row_hashes.sql): every batch's row count and digest, as
-- batch_digest computes them, in one pass over the stored rows (for `audit verify`).
-- Output: batch_id, row_count, rows_digest.
SELECT batch_id, count(*) AS row_count, sha256(string_agg(h, '' ORDER BY k)) AS rows_digest
FROM row_hashes
GROUP BY batch_id
ORDER BY batch_id
