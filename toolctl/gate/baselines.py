"""Saved baselines: per-tool figures plus a compact latency sketch, and `regress` against them.

The sketch holds exact quantiles (quantile_cont) of the attempt latencies at ~280 fixed
fractions, dense in the tail (0.0001 steps above 0.99), plus the sample size: enough to
bound p95/p99 later with the same order-statistic interval as the gate, without raw rows.
"""

from __future__ import annotations

import math
from typing import Any
from datetime import datetime

from toolctl.errors import UsageError
from toolctl.gate import statistics as st
from toolctl.gate.checks import CheckResult, _pct
from toolctl.gate.data import load_query
from toolctl.gate.verdict import EXIT_CODES
from toolctl.store import Store
from toolctl.timeutil import iso_utc


def sketch_fracs() -> list[float]:
    fr = [i / 100 for i in range(0, 90)] + [0.9 + i / 1000 for i in range(0, 90)]
    fr += [0.99 + i / 10000 for i in range(0, 101)]
    return sorted({round(f, 6) for f in fr})


#: Regression margins of `toolctl regress` (the same spirit as canary-promotion.yaml).
REGRESS_CHECKS = (
    ("error_rate", "ratio", 0.005, 0.5, "major"),
    ("auth_failure_rate", "ratio", 0.005, 0.0, "critical"),
    ("p95_ms", "quantile", 1.2, 0.95, "major"),
    ("p99_ms", "quantile", 1.3, 0.99, "major"),
)


class BaselineNotFoundError(UsageError):
    code = "baseline_not_found"


def _get(store: Store, name: str) -> dict:
    rows = store.fetch_dicts("SELECT * FROM baselines WHERE name = $n", {"n": name})
    if not rows:
        raise BaselineNotFoundError(f"no baseline named {name!r}",
                                    hint="list them with `toolctl baseline list`; save one with `toolctl baseline save NAME`")
    return rows[0]


def save_baseline(store: Store, name: str, *, version: str | None, since: datetime | None,
                  until: datetime | None, now: datetime, replace: bool = False) -> dict:
    """Snapshot per-tool figures and sketches under ``name`` (one transaction)."""
    if since and until and since >= until:
        raise UsageError(f"empty window: --since {iso_utc(since)} is not before --until {iso_utc(until)}",
                         hint="--since must be earlier than --until")
    exists = store.scalar("SELECT count(*) FROM baselines WHERE name = $n", {"n": name})
    if exists and not replace:
        raise UsageError(f"baseline {name!r} already exists",
                         hint="choose another name, pass --replace, or `toolctl baseline delete` it first")
    fracs = sketch_fracs()
    rows = _tool_figures(store, since=since, until=until, version=version)
    if not rows:
        raise UsageError("no tool calls match this baseline's window and version",
                         hint="check --version and --since/--until with `toolctl stats --by version`")
    sketches = _sketches(store, since=since, until=until, version=version, fracs=fracs)
    with store.transaction():
        store.execute("DELETE FROM baseline_tools WHERE name = $n", {"n": name})
        store.execute("DELETE FROM baselines WHERE name = $n", {"n": name})
        store.execute("INSERT INTO baselines VALUES ($n, $v, $s, $u, $now)",
                      {"n": name, "v": version, "s": since, "u": until, "now": now})
        for r in rows:
            store.execute(
                "INSERT INTO baseline_tools VALUES ($n, $tool, $attempts, $calls, $errors, $auth, $p50,"
                " $p95, $p99, $fracs, $vals)",
                {"n": name, "tool": r["tool"], "attempts": r["attempts"], "calls": r["calls"],
                 "errors": r["errors"], "auth": r["auth_failures"], "p50": r["p50_ms"], "p95": r["p95_ms"],
                 "p99": r["p99_ms"], "fracs": fracs, "vals": sketches[r["tool"]]})
        _record_ledger(store, "baseline_save", {
            "name": name, "version": version, "since": iso_utc(since), "until": iso_utc(until),
            "tools": len(rows), "calls": sum(r["calls"] for r in rows)}, rows_of=name)
    return show_baseline(store, name)


def _tool_figures(data: Any, *, since: datetime | None, until: datetime | None,
                  version: str | None) -> list[dict]:
    """Per-tool figures: ``toolctl stats --by tool`` itself, so a baseline and ``stats``
    cannot disagree on what a call, an error or the final attempt is (and the baseline
    gets stats' one-pass final-attempt query instead of an arg_max over a struct)."""
    from toolctl.metrics.stats import StatsQuery, stats

    return stats(data, StatsQuery(by=["tool"], since=since, until=until, version=version))


def _sketches(store: Store, *, since: datetime | None, until: datetime | None, version: str | None,
              fracs: list[float]) -> dict[str | None, list[float]]:
    from toolctl.metrics.stats import StatsQuery, call_filter_sql

    window = StatsQuery(since=since, until=until, version=version)
    rows = store.fetch_dicts(load_query("baseline_sketch").replace("{call_filter}", call_filter_sql()),
                             {**window.filters(), "fracs": fracs})
    return {r["tool"]: r["sketch_values"] for r in rows}


def _record_ledger(store: Store, kind: str, payload: dict, rows_of: str | None = None) -> None:
    """A ledger entry in the caller's transaction, when the audit ledger is installed.
    ``rows_of``: a baseline just written, whose rows the entry vouches for (its digest)."""
    try:
        from toolctl.audit.ledger import control_rows, record_event
    except ImportError:
        return
    if rows_of is not None:
        payload = {**payload, "rows": control_rows(store, baseline=rows_of)}
    record_event(store, kind, payload)


def list_baselines(store: Store) -> list[dict]:
    rows = store.fetch_dicts(
        "SELECT b.name, b.version, b.since, b.until, b.created_at, count(t.tool) AS tools,"
        " coalesce(sum(t.calls), 0) AS calls FROM baselines b LEFT JOIN baseline_tools t USING (name)"
        " GROUP BY ALL ORDER BY b.created_at DESC, b.name")
    return [_iso(r) for r in rows]


def _iso(r: dict) -> dict:
    return {k: (iso_utc(v) if isinstance(v, datetime) else v) for k, v in r.items()}


def show_baseline(store: Store, name: str) -> dict:
    head = _iso(_get(store, name))
    tools = store.fetch_dicts(
        "SELECT tool, calls, attempts, errors, errors / calls AS error_rate, auth_failures,"
        " p50_ms, p95_ms, p99_ms FROM baseline_tools WHERE name = $n ORDER BY calls DESC, tool", {"n": name})
    for t in tools:
        t["error_rate"] = float(t["error_rate"])
    head["tools"] = tools
    return head


def delete_baseline(store: Store, name: str) -> None:
    _get(store, name)
    with store.transaction():
        store.execute("DELETE FROM baseline_tools WHERE name = $n", {"n": name})
        store.execute("DELETE FROM baselines WHERE name = $n", {"n": name})
        _record_ledger(store, "baseline_delete", {"name": name})


def regress(store: Store, name: str, *, since: datetime, until: datetime, confidence: float = 0.95,
            data: Any = None) -> dict:
    """Flag tools whose error rate, auth-failure rate, p95 or p99 regressed against a baseline.

    ``data``: where the current window's calls are read (a lake source, toolctl.engines);
    default the store. The baseline itself always comes from the store.
    """
    import numpy as np

    from toolctl.gate.verdict import decide

    if since >= until:
        raise UsageError(f"empty window: --since {iso_utc(since)} is not before --until {iso_utc(until)}",
                         hint="--since must be earlier than --until")
    head = _get(store, name)
    base = {r["tool"]: r for r in store.fetch_dicts("SELECT * FROM baseline_tools WHERE name = $n", {"n": name})}
    data = store if data is None else data
    cur = {r["tool"]: r for r in _tool_figures(data, since=since, until=until, version=None)}
    lats = {r["tool"]: np.asarray(r["latencies"], dtype=float) for r in
            data.fetch_dicts(load_query("tool_latencies"), {"since": since, "until": until})}
    results: list[CheckResult] = []
    for tool in sorted(base):
        b, c = base[tool], cur.get(tool)
        for metric, kind, a1, a2, severity in REGRESS_CHECKS:
            res = CheckResult(f"{tool}:{metric}", kind, severity, False, "inconclusive", "", metric=metric)
            results.append(res)
            if c is None:
                res.reason = "no calls in the current window"
                res.n_baseline = b["calls"]
                res.n_candidate = 0
                continue
            if kind == "ratio":
                num, den = ("errors", "calls") if metric == "error_rate" else ("auth_failures", "attempts")
                kc, nc, kb, nb = c[num], c[den], b[num], b[den]
                res.n_candidate, res.n_baseline = nc, nb
                if nc < 30 or nb < 30:
                    res.reason = f"too few samples (current {nc}, baseline {nb}; need ≥ 30)"
                    continue
                margin = a1 + a2 * kb / nb
                iv = st.newcombe_diff(kc, nc, kb, nb, confidence)
                res.estimate, res.lower, res.upper, res.margin = iv.estimate, iv.lower, iv.upper, margin
                res.outcome = st.classify(iv.lower, iv.upper, margin)
                res.reason = (f"{metric} {_pct(kc / nc)} vs {_pct(kb / nb)}: difference {_pct(iv.estimate)} "
                              f"[{_pct(iv.lower)}, {_pct(iv.upper)}], margin +{_pct(margin)}")
            else:
                q, limit = a2, a1
                cv = lats.get(tool, np.array([]))
                res.n_candidate, res.n_baseline = len(cv), b["attempts"]
                need = st.min_samples_for_quantile(q)
                if len(cv) < need or b["attempts"] < need:
                    res.reason = f"too few samples (current {len(cv)}, baseline {b['attempts']}; need ≥ {need})"
                    res.more_needed = max(need - len(cv), 0) or None
                    continue
                each = math.sqrt(confidence)
                ci_c = st.quantile_interval(cv, q, each)
                ci_b = st.sketch_quantile_interval(b["attempts"], b["sketch_fracs"], b["sketch_values"], q, each)
                iv = st.ratio_interval(ci_c, ci_b)
                res.estimate, res.lower, res.upper, res.margin = iv.estimate, iv.lower, iv.upper, limit
                res.outcome = st.classify(iv.lower, iv.upper, limit)
                res.reason = (f"p{q * 100:g} {ci_c.estimate:.4g} ms vs {ci_b.estimate:.4g} ms: ratio "
                              f"{iv.estimate:.3g} [{iv.lower or 0:.3g}, {iv.upper or float('inf'):.3g}] vs limit {limit:g}")
    if not cur:
        verdict, reason = "inconclusive", "no tool calls in the current window"
    elif not any(tool in cur for tool in base):
        # Calls of other tools only: nothing to compare, and waiting (a hold) will not change
        # that when the baseline's tools were renamed or retired.
        verdict, reason = "inconclusive", (f"none of the baseline's {len(base)} tools has calls in the current "
                                           f"window (it has calls of {len(cur)} other tools)")
    else:
        # A regression is a single look: any fail flags it (consecutive=1).
        verdict, reason = decide(results, prior_streaks={}, consecutive=1, seq=1, max_evaluations=2)
    regressed = sorted({r.name.rsplit(":", 1)[0] for r in results if r.outcome == "fail"})
    return {"verdict": verdict, "exit_code": EXIT_CODES[verdict], "reason": reason,
            "baseline": _iso(head), "since": iso_utc(since), "until": iso_utc(until),
            "regressed_tools": regressed, "checks": [r.to_dict() for r in results]}
