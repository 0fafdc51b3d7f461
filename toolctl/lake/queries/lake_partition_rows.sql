-- lake_partition_rows: one partition's pending rows in file order (time, then key), as the
-- lake's v1 columns (JSON as text). Parameters: those of lake_pending, $hour.
SELECT {columns}
FROM {table} t
WHERE {pending}
  AND t.{ts} >= $hour AND t.{ts} < $hour + INTERVAL 1 HOUR
ORDER BY t.{ts}, {keys}
