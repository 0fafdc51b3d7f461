"""`toolctl baseline` (save/list/show/delete) and `toolctl regress`."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from toolctl.cli._engine import Engine, EngineOpt, LakeOpt, SparkMasterOpt, lake_source

from toolctl.cli._output import DocFormat, fmt_int, fmt_ms, fmt_pct, label, print_json, stdout, table

FormatOpt = Annotated[DocFormat, typer.Option("--format", "-f", help="Output format.")]

app = typer.Typer(help="Saved baselines: per-tool figures and latency sketches to compare against later.",
                  no_args_is_help=True)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="baseline")
    root.command("regress")(regress)


def _render(doc: dict) -> None:
    rows = [[t["tool"], fmt_int(t["calls"]), fmt_int(t["errors"]), fmt_pct(t["error_rate"]),
             fmt_int(t["auth_failures"]), fmt_ms(t["p50_ms"]), fmt_ms(t["p95_ms"]), fmt_ms(t["p99_ms"])]
            for t in doc["tools"]]
    cols = [("tool", "left"), ("calls", "right"), ("errors", "right"), ("error rate", "right"),
            ("auth fail", "right"), ("p50 ms", "right"), ("p95 ms", "right"), ("p99 ms", "right")]
    stdout().print(table(f"Baseline {doc['name']}", cols, rows,
                         caption=f"version {doc['version'] or 'all'}, window {doc['since'] or '…'} .. "
                                 f"{doc['until'] or '…'}, saved {doc['created_at']}"))


@app.command("save")
def save(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Baseline name.")],
    version: Annotated[Optional[str], typer.Option(help="Only this version.")] = None,
    since: Annotated[Optional[str], typer.Option(help="Window start (inclusive).")] = None,
    until: Annotated[Optional[str], typer.Option(help="Window end (exclusive).")] = None,
    replace: Annotated[bool, typer.Option("--replace", help="Overwrite a baseline of that name.")] = False,
    fmt: FormatOpt = DocFormat.table,
) -> None:
    """Snapshot per-tool figures and a latency sketch under NAME.

    Example: toolctl baseline save stable --version v1.8.2 --since 2026-11-24T06:00:00Z
    """
    from toolctl import api
    from toolctl.timeutil import parse_time, utcnow

    now = utcnow()
    req = api.BaselineSave(name=name, version=version, since=parse_time(since, option="--since", now=now),
                           until=parse_time(until, option="--until", now=now), now=now, replace=replace)
    # A save is a ledger entry; while `toolctl serve` holds the store, its writer commits it.
    with ctx.obj.open_write_or_remote() as store:
        doc = api.write(store, "baseline_save", req)
    print_json(doc) if fmt is DocFormat.json else _render(doc)


@app.command("list")
def list_cmd(ctx: typer.Context, fmt: FormatOpt = DocFormat.table) -> None:
    """List saved baselines.

    Example: toolctl baseline list
    """
    from toolctl import api

    with ctx.obj.open_read() as store:  # answered by `toolctl serve` when it holds the store
        rows = api.read(store, "baseline_list", api.NoArgs())
    if fmt is DocFormat.json:
        print_json(rows)
        return
    stdout().print(table("Baselines", [("name", "left"), ("version", "left"), ("since", "left"), ("until", "left"),
                                       ("tools", "right"), ("calls", "right"), ("saved", "left")],
                         [[r["name"], r["version"] or "all", r["since"] or "…", r["until"] or "…",
                           fmt_int(r["tools"]), fmt_int(r["calls"]), r["created_at"]] for r in rows],
                         caption=None if rows else "No baselines. Save one with `toolctl baseline save NAME`."))


@app.command("show")
def show(ctx: typer.Context, name: Annotated[str, typer.Argument(help="Baseline name.")],
         fmt: FormatOpt = DocFormat.table) -> None:
    """Show a baseline's per-tool figures.

    Example: toolctl baseline show stable
    """
    from toolctl import api

    with ctx.obj.open_read() as store:
        doc = api.read(store, "baseline_show", api.BaselineName(name=name))
    print_json(doc) if fmt is DocFormat.json else _render(doc)


@app.command("delete")
def delete(ctx: typer.Context, name: Annotated[str, typer.Argument(help="Baseline name.")]) -> None:
    """Delete a baseline.

    Example: toolctl baseline delete stable
    """
    from toolctl import api

    with ctx.obj.open_write_or_remote() as store:
        api.write(store, "baseline_delete", api.BaselineName(name=name))
    typer.echo(f"Deleted baseline {name}.", err=True)


def regress(
    ctx: typer.Context,
    baseline: Annotated[str, typer.Option("--baseline", help="Saved baseline name.")],
    since: Annotated[Optional[str], typer.Option(help="Current window start (default: 1h before --until).")] = None,
    until: Annotated[Optional[str], typer.Option(help="Current window end, exclusive (default: now).")] = None,
    fmt: FormatOpt = DocFormat.table,
    engine: EngineOpt = Engine.duckdb,
    lake: LakeOpt = None,
    spark_master: SparkMasterOpt = None,
) -> None:
    """Flag tools regressed against a baseline: exit 0 ok, 10 hold, 20 regressed, 30 no data, 40 error.

    Example: toolctl regress --baseline stable --since 1h
    """
    from datetime import timedelta

    from pathlib import Path

    from toolctl import api
    from toolctl.cli.gate import GATE_EXIT, print_checks
    from toolctl.errors import LakeError, StoreError
    from toolctl.timeutil import before, parse_time, utcnow

    now = utcnow()
    u = parse_time(until, option="--until", now=now) or now
    s = parse_time(since, option="--since", now=now) or before(u, timedelta(hours=1), option="--until")
    if lake is None:
        lake_source(engine, lake, spark_master)  # refuses --engine spark without --lake
    elif engine is Engine.spark and ctx.obj.server() is not None:
        from toolctl.errors import UsageError

        raise UsageError("regress --engine spark cannot run while `toolctl serve` holds the store: "
                         "the collector would start Spark in its own process",
                         hint="use --engine duckdb (the lake is read the same way), or stop the collector")
    # The lake (the current window's calls, if given) is opened by the operation itself, so a
    # regress runs whole where the store is: here, or in `toolctl serve` when it holds it.
    req = api.Regress(baseline=baseline, since=s, until=u, engine=engine.value, spark_master=spark_master,
                      lake=None if lake is None else str(Path(lake).expanduser().absolute()))
    try:
        with ctx.obj.open_read() as store:
            report = api.read(store, "regress", req)
    except (StoreError, LakeError) as exc:  # the store or the lake cannot be read
        from toolctl.cli._output import print_error

        print_error(exc)
        report = {"verdict": "error", "exit_code": 40, "reason": exc.message, "checks": [], "regressed_tools": []}
    if fmt is DocFormat.json:
        print_json(report)
    else:
        from toolctl.cli.gate import _STYLE
        from rich.text import Text

        console = stdout()
        console.print(Text(f"VERDICT: {report['verdict'].upper()}", style=_STYLE[report["verdict"]]) +
                      label(f"  regressed tools: {', '.join(report['regressed_tools']) or 'none'}"))
        if report["checks"]:
            print_checks(console, "Checks", report["checks"])
        console.print(f"Reason: {report['reason']}.")
    raise typer.Exit(GATE_EXIT[report["verdict"]])
