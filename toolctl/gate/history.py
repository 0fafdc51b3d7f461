"""Gate history in the store: runs keyed by runbook hash + baseline + candidate.

Persisting every evaluation and its check results is what lets "K consecutive failing
evaluations" span separate CI invocations.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from toolctl.jsonio import dumps  # the one JSON renderer: NaN and ±Infinity as null
from toolctl.store import Store

_STREAK_SQL = """
SELECT r.check_name, r.outcome, e.seq
FROM gate_check_results r JOIN gate_evaluations e USING (evaluation_id)
WHERE e.run_key = $run_key
ORDER BY e.seq DESC
"""

_HISTORY_SQL = """
SELECT e.evaluation_id, e.seq, e.evaluated_at, e.since, e.until, e.verdict, e.reason,
       g.runbook_name, g.baseline, g.candidate, g.run_key
FROM gate_evaluations e JOIN gate_runs g USING (run_key)
WHERE ($baseline::VARCHAR IS NULL OR g.baseline = $baseline::VARCHAR)
  AND ($candidate::VARCHAR IS NULL OR g.candidate = $candidate::VARCHAR)
ORDER BY e.evaluation_id DESC  -- the order they were recorded: concurrent gates started earlier may record later
LIMIT $limit
"""


def run_key(runbook_hash: str, baseline: str, candidate: str, tools: list[str] | None = None) -> str:
    """Runbook content + baseline + candidate (+ the --tool selection: another question)."""
    parts = [runbook_hash, baseline, candidate, *sorted(set(tools or []))]
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


def previous(store: Store, key: str) -> tuple[int, dict[str, int]]:
    """(evaluations so far, consecutive-fail streak per check ending at the latest one)."""
    rows = store.fetch_dicts(_STREAK_SQL, {"run_key": key})
    seqs = sorted({r["seq"] for r in rows}, reverse=True)
    by_seq: dict[int, dict[str, str]] = {}
    for r in rows:
        by_seq.setdefault(r["seq"], {})[r["check_name"]] = r["outcome"]
    streaks: dict[str, int] = {}
    for name in {r["check_name"] for r in rows}:
        n = 0
        for s in seqs:
            if by_seq[s].get(name) == "fail":
                n += 1
            else:
                break
        streaks[name] = n
    count = store.scalar("SELECT count(*) FROM gate_evaluations WHERE run_key = $k", {"k": key}) or 0
    return int(count), streaks


def record(store: Store, *, key: str, runbook, baseline: str, candidate: str, seq: int,
           since: datetime, until: datetime, verdict: str, reason: str, results: list, report: dict,
           now: datetime, before_commit=None) -> int:
    """Persist one evaluation and its check results in one transaction; returns its id.

    ``before_commit(evaluation_id)`` runs inside that transaction (the ledger entry of the
    decision), so a decision is never stored without its ledger entry or the reverse.
    """
    with store.transaction():
        store.execute(
            "INSERT INTO gate_runs VALUES ($k, $n, $h, $b, $c, $now) ON CONFLICT DO NOTHING",
            {"k": key, "n": runbook.name, "h": runbook.content_hash, "b": baseline, "c": candidate, "now": now})
        eid = int(store.scalar("SELECT nextval('gate_evaluation_seq')"))
        store.execute(
            "INSERT INTO gate_evaluations VALUES ($id, $k, $seq, $now, $since, $until, $v, $r, $doc)",
            {"id": eid, "k": key, "seq": seq, "now": now, "since": since, "until": until,
             "v": verdict, "r": reason, "doc": dumps(report).decode("utf-8")})
        for r in results:
            store.execute(
                "INSERT INTO gate_check_results VALUES ($id, $name, $kind, $sev, $dry, $out, $est, $lo,"
                " $hi, $margin, $nb, $nc, $reason)",
                {"id": eid, "name": r.name, "kind": r.kind, "sev": r.severity, "dry": r.dry_run,
                 "out": r.outcome, "est": r.estimate, "lo": r.lower, "hi": r.upper, "margin": r.margin,
                 "nb": r.n_baseline, "nc": r.n_candidate, "reason": r.reason})
        if before_commit is not None:
            before_commit(eid)
    return eid


def history(store: Store, *, baseline: str | None = None, candidate: str | None = None,
            limit: int = 50) -> list[dict]:
    """Past evaluations, newest first."""
    return store.fetch_dicts(_HISTORY_SQL, {"baseline": baseline, "candidate": candidate, "limit": limit})
