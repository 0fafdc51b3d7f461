"""stats and the gate count calls in one pass and re-run exactly only when a final attempt ties.

A call's final attempt is its highest (attempt, ts, event_id). The one-pass query decides
a call by (attempt, ts) alone; a call whose error and success attempts share both (a hedged
request logged twice) needs event_id, which costs a second pass over the calls. These tests
hold the one-pass answer equal to the exact one when there is no tie, and show that a tie
triggers the exact query (the one-pass answer alone would be wrong there).
"""

from __future__ import annotations

import json
from datetime import timedelta

from collector.pipeline import ingest_paths
from toolctl.metrics.stats import StatsQuery, render_stats_sql, stats
from toolctl.store import Store


def _event(i: str, call: str, status: str, ts: str, attempt: int = 1, tool: str = "search",
           version: str = "v1", retryable: bool = False) -> str:
    return json.dumps({"event_id": i, "call_id": call, "attempt": attempt, "ts": ts, "tool": tool,
                       "status": status, "latency_ms": 5, "tenant": "acme", "version": version,
                       "retryable": retryable})


def _store(tmp_path, lines):
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "calls.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    store = Store.open(tmp_path / "s.duckdb", write=True)
    ingest_paths(store, [str(path)])
    return store


def _exact(store, q):
    params = {**q.filters(), "every": q.every}
    rows = store.fetch_dicts(render_stats_sql(q.by, q.every is not None, resolve_ties=True), params)
    for row in rows:
        del row["tie_calls"]
        if q.every is None:
            del row["bucket"]
        row["error_rate"] = float(row["error_rate"])
    return rows


QUERIES = [StatsQuery(), StatsQuery(by=["tool"]), StatsQuery(by=["tool", "tenant", "version"]),
           StatsQuery(by=["tool"], every=timedelta(hours=1))]


def test_without_ties_the_one_pass_answer_is_the_exact_one(tmp_path):
    lines = [
        _event("a1", "c1", "error", "2026-11-24T06:00:00Z"),
        _event("a2", "c1", "ok", "2026-11-24T06:00:01Z", attempt=2),      # retried to success
        _event("b1", "c2", "ok", "2026-11-24T06:10:00Z"),
        _event("b2", "c2", "error", "2026-11-24T06:10:05Z"),              # same attempt, later ts
        _event("d1", "c3", "error", "2026-11-24T07:00:00Z", tool="查询"),
        _event("e1", "c4", "ok", "2026-11-24T06:59:59Z"),
        _event("e2", "c4", "error", "2026-11-24T07:00:01Z", attempt=2),   # spans two hours
    ]
    with _store(tmp_path, lines) as store:
        for q in QUERIES:
            assert stats(store, q) == _exact(store, q), q
        total = stats(store, StatsQuery())[0]
        assert (total["calls"], total["errors"], total["attempts"]) == (4, 3, 7)


def test_a_tie_on_attempt_and_ts_is_decided_by_event_id_through_the_exact_query(tmp_path):
    # Same attempt, same instant: the higher event_id ("x2" > "x1") is final, so c1 failed.
    lines = [_event("x1", "c1", "ok", "2026-11-24T06:00:00Z"),
             _event("x2", "c1", "error", "2026-11-24T06:00:00Z"),
             _event("y1", "c2", "ok", "2026-11-24T06:00:00Z")]
    with _store(tmp_path, lines) as store:
        params = {**StatsQuery().filters(), "every": None}
        one_pass = store.fetch_dicts(render_stats_sql([], resolve_ties=False), params)[0]
        assert one_pass["tie_calls"] == 1 and one_pass["errors"] == 0  # alone it would miss it
        for q in QUERIES:
            assert stats(store, q) == _exact(store, q), q
        total = stats(store, StatsQuery())[0]
        assert (total["calls"], total["errors"]) == (2, 1)


def _arms(store, exact: bool | None):
    from datetime import datetime

    from toolctl.gate.data import arm_calls_sql, arm_counts

    window = {"since": datetime(2026, 11, 24), "until": datetime(2026, 11, 25)}
    if exact is None:  # what the gate uses
        return arm_counts(store, **window, baseline="v1", candidate="v2", tools=None)
    params = {**window, "all": False, "baseline": "v1", "candidate": "v2", "tools": None}
    return {r.pop("arm"): r for r in store.fetch_dicts(arm_calls_sql(exact=exact), params)}


def test_gate_arm_counts_take_the_exact_query_only_for_a_tie(tmp_path):
    lines = [
        _event("a1", "c1", "error", "2026-11-24T06:00:00Z", retryable=True),
        _event("a2", "c1", "ok", "2026-11-24T06:00:01Z", attempt=2),
        _event("b1", "c2", "error", "2026-11-24T06:00:00Z", retryable=True),  # abandoned
        _event("d1", "c3", "error", "2026-11-24T06:00:00Z", version="v2"),
        _event("d2", "c4", "ok", "2026-11-24T06:00:00Z", version="v2"),
    ]
    tie = [_event("t1", "c5", "ok", "2026-11-24T07:00:00Z", version="v2"),
           _event("t2", "c5", "error", "2026-11-24T07:00:00Z", version="v2", retryable=True)]
    with _store(tmp_path / "no_tie", lines) as store:
        one, exact = _arms(store, exact=False), _arms(store, exact=True)
        assert one == exact and all(r["tie_calls"] == 0 for r in one.values())
        arms = _arms(store, exact=None)
        assert {a: (r["calls"], r["errors"], r["abandoned"]) for a, r in arms.items()} == {
            "v1": (2, 1, 1), "v2": (2, 1, 0)}
    with _store(tmp_path / "tie", lines + tie) as store:
        assert _arms(store, exact=False)["v2"]["tie_calls"] == 1
        arms = _arms(store, exact=None)  # "t2" > "t1": c5 ended in a retryable error
        assert (arms["v2"]["calls"], arms["v2"]["errors"], arms["v2"]["abandoned"]) == (3, 2, 1)


def test_a_baseline_and_regress_count_calls_exactly_as_stats_does(tmp_path):
    # baseline save / regress read `stats --by tool` itself: the same figures, ties included.
    from datetime import datetime

    from toolctl.gate.baselines import regress, save_baseline, show_baseline

    lines = [_event("x1", "c1", "ok", "2026-11-24T06:00:00Z"),
             _event("x2", "c1", "error", "2026-11-24T06:00:00Z"),           # a tie: x2 is final
             _event("y1", "c2", "error", "2026-11-24T06:01:00Z", tool="查询"),
             _event("y2", "c2", "ok", "2026-11-24T06:01:02Z", attempt=2, tool="查询"),
             _event("z1", "c3", "ok", "2026-11-24T06:02:00Z", version="v2")]
    with _store(tmp_path, lines) as store:
        want = {r["tool"]: r for r in stats(store, StatsQuery(by=["tool"], version="v1"))}
        assert want["search"]["errors"] == 1 and want["查询"]["errors"] == 0
        saved = save_baseline(store, "b", version="v1", since=None, until=None, now=datetime(2026, 11, 25))
        got = {t["tool"]: t for t in saved["tools"]}
        keys = ("calls", "attempts", "errors", "auth_failures", "p50_ms", "p95_ms", "p99_ms")
        assert {t: {k: got[t][k] for k in keys} for t in got} == {t: {k: want[t][k] for k in keys} for t in want}
        sketch = store.scalar("SELECT sketch_values FROM baseline_tools WHERE name = 'b' AND tool = 'search'")
        assert sketch[0] == 5.0 and len(sketch) == len(store.scalar(
            "SELECT sketch_fracs FROM baseline_tools WHERE name = 'b' AND tool = 'search'"))
        report = regress(store, "b", since=datetime(2026, 11, 24), until=datetime(2026, 11, 25))
        checks = {c["name"]: c for c in report["checks"]}
        # The current window holds v1 and v2: search has 2 calls against the baseline's 1
        # (too few to judge, but counted as stats counts them).
        err = checks["search:error_rate"]
        assert (err["n_candidate"], err["n_baseline"]) == (2, 1)
        assert show_baseline(store, "b")["tools"] == saved["tools"]


def test_attempts_beyond_the_one_pass_key_are_decided_exactly(tmp_path):
    # The one-pass key packs (attempt, ts) into 64 bits: attempt <= 511, ts in 1970..2112.
    # A call with an attempt outside that range must not be decided by a truncated key: it
    # takes the exact query, like a tie, in stats and in the gate alike.
    lines = [
        _event("a1", "c1", "ok", "2026-11-24T06:00:00Z", attempt=2),
        _event("a2", "c1", "error", "2026-11-24T05:00:00Z", attempt=600),          # final: 600 > 2
        _event("b1", "c2", "error", "2026-11-24T06:00:00Z", attempt=2147483647),   # final
        _event("b2", "c2", "ok", "2026-11-24T06:00:01Z", attempt=3),
        _event("d1", "c3", "ok", "1965-03-01T00:00:00Z", attempt=1),
        _event("d2", "c3", "error", "1965-03-01T00:00:01Z", attempt=1),           # final: later ts
        _event("e1", "c4", "error", "2026-11-24T06:00:00Z"),
        _event("e2", "c4", "ok", "2150-01-01T00:00:00Z"),                         # final: later ts
        _event("f1", "c5", "ok", "2026-11-24T06:00:00Z", attempt=511),           # in range
        _event("f2", "c5", "error", "2026-11-24T06:00:00Z", attempt=510),
    ]
    with _store(tmp_path / "s", lines) as store:
        params = {**StatsQuery().filters(), "every": None}
        one_pass = store.fetch_dicts(render_stats_sql([], resolve_ties=False), params)[0]
        assert one_pass["tie_calls"] == 4  # c1..c4 go to the exact query, c5 does not
        for q in QUERIES:
            assert stats(store, q) == _exact(store, q), q
        total = stats(store, StatsQuery())[0]
        assert (total["calls"], total["errors"], total["attempts"]) == (5, 3, 10)

    gate = [
        _event("r1", "c6", "error", "2026-11-24T06:00:00Z", attempt=700, retryable=True),  # final
        _event("r2", "c6", "ok", "2026-11-24T06:00:01Z", attempt=1),
        _event("s1", "c7", "ok", "2026-11-24T06:00:00Z", attempt=2),
        _event("s2", "c7", "error", "2026-11-24T05:00:00Z", attempt=2147483647),           # final
        _event("u1", "c8", "error", "2026-11-24T06:00:00Z", attempt=600, version="v2"),    # final
        _event("u2", "c8", "ok", "2026-11-24T06:00:01Z", attempt=3, version="v2"),
    ]
    with _store(tmp_path / "g", gate) as store:
        one_pass = _arms(store, exact=False)
        assert (one_pass["v1"]["tie_calls"], one_pass["v2"]["tie_calls"]) == (2, 1)
        arms = _arms(store, exact=None)
        assert {a: (r["calls"], r["errors"], r["abandoned"]) for a, r in arms.items()} == {
            "v1": (2, 2, 1), "v2": (1, 1, 0)}
