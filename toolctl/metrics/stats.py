"""``toolctl stats``: error rates, latency quantiles, auth failures and retries per group."""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import lru_cache
from importlib import resources
from typing import Any

from pydantic import BaseModel, Field, field_validator

from toolctl.errors import UsageError
from toolctl.store import Store, quote_ident
from toolctl.timeutil import iso_utc

#: Group-by dimensions: the name operators type (and the JSON key) → the column.
DIMENSIONS: dict[str, str] = {
    "tool": "tool",
    "tenant": "tenant",
    "version": "version",
    "service": "service",
    "user": "user_id",
    "error_code": "error_code",
    "status": "status",
}
#: The widest --every: the span of the years 0001-9999 (a wider bucket splits nothing more),
#: well inside what DuckDB's time_bucket holds in microseconds (~292,000 years).
MAX_EVERY = timedelta(days=3_652_059)
FIGURES = ("attempts", "calls", "retries", "errors", "error_rate", "auth_failures",
           "p50_ms", "p95_ms", "p99_ms")


class CallFilter(BaseModel):
    """Which tool calls count: the half-open window [since, until) and equality filters.

    Shared by every question asked of the same calls (stats, the latency histogram), with
    one SQL text for it (``queries/call_filter.sql``)."""

    since: datetime | None = None
    until: datetime | None = None
    tool: str | None = None
    tenant: str | None = None
    version: str | None = None
    service: str | None = None
    status: str | None = None

    @field_validator("status")
    @classmethod
    def _known_status(cls, status: str | None) -> str | None:
        if status is not None and status not in ("ok", "error"):
            raise UsageError(f"invalid --status {status!r}", hint="--status takes ok or error")
        return status

    def filters(self) -> dict[str, Any]:
        """The filter values, as the bound parameters of ``call_filter.sql``."""
        return {name: getattr(self, name) for name in CallFilter.model_fields}


class StatsQuery(CallFilter):
    """What to compute: grouping, filters and the half-open window [since, until)."""

    by: list[str] = Field(default_factory=list)
    every: timedelta | None = None

    @field_validator("by")
    @classmethod
    def _known_dims(cls, dims: list[str]) -> list[str]:
        unknown = [d for d in dims if d not in DIMENSIONS]
        if unknown:
            raise UsageError(
                f"cannot group by {unknown[0]!r}",
                hint="--by takes one of: " + ", ".join(DIMENSIONS) + " (time buckets: --every 5m)",
            )
        return list(dict.fromkeys(dims))  # repeated --by tool is one dimension

    @field_validator("every")
    @classmethod
    def _bucket_width(cls, every: timedelta | None) -> timedelta | None:
        if every is not None and every > MAX_EVERY:
            raise UsageError(
                f"invalid --every: {every.days:,} days is wider than the years 0001-9999",
                hint=f"use a width up to {MAX_EVERY.days}d, or leave --every out for one row per group",
            )
        return every


def _query_text(name: str) -> str:
    return resources.files("toolctl.metrics").joinpath("queries", f"{name}.sql").read_text("utf-8")


@lru_cache(maxsize=1)
def call_filter_sql() -> str:
    """The WHERE condition of ``CallFilter`` (comment lines dropped), for ``{call_filter}``."""
    lines = _query_text("call_filter").splitlines()
    return "\n".join(line for line in lines if not line.lstrip().startswith("--")).strip()


@lru_cache(maxsize=1)
def _template() -> str:
    return _query_text("stats")


def render_stats_sql(dims: list[str], bucketed: bool = False, resolve_ties: bool = True) -> str:
    """The stats query for these dimensions; identifiers come from DIMENSIONS only.

    ``bucketed`` (the query has ``every``) adds the time bucket to the call-level keys;
    without it they hold the dimensions alone. ``resolve_ties=False``: the cheaper query
    that leaves calls whose final attempt is a tie (``tie_calls``) out of ``errors``.
    """
    out = [quote_ident(d, DIMENSIONS) for d in dims]
    cols = [quote_ident(DIMENSIONS[d], DIMENSIONS.values()) for d in dims]
    grp = out + (["bucket"] if bucketed else [])  # "bucket": a fixed name, not input
    return _template().format(
        call_filter=call_filter_sql(),
        dim_cols="".join(f"{c} AS {o}, " for c, o in zip(cols, out)),
        dims="".join(f"{o}, " for o in out),
        dims_out="".join(f"t.{o}, " for o in out),
        dims_t="".join(f"t.{o}, " for o in out),
        grp="".join(f"{g}, " for g in grp),
        a_grp="".join(f"a.{g}, " for g in grp),
        x_join="".join(f" AND a.{g} IS NOT DISTINCT FROM x.{g}" for g in grp),
        join_c="".join(f" AND t.{g} IS NOT DISTINCT FROM c.{g}" for g in grp),
        join_x="".join(f" AND t.{g} IS NOT DISTINCT FROM x.{g}" for g in grp),
        order_dims="".join(f", t.{o}" for o in out),
        per_call="MATERIALIZED" if resolve_ties else "NOT MATERIALIZED",
        tie_source="by_tie" if resolve_ties else "no_ties",
    )


def stats(store: Store, query: StatsQuery) -> list[dict[str, Any]]:
    """Figures per group, as JSON-ready dicts (group keys first, then FIGURES).

    ``bucket`` (ISO 8601 UTC start of the time bucket) is present only with ``every``.
    Rows are ordered by bucket, then calls descending. No matching calls → [].
    """
    if query.since and query.until and query.since >= query.until:
        raise UsageError(
            f"empty window: --since {iso_utc(query.since)} is not before --until {iso_utc(query.until)}",
            hint="--since must be earlier than --until (the window is [since, until))",
        )
    params = {**query.filters(), "every": query.every}
    bucketed = query.every is not None
    rows = store.fetch_dicts(render_stats_sql(query.by, bucketed, resolve_ties=False), params)
    if any(row["tie_calls"] for row in rows):  # rare: an error and a success at the same instant
        rows = store.fetch_dicts(render_stats_sql(query.by, bucketed, resolve_ties=True), params)
    for row in rows:
        del row["tie_calls"]
    if query.every is None:
        for row in rows:
            del row["bucket"]
    for row in rows:
        row["error_rate"] = float(row["error_rate"])
    return rows
