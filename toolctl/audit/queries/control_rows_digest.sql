-- control_rows_digest: the rows one control-plane ledger entry vouches for, digested as an
-- ingest batch's are (sha256 of the concatenated per-row sha256s of each row's canonical JSON,
-- in a fixed order). Parameters: $evaluation_id (a gate decision: its gate_evaluations row
-- and its gate_check_results) or $baseline (a baseline: its baselines row and its
-- baseline_tools); the other one NULL. Output: row_count, rows_digest.
-- Recorded by the entry in the transaction that wrote the rows; `audit verify` recomputes it
-- (toolctl.audit.ledger.verify), so editing a gate's history or a baseline is detected.
-- Columns are listed: a later ALTER TABLE ADD COLUMN does not change the digests.
SELECT count(*) AS row_count, sha256(coalesce(string_agg(h, '' ORDER BY k), '')) AS rows_digest
FROM (
    SELECT '0' AS k, sha256(to_json(struct_pack(evaluation_id, run_key, seq, evaluated_at, since,
               until, verdict, reason, report))) AS h
    FROM gate_evaluations WHERE evaluation_id = $evaluation_id
    UNION ALL
    SELECT '1:' || check_name, sha256(to_json(struct_pack(evaluation_id, check_name, kind, severity,
               dry_run, outcome, estimate, lower, upper, margin, n_baseline, n_candidate, reason)))
    FROM gate_check_results WHERE evaluation_id = $evaluation_id
    UNION ALL
    SELECT '0', sha256(to_json(struct_pack(name, version, since, until, created_at)))
    FROM baselines WHERE name = $baseline
    UNION ALL
    SELECT '1:' || tool, sha256(to_json(struct_pack(name, tool, attempts, calls, errors,
               auth_failures, p50_ms, p95_ms, p99_ms, sketch_fracs, sketch_values)))
    FROM baseline_tools WHERE name = $baseline
)
