-- lake_unexported: how many rows of the batches $ids a lake this store exports to does not
-- hold yet, by lake_pending.sql's rule (unwindowed), so `db prune` does not delete them.
-- The table and time column come from toolctl.lake.layout.DATASETS, the condition from
-- lake_pending.sql (filled in by toolctl.lake.export._sql).
-- Parameters: $ids (BIGINT[]), $lake_id, $dataset, $after, $since, $until (NULL).
-- Output: one row: n.
SELECT count(*) AS n
FROM {table} t
WHERE list_contains($ids::BIGINT[], t.batch_id)
  AND {pending}
