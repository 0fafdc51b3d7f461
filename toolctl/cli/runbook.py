"""`toolctl runbook`: list, show and run the single-window health runbooks."""

from __future__ import annotations

from typing import Annotated, List, Optional

import typer

from toolctl.cli._engine import Engine, EngineOpt, LakeOpt, SparkMasterOpt, lake_source
from toolctl.cli._output import DocFormat, label, print_json, stdout, table

FormatOpt = Annotated[DocFormat, typer.Option("--format", "-f", help="Output format.")]

app = typer.Typer(help="Runbooks: human remediation steps next to machine checks. "
                  "`run` exits 0 pass, 10 warn, 20 fail, 40 error, 2 usage.", no_args_is_help=True)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="runbook")


@app.command("list")
def list_cmd(fmt: FormatOpt = DocFormat.table) -> None:
    """List the built-in runbooks.

    Example: toolctl runbook list
    """
    from toolctl.gate.runbook import list_builtin, load_runbook

    rows = []
    for name in list_builtin():
        rb = load_runbook(name)
        rows.append({"name": rb.name, "mode": rb.mode, "title": rb.title, "checks": len(rb.checks)})
    if fmt is DocFormat.json:
        print_json(rows)
        return
    stdout().print(table("Runbooks", [("name", "left"), ("mode", "left"), ("checks", "right"), ("title", "left")],
                         [[r["name"], r["mode"], str(r["checks"]), r["title"]] for r in rows],
                         caption="single: `toolctl runbook run NAME`; compare: `toolctl gate --runbook NAME`"))


@app.command("show")
def show_cmd(name: Annotated[str, typer.Argument(help="Built-in name or YAML file.")],
             fmt: FormatOpt = DocFormat.table) -> None:
    """Show a runbook: description, remediation steps and its checks.

    Example: toolctl runbook show retry-storm
    """
    from rich.text import Text

    from toolctl.gate.runbook import load_runbook

    rb = load_runbook(name)
    if fmt is DocFormat.json:
        print_json(rb.model_dump())
        return
    console = stdout()
    console.print(label(rb.title, style="bold") + label(f"  ({rb.name}, {rb.mode})"))
    console.print(rb.description.rstrip(), markup=False)
    console.print(Text("Remediation", style="bold"))
    for i, step in enumerate(rb.remediation, 1):
        console.print(f"  {i}. {step}", markup=False)
    rows = []
    for c in rb.checks:
        params = {k: v for k, v in c.model_dump().items()
                  if k not in ("name", "kind", "severity", "dry_run", "description") and v is not None}
        rows.append([c.name, c.kind, c.severity + (" (dry run)" if c.dry_run else ""),
                     ", ".join(f"{k}={v}" for k, v in params.items())])
    console.print(table("Checks", [("check", "left"), ("kind", "left"), ("severity", "left"), ("parameters", "left")], rows))


@app.command("run")
def run_cmd(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Built-in name or YAML file of a single-window runbook.")],
    since: Annotated[Optional[str], typer.Option(help="Window start (default: 1h before --until).")] = None,
    until: Annotated[Optional[str], typer.Option(help="Window end, exclusive (default: now).")] = None,
    tool: Annotated[Optional[List[str]], typer.Option("--tool", help="Only these tools (repeatable).")] = None,
    fmt: FormatOpt = DocFormat.table,
    engine: EngineOpt = Engine.duckdb,
    lake: LakeOpt = None,
    spark_master: SparkMasterOpt = None,
) -> None:
    """Run a single-window runbook: exit 0 pass, 10 warn, 20 fail, 40 error.

    Example: toolctl runbook run retry-storm --since 2026-11-24T09:00:00Z --until 2026-11-24T10:00:00Z
    """
    from toolctl.cli.gate import _STYLE, print_checks
    from toolctl.errors import LakeError, StoreError
    from toolctl import api
    from toolctl.gate.runbook import load_runbook
    from toolctl.timeutil import parse_time, utcnow

    rb = load_runbook(name)
    now = utcnow()
    s, u = parse_time(since, option="--since", now=now), parse_time(until, option="--until", now=now)
    try:
        req = api.request_model("runbook_run", "write")(runbook=rb, since=s, until=u, tools=tool or None, now=now)
        source = lake_source(engine, lake, spark_master)
        if source is not None:
            # A lake is read-only: the run is not a ledger entry of the store.
            from toolctl.gate import run_runbook

            with source:
                report = api.jsonable(run_runbook(source, rb, since=s, until=u, tools=tool or None, now=now))
        else:
            # A run is a ledger entry; while `toolctl serve` holds the store, its writer runs it.
            with ctx.obj.open_write_or_remote() as store:
                report = api.write(store, "runbook_run", req)
    except (StoreError, LakeError) as exc:  # the store or the lake cannot be read
        from toolctl.cli._output import print_error

        print_error(exc)
        report = {"status": "error", "exit_code": 40, "reason": exc.message, "runbook": rb.name, "checks": []}
    if fmt is DocFormat.json:
        print_json(report)
    else:
        from rich.text import Text

        console = stdout()
        console.print(Text(f"{report['status'].upper()}", style=_STYLE[report["status"]]) +
                      label(f"  runbook {rb.name}" + (f"  window {report['since']} .. {report['until']}" if report.get("since") else "")))
        if report["checks"]:
            print_checks(console, "Checks", report["checks"])
        console.print(f"Reason: {report['reason']}.")
        if report["status"] != "pass":
            console.print(f"Remediation (`toolctl runbook show {rb.name}`):")
            for i, step in enumerate(rb.remediation, 1):
                console.print(f"  {i}. {step}", markup=False)
    raise typer.Exit(report["exit_code"])
