"""`toolctl db …`: where the store is, what is in it, and its upkeep.

While `toolctl serve` holds the store: `info`, `prune` and `backup` run on the server (the
operations of toolctl.api; prune and backup through its writer, so they are consistent with
what it is ingesting); `migrate` reports the server's schema (serve migrates on start);
`vacuum` needs the file to itself and refuses with a hint.
"""

from __future__ import annotations

from typing import Annotated

import typer

from toolctl.cli._output import DocFormat, fmt_int, print_json, stdout, table

app = typer.Typer(help="The store: its location and upkeep.", no_args_is_help=True)

FormatOpt = Annotated[DocFormat, typer.Option("--format", "-f", help="Output format.")]


def _size(n: int | None) -> str:
    if n is None:
        return "–"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024
    return str(n)


def _refuse_while_served(ctx: typer.Context, what: str) -> None:
    info = ctx.obj.remote_server()
    if info is not None:
        from toolctl.errors import StoreBusyError

        raise StoreBusyError(f"`toolctl db {what}` needs the store to itself, but `toolctl serve` "
                             f"(pid {info.pid}, {info.url}) holds {ctx.obj.db_path}",
                             hint="stop the collector (SIGTERM), run it, then start the collector again")


@app.command("path")
def path(ctx: typer.Context) -> None:
    """Print the store file in use (--db > $TOOLCTL_DB > toolctl.toml > per-user data file).

    Example: toolctl db path
    """
    typer.echo(str(ctx.obj.db_path))


@app.command("info")
def info(ctx: typer.Context, fmt: FormatOpt = DocFormat.table) -> None:
    """Path, size, schema version, row counts, tool-call attempts and their time range, ledger entries.

    Example: toolctl db info --format json
    """
    from toolctl import api

    with ctx.obj.open_read() as store:
        doc = api.read(store, "db_info", api.NoArgs())
    if fmt is DocFormat.json:
        print_json(doc)
        return
    attempts = doc["attempts"]
    out = stdout()
    out.print(f"store    {doc['path'] or str(ctx.obj.db_path) + ' (does not exist yet)'}", highlight=False)
    out.print(f"size     {_size(doc['size_bytes'])}", highlight=False)
    out.print(f"schema   version {doc['schema_version']} (this toolctl: {doc['latest_schema_version']})",
              highlight=False)
    span = (f"{attempts['first_ts']} … {attempts['last_ts']} (UTC)" if attempts["count"]
            else "no tool calls")
    out.print(f"attempts {attempts['count']:,}: {span}", highlight=False)
    out.print(f"ledger   {doc['ledger_entries']:,} entries, {doc['prune_entries']} prune(s)", highlight=False)
    out.print(table("Rows", [("table", "left"), ("rows", "right")],
                    [(name, fmt_int(n)) for name, n in doc["tables"].items()]))


@app.command("migrate")
def migrate(ctx: typer.Context, fmt: FormatOpt = DocFormat.table) -> None:
    """Apply pending schema migrations (exit 0 when already current).

    Example: toolctl db migrate
    """
    info = ctx.obj.remote_server()
    if info is not None:  # serve migrated the store when it opened it for writing
        from toolctl import api

        with ctx.obj.open_read() as store:
            state = api.read(store, "db_info", api.NoArgs())
        doc = {"path": str(ctx.obj.db_path), "from_version": state["schema_version"],
               "to_version": state["schema_version"], "applied": []}
    else:
        from toolctl.store.upkeep import migrate_store

        doc = migrate_store(ctx.obj.db_path)
    if fmt is DocFormat.json:
        print_json(doc)
    elif doc["applied"]:
        stdout().print(f"migrated {doc['path']} from schema version {doc['from_version']} to "
                       f"{doc['to_version']}: applied {', '.join(doc['applied'])}", highlight=False)
    else:
        stdout().print(f"{doc['path']} is at schema version {doc['to_version']}: nothing to apply",
                       highlight=False)


@app.command("prune")
def prune(
    ctx: typer.Context,
    older_than: Annotated[str, typer.Option("--older-than", help="Age of the data to remove: 30d, 12h, 2w …")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would be removed; change nothing.")] = False,
    allow_unexported: Annotated[bool, typer.Option(
        "--allow-unexported", help="Also remove rows a lake of this store has not received yet.")] = False,
    fmt: FormatOpt = DocFormat.table,
) -> None:
    """Remove whole ingest batches whose data is all older than the cutoff; record a ledger entry.

    Batches with rows not yet exported to a lake this store writes (`toolctl lake export`)
    stop the prune unless --allow-unexported.

    `toolctl audit verify` keeps passing and reports the batches as pruned by that entry.
    Example: toolctl db prune --older-than 30d --dry-run
    """
    from toolctl import api
    from toolctl.store.upkeep import parse_age
    from toolctl.timeutil import before, utcnow

    age = parse_age(older_than)
    req = api.DbPrune(cutoff=before(utcnow(), age, option="--older-than", text=older_than),
                      older_than=older_than.strip(), allow_unexported=allow_unexported)
    if dry_run:
        with ctx.obj.open_read() as store:
            doc = api.read(store, "db_prune_plan", req)
    else:
        with ctx.obj.open_write_or_remote() as store:
            doc = api.write(store, "db_prune", req)
    if fmt is DocFormat.json:
        print_json(doc)
        return
    verb = "would remove" if dry_run else "removed"
    body = [(str(b["batch_id"]), fmt_int(b["events"]), fmt_int(b["spans"]), fmt_int(b["rejects"]),
             str(b["newest"]), str(b["recorded_by"])) for b in doc["batches"]]
    if body:
        stdout().print(table(None, [("batch", "right"), ("events", "right"), ("spans", "right"),
                                    ("rejects", "right"), ("newest (UTC)", "left"),
                                    ("ledger entry", "right")], body))
    entry = f"; ledger entry {doc['ledger_seq']}" if doc["ledger_seq"] else ""
    stdout().print(f"{verb} {len(doc['batches'])} batch(es) older than {doc['cutoff']}: "
                   f"{doc['events']:,} events, {doc['spans']:,} spans, {doc['rejects']:,} rejects{entry}",
                   highlight=False)
    if doc["kept"]:
        stdout().print(f"kept {len(doc['kept'])} batch(es) with data on both sides of the cutoff "
                       f"(batches are removed whole): {', '.join(str(k['batch_id']) for k in doc['kept'])}",
                       highlight=False)


@app.command("vacuum")
def vacuum(ctx: typer.Context, fmt: FormatOpt = DocFormat.table) -> None:
    """Checkpoint and rewrite the store compactly (reclaims pruned rows' space); report the size.

    Example: toolctl db vacuum
    """
    _refuse_while_served(ctx, "vacuum")
    from toolctl.store.upkeep import vacuum_store

    doc = vacuum_store(ctx.obj.db_path)
    if fmt is DocFormat.json:
        print_json(doc)
    else:
        stdout().print(f"{doc['path']}: {_size(doc['size_before'])} before, "
                       f"{_size(doc['size_after'])} after", highlight=False)


@app.command("backup")
def backup(
    ctx: typer.Context,
    file: Annotated[str, typer.Argument(metavar="FILE", help="Where to write the copy.")],
    force: Annotated[bool, typer.Option("--force", help="Overwrite FILE if it exists.")] = False,
    fmt: FormatOpt = DocFormat.table,
) -> None:
    """Write a consistent copy of the store to FILE, checked by comparing row counts.

    Example: toolctl db backup /backups/toolctl-2026-11-24.duckdb
    """
    from pathlib import Path

    from toolctl import api

    req = api.DbBackup(path=str(Path(file).expanduser().resolve()), force=force)
    with ctx.obj.open_write_or_remote() as store:
        doc = api.write(store, "db_backup", req)
    if fmt is DocFormat.json:
        print_json(doc)
    else:
        rows = sum(doc["tables"].values())
        stdout().print(f"backed up {doc['source']} to {doc['path']} ({_size(doc['size_bytes'])}, "
                       f"{len(doc['tables'])} tables, {rows:,} rows, counts checked)", highlight=False)
