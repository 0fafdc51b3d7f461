-- lake_record_export: note one written file's (batch, hour) pairs as exported; run after
-- the file is in place, in the same transaction as the read (same snapshot).
-- Parameters: those of lake_pending, $hour, $file.
INSERT INTO lake_exports (lake_id, dataset, batch_id, hour, rows, file, exported_at)
SELECT $lake_id, $dataset, t.batch_id, $hour, count(*), $file, now()::TIMESTAMP
FROM {table} t
WHERE {pending}
  AND t.{ts} >= $hour AND t.{ts} < $hour + INTERVAL 1 HOUR
GROUP BY t.batch_id
