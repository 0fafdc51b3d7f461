"""`toolctl stats`: error rates, latency quantiles, auth failures and retries."""

from __future__ import annotations

from typing import Annotated, List, Optional

import typer

from toolctl.cli._engine import Engine, EngineOpt, LakeOpt, SparkMasterOpt, lake_source
from toolctl.cli._output import Format, fmt_int, fmt_ms, fmt_pct, print_csv, print_json, stdout, table

# Colour thresholds of the human table (the figures themselves are never altered).
ERROR_RATE_WARN, ERROR_RATE_CRIT = 0.01, 0.05
P95_WARN_MS, P95_CRIT_MS = 1000.0, 2500.0
P99_WARN_MS, P99_CRIT_MS = 2500.0, 5000.0


def register(app: typer.Typer) -> None:
    app.command("stats")(stats)


def stats(
    ctx: typer.Context,
    by: Annotated[Optional[List[str]], typer.Option("--by", help="Group by: tool, tenant, version, service, user, error_code, status (repeatable).")] = None,
    every: Annotated[Optional[str], typer.Option(help="Time buckets, e.g. 5m, 1h, 1d (UTC-aligned).")] = None,
    tool: Annotated[Optional[str], typer.Option(help="Only this tool.")] = None,
    tenant: Annotated[Optional[str], typer.Option(help="Only this tenant.")] = None,
    version: Annotated[Optional[str], typer.Option(help="Only this version.")] = None,
    service: Annotated[Optional[str], typer.Option(help="Only this service.")] = None,
    status: Annotated[Optional[str], typer.Option(help="Only attempts with this status (ok or error).")] = None,
    since: Annotated[Optional[str], typer.Option(help="Window start (inclusive): RFC 3339 or an age like 15m, 2h, 7d.")] = None,
    until: Annotated[Optional[str], typer.Option(help="Window end (exclusive): RFC 3339 or an age.")] = None,
    fmt: Annotated[Format, typer.Option("--format", "-f", help="Output format.")] = Format.table,
    plot: Annotated[bool, typer.Option("--plot", help="Chart error rate and p95 per --every bucket.")] = False,
    histogram: Annotated[bool, typer.Option("--histogram", help="Latency distribution with p50/p95/p99 marked.")] = False,
    bins: Annotated[int, typer.Option(help="Bins of --histogram.", min=1, max=200)] = 20,
    scale: Annotated[str, typer.Option(help="Bin edges of --histogram: log or linear.")] = "log",
    engine: EngineOpt = Engine.duckdb,
    lake: LakeOpt = None,
    spark_master: SparkMasterOpt = None,
) -> None:
    """Tool-call figures: calls, errors, error rate, auth failures, retries, p50/p95/p99.

    Example: toolctl stats --by tool --by version --since 2h
    (charts: toolctl stats --every 5m --plot; toolctl stats --histogram --tool search_web)
    """
    from toolctl import api
    from toolctl.metrics.stats import FIGURES, StatsQuery
    from toolctl.timeutil import parse_duration, parse_time, utcnow

    from toolctl.errors import UsageError

    now = utcnow()
    if histogram:
        if plot or by or every is not None:
            raise UsageError("--histogram cannot be combined with --plot, --by or --every",
                             hint="e.g. toolctl stats --histogram --tool search_web --since 2h")
        if fmt is Format.csv:
            raise UsageError("--histogram has no csv output", hint="use --format json or table")
        from toolctl.metrics.histogram import HistogramQuery

        hq = HistogramQuery(bins=bins, scale=scale, tool=tool, tenant=tenant, version=version,
                            service=service, status=status,
                            since=parse_time(since, option="--since", now=now),
                            until=parse_time(until, option="--until", now=now))
        with ctx.obj.open_read() as store:
            doc = api.read(store, "latency_histogram", hq)
        if fmt is Format.json:
            print_json(doc)
        else:
            from toolctl.cli._views import render_histogram

            render_histogram(doc, stdout())
        return
    if plot and every is None:
        raise UsageError("--plot needs --every", hint="e.g. toolctl stats --every 5m --plot")
    query = StatsQuery(
        by=by or [],
        every=parse_duration(every, option="--every") if every is not None else None,
        since=parse_time(since, option="--since", now=now),
        until=parse_time(until, option="--until", now=now),
        tool=tool, tenant=tenant, version=version, service=service, status=status,
    )
    source = lake_source(engine, lake, spark_master)
    with source or ctx.obj.open_read() as store:  # a RemoteStore while `toolctl serve` holds the file
        rows = api.read(store, "stats", query)
        total = totals = None
        if fmt is Format.table and plot:  # each group's calls, not a sum over its buckets
            totals = api.read(store, "stats", query.model_copy(update={"every": None}))
        elif fmt is Format.table and (query.by or query.every):
            total = api.read(store, "stats", query.model_copy(update={"by": [], "every": None}))
        elif fmt is Format.table:
            total = rows  # ungrouped: the one row is the total (no second query)
    keys = list(query.by) + (["bucket"] if query.every else [])
    if fmt is Format.json:
        print_json(rows)
        return
    if fmt is Format.csv:
        print_csv(rows, keys + list(FIGURES))
        return
    if plot:
        from toolctl.cli._views import render_plot

        filters = {"tool": tool, "tenant": tenant, "version": version, "service": service, "status": status}
        scope = ", ".join(f"{k}={v}" for k, v in filters.items() if v) or "all calls"
        render_plot(rows, totals, list(query.by), every, stdout(), scope=scope)
        return
    render_table(rows, keys, total[0] if total else None)


def _colour(value: float | None, warn: float, crit: float, text: str):
    from rich.text import Text

    if value is None:
        return Text(text)
    style = "bold red" if value >= crit else "yellow" if value >= warn else "green"
    return Text(text, style=style)


def render_table(rows: list[dict], keys: list[str], total: dict | None) -> None:
    if keys and not any(k == "bucket" for k in keys):
        rows = sorted(rows, key=lambda r: -r["calls"])
    cols = [(k, "left") for k in keys] + [
        ("calls", "right"), ("attempts", "right"), ("retries", "right"), ("errors", "right"),
        ("error rate", "right"), ("auth fail", "right"), ("p50 ms", "right"), ("p95 ms", "right"),
        ("p99 ms", "right"),
    ]
    body = []
    for r in rows:
        body.append([("∅" if r[k] is None else str(r[k])) for k in keys] + [
            fmt_int(r["calls"]), fmt_int(r["attempts"]), fmt_int(r["retries"]), fmt_int(r["errors"]),
            _colour(r["error_rate"], ERROR_RATE_WARN, ERROR_RATE_CRIT, fmt_pct(r["error_rate"])),
            fmt_int(r["auth_failures"]), fmt_ms(r["p50_ms"]),
            _colour(r["p95_ms"], P95_WARN_MS, P95_CRIT_MS, fmt_ms(r["p95_ms"])),
            _colour(r["p99_ms"], P99_WARN_MS, P99_CRIT_MS, fmt_ms(r["p99_ms"])),
        ])
    if total:
        caption = (f"Total: {total['calls']:,} calls, {total['attempts']:,} attempts "
                   f"({total['retries']:,} retries), {total['errors']:,} errors "
                   f"({fmt_pct(total['error_rate'])}), {total['auth_failures']:,} auth failures, "
                   f"p95 {fmt_ms(total['p95_ms'])} ms, p99 {fmt_ms(total['p99_ms'])} ms")
    else:
        caption = "No tool calls in this window. Ingest logs with `toolctl ingest PATH`."
    stdout().print(table("Tool calls", cols, body, caption=caption))
