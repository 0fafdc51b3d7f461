"""``toolctl top``: per-tool figures of the last N minutes and how they moved.

The figures are ``toolctl.metrics.stats`` grouped by tool, over two adjacent windows of the
same length: the current one ``[until - window, until)`` and the prior one
``[until - 2·window, until - window)``. Nothing is redefined here: calls, errors, error
rate, auth failures, retries and p95 are exactly what ``toolctl stats`` reports for the
same window.

A *mover* is a tool whose error rate rose by at least ``MOVER_ERROR_RATE_PP`` (absolute)
or whose p95 grew by at least ``MOVER_P95_RATIO`` (×) against the prior window. Its score is
how many times over its threshold it moved, on whichever measure moved more:
max(error-rate rise / MOVER_ERROR_RATE_PP, p95 ratio / MOVER_P95_RATIO). The worst
``MOVERS_SHOWN`` by score are ranked, so a p95 that grew 30× outranks an error rate up 1.5
points (an error-rate-first order buried it).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, Field, field_validator

from toolctl.errors import UsageError
from toolctl.timeutil import before, iso_utc

MOVER_ERROR_RATE_PP = 0.01  # +1 percentage point of calls ending in error
MOVER_P95_RATIO = 1.5  # p95 at least 1.5× the prior window's
MOVERS_SHOWN = 3


class LiveQuery(BaseModel):
    """The window ending at ``until`` (None: now, on the side that runs the query)."""

    window: timedelta = Field(timedelta(minutes=5))
    until: datetime | None = None
    tool: str | None = None
    tenant: str | None = None
    version: str | None = None
    service: str | None = None

    @field_validator("window")
    @classmethod
    def _positive(cls, window: timedelta) -> timedelta:
        if window <= timedelta(0):
            raise UsageError(f"invalid --window {window}", hint="use a positive duration: 1m, 5m, 1h")
        return window


def _stats_by_tool(store: Any, q: LiveQuery, since: datetime, until: datetime) -> list[dict]:
    from toolctl.metrics.stats import StatsQuery, stats

    return stats(store, StatsQuery(by=["tool"], since=since, until=until, tool=q.tool,
                                   tenant=q.tenant, version=q.version, service=q.service))


def _total(store: Any, q: LiveQuery, since: datetime, until: datetime) -> dict | None:
    from toolctl.metrics.stats import StatsQuery, stats

    rows = stats(store, StatsQuery(since=since, until=until, tool=q.tool, tenant=q.tenant,
                                   version=q.version, service=q.service))
    return rows[0] if rows else None


def mover_score(row: dict) -> float | None:
    """How many times over its threshold the row moved (>= 1), or None when it is no mover."""
    d_err = row.get("error_rate_delta")
    ratio = row.get("p95_ratio")
    score = max((d_err or 0.0) / MOVER_ERROR_RATE_PP, (ratio or 0.0) / MOVER_P95_RATIO)
    return score if score >= 1.0 else None


def live_snapshot(store: Any, q: LiveQuery) -> dict[str, Any]:
    """One frame of ``toolctl top`` as a JSON-ready dict.

    Keys: ``since``/``until`` (ISO 8601 UTC), ``window_s``, ``total`` (the stats figures of
    the whole window, or None), ``rows`` (one per tool with calls in the window, calls
    descending: tool, calls, calls_per_s, errors, error_rate, p95_ms, auth_failures,
    retries, prior_calls, prior_error_rate, prior_p95_ms, error_rate_delta, p95_ratio,
    mover_rank) and ``movers`` (tool names, worst first).
    """
    from toolctl.timeutil import utcnow

    until = q.until or utcnow().replace(microsecond=0)  # a readable frame title
    since = before(until, q.window, option="--window")
    prior_since = before(since, q.window, option="--window")
    now_rows = _stats_by_tool(store, q, since, until)
    prior = {r["tool"]: r for r in _stats_by_tool(store, q, prior_since, since)}
    seconds = q.window.total_seconds()
    rows = []
    for r in now_rows:
        p = prior.get(r["tool"])
        d_err = None if p is None else r["error_rate"] - p["error_rate"]
        ratio = (None if p is None or not p["p95_ms"] or r["p95_ms"] is None
                 else r["p95_ms"] / p["p95_ms"])
        rows.append({
            "tool": r["tool"], "calls": r["calls"], "calls_per_s": r["calls"] / seconds,
            "errors": r["errors"], "error_rate": r["error_rate"], "p95_ms": r["p95_ms"],
            "auth_failures": r["auth_failures"], "retries": r["retries"],
            "prior_calls": None if p is None else p["calls"],
            "prior_error_rate": None if p is None else p["error_rate"],
            "prior_p95_ms": None if p is None else p["p95_ms"],
            "error_rate_delta": d_err, "p95_ratio": ratio, "mover_rank": None,
        })
    rows.sort(key=lambda r: (-r["calls"], str(r["tool"])))
    movers = sorted((r for r in rows if mover_score(r) is not None),
                    key=lambda r: (-mover_score(r), str(r["tool"])))[:MOVERS_SHOWN]
    for rank, r in enumerate(movers, 1):
        r["mover_rank"] = rank
    return {"since": iso_utc(since), "until": iso_utc(until), "window_s": seconds,
            "total": _total(store, q, since, until), "rows": rows,
            "movers": [r["tool"] for r in movers]}
