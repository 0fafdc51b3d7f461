"""``toolctl stats --histogram``: the latency distribution of tool-call attempts.

Bins are counted in DuckDB (``queries/latency_histogram.sql``). The marked percentiles are
not recomputed here: p50/p95/p99 come from ``toolctl.metrics.stats`` for the same filters,
so they are the figures ``toolctl stats`` prints (``quantile_cont`` over attempts).
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from typing import Any

from pydantic import BaseModel, Field, field_validator

from toolctl.errors import UsageError
from toolctl.metrics.stats import CallFilter, call_filter_sql
from toolctl.store import Store
from toolctl.timeutil import iso_utc

SCALES = ("log", "linear")


class HistogramQuery(CallFilter):
    """Which attempts to count (the filters of ``toolctl stats``) and how to bin them."""

    bins: int = Field(20, ge=1, le=200)
    scale: str = "log"

    @field_validator("scale")
    @classmethod
    def _known_scale(cls, scale: str) -> str:
        if scale not in SCALES:
            raise UsageError(f"invalid --scale {scale!r}", hint="--scale takes log or linear")
        return scale


@lru_cache(maxsize=1)
def _sql() -> str:
    return resources.files("toolctl.metrics").joinpath(
        "queries", "latency_histogram.sql").read_text("utf-8").format(call_filter=call_filter_sql())


def latency_histogram(store: Store, query: HistogramQuery) -> dict[str, Any]:
    """The histogram and its percentiles as a JSON-ready dict.

    Keys: the filters (tool, tenant, version, service, status, since, until), ``scale``,
    ``count`` (attempts), ``p50_ms``/``p95_ms``/``p99_ms`` (None without data) and ``bins``:
    ``[{lower_ms, upper_ms, count}]`` with ``lower <= x < upper`` (the last bin includes
    its upper edge). No matching attempts → ``count`` 0 and ``bins`` [].
    Raises UsageError for an empty window or a bad status/scale.
    """
    from toolctl.metrics.stats import StatsQuery, stats

    filters = query.filters()
    figures = stats(store, StatsQuery(**filters))  # validates the window and status too
    rows = store.fetch_dicts(_sql(), {**filters, "bins": query.bins, "log": query.scale == "log"})
    top = figures[0] if figures else {}
    return {
        "tool": query.tool, "tenant": query.tenant, "version": query.version,
        "service": query.service, "status": query.status,
        "since": iso_utc(query.since), "until": iso_utc(query.until), "scale": query.scale,
        "count": top.get("attempts", 0),
        "p50_ms": top.get("p50_ms"), "p95_ms": top.get("p95_ms"), "p99_ms": top.get("p99_ms"),
        "bins": [{"lower_ms": float(r["lower_ms"]), "upper_ms": float(r["upper_ms"]),
                  "count": int(r["count"])} for r in rows],
    }
