-- lake_pending_hours: the partitions (UTC hours) holding rows not exported yet.
-- Parameters: those of lake_pending. Output: hour (TIMESTAMP), rows.
SELECT date_trunc('hour', t.{ts})::TIMESTAMP AS hour, count(*) AS rows
FROM {table} t
WHERE {pending}
GROUP BY 1
ORDER BY 1
