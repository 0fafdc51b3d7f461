"""`toolctl lake …`: write the store to a Parquet lake, compact it, list it (docs/lake.md).

While `toolctl serve` holds the store, `export` and `compact` run on the server (through its
writer, toolctl.api), so the lake path must be one the server can reach (it is sent absolute).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from toolctl.cli._output import DocFormat, fmt_int, print_json, stdout, table

app = typer.Typer(help="The Parquet lake: export, compact, list.", no_args_is_help=True)

FormatOpt = Annotated[DocFormat, typer.Option("--format", "-f", help="Output format.")]
LakeDir = Annotated[Path, typer.Argument(metavar="DIR", help="The lake directory.")]


def _abs(path: Path) -> str:
    return str(path.expanduser().resolve())


@app.command("export")
def export(
    ctx: typer.Context,
    lake: LakeDir,
    since: Annotated[Optional[str], typer.Option(help="Rows from this time (RFC 3339 or an age like 2h); widened to the hour.")] = None,
    until: Annotated[Optional[str], typer.Option(help="Rows before this time; widened to the hour.")] = None,
    fmt: FormatOpt = DocFormat.table,
) -> None:
    """Write the store's events and spans not yet in the lake as Parquet files (re-running adds nothing).

    Example: toolctl lake export /data/lake --since 24h
    """
    from toolctl import api
    from toolctl.timeutil import parse_time

    req = api.LakeExport(lake=_abs(lake), since=parse_time(since, option="--since"),
                         until=parse_time(until, option="--until"))
    with ctx.obj.open_write_or_remote() as store:
        doc = api.write(store, "lake_export", req)
    if fmt is DocFormat.json:
        print_json(doc)
        return
    rows = doc["rows"]
    stdout().print(f"{len(doc['files'])} file(s) written to {doc['lake']}: {rows['events']:,} events, "
                   f"{rows['spans']:,} spans (writer {doc['writer_id']})", highlight=False)


@app.command("compact")
def compact(
    ctx: typer.Context,
    lake: LakeDir,
    before: Annotated[Optional[str], typer.Option(help="Compact partitions of hours before this time (RFC 3339 or an age); default: hours that ended 1h ago.")] = None,
    fmt: FormatOpt = DocFormat.table,
) -> None:
    """Merge the small files of each closed hour into one file; the ledger records it.

    Example: toolctl lake compact /data/lake --before 2h
    """
    from toolctl import api
    from toolctl.timeutil import parse_time

    req = api.LakeCompact(lake=_abs(lake), before=parse_time(before, option="--before"))
    with ctx.obj.open_write_or_remote() as store:
        doc = api.write(store, "lake_compact", req)
    if fmt is DocFormat.json:
        print_json(doc)
        return
    body = [(c["partition"], str(len(c["inputs"])), fmt_int(c["output"]["rows"]), c["output"]["path"].rsplit("/", 1)[1])
            for c in doc["compacted"]]
    stdout().print(table(f"Compacted (hours before {doc['before']})",
                         [("partition", "left"), ("inputs", "right"), ("rows", "right"), ("output", "left")], body))
    if doc["busy"]:
        from toolctl.cli._output import warn

        warn(f"{len(doc['busy'])} partition(s) skipped: another compactor holds their lock")


@app.command("ls")
def ls(lake: LakeDir, fmt: FormatOpt = DocFormat.table) -> None:
    """Files, rows and bytes per partition of the lake.

    Example: toolctl lake ls /data/lake --format json
    """
    from toolctl.lake.layout import list_lake

    rows = list_lake(lake.expanduser())
    if fmt is DocFormat.json:
        print_json(rows)
        return
    body = [(r["partition"], fmt_int(r["files"]), fmt_int(r["rows"]), fmt_int(r["bytes"]), ", ".join(r["writers"]))
            for r in rows]
    stdout().print(table("Lake", [("partition", "left"), ("files", "right"), ("rows", "right"),
                                  ("bytes", "right"), ("writers", "left")], body))
