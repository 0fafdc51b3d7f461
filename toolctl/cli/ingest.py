"""`toolctl ingest`, `toolctl rejects`, `toolctl schema`: getting data in, and what was refused."""

from __future__ import annotations

from typing import Annotated, List, Optional

import typer

from toolctl.cli._output import (ByteProgress, DocFormat, Format, fmt_int, print_csv, print_json,
                                 stdout, table, warn)
from toolctl.cli._sizes import size_option
from toolctl.errors import EXIT_PARTIAL

FormatOpt = Annotated[Format, typer.Option("--format", "-f", help="Output format.")]


def register(app: typer.Typer) -> None:
    app.command("ingest")(ingest)
    app.command("rejects")(rejects)
    app.command("schema")(schema)


def ingest(
    ctx: typer.Context,
    paths: Annotated[List[str], typer.Argument(help="Files, directories (recursive), .gz, or - for stdin.")],
    fmt: Annotated[DocFormat, typer.Option("--format", "-f", help="Output format.")] = DocFormat.table,
    max_line_bytes: Annotated[
        int, size_option(1, 1024 * 1024, "Longest accepted line; longer lines are rejected.")
    ] = 1024 * 1024,
    batch_bytes: Annotated[
        int, size_option(4096, 16 * 1024 * 1024, "Read per batch; each batch is one transaction; at most 1GiB.",
                         maximum=1024 ** 3)
    ] = 16 * 1024 * 1024,
    redaction_rules: Annotated[
        Optional[str], typer.Option(help="TOML file of extra redaction rules (default: $TOOLCTL_REDACTION_RULES).")
    ] = None,
) -> None:
    """Ingest tool-call logs (JSON lines) and OTLP trace files. Exit 0: all stored; 3: some rejected.

    Example: toolctl ingest sample_logs/
    """
    from collector.pipeline import ingest_paths

    from toolctl.audit.redact import load_rules, rules_path

    # --redaction-rules > $TOOLCTL_REDACTION_RULES > toolctl.toml; read before anything is
    # stored or sent: a bad rules file stores nothing.
    chosen = rules_path(ctx.obj.setting("redaction.rules"), redaction_rules)
    rules = load_rules(chosen) if chosen else None
    server = ctx.obj.server()
    if server is not None:  # `toolctl serve` holds the file: send the lines to it instead
        from collector.forward import forward_paths
        from toolctl.errors import UsageError
        from toolctl.remote import FORWARD_CHUNK_BYTES

        if rules is not None and rules.fingerprint != server.redaction:
            # The collector redacts with its own rules: these would be silently skipped.
            raise UsageError(f"redaction rules {chosen} cannot apply: the collector at {server.url} "
                             "redacts what it stores with other rules",
                             hint="start that `toolctl serve` with the same rules (TOOLCTL_REDACTION_RULES "
                                  "or toolctl.toml's redaction.rules), or stop it and ingest into the file")
        with ByteProgress(f"sending to {server.url}") as bar:
            # --batch-bytes bounds each request too (at most the usual 4 MiB), so files go to a
            # collector whose --max-body-bytes is smaller than that.
            summary = forward_paths(server, ctx.obj.db_path, paths, max_line_bytes=max_line_bytes,
                                    chunk_bytes=min(batch_bytes, FORWARD_CHUNK_BYTES), progress=bar.update)
    else:
        with ByteProgress("ingesting") as bar, ctx.obj.open_write() as store:
            if rules is not None:
                store.redaction_rules = rules
            summary = ingest_paths(store, paths, max_line_bytes=max_line_bytes,
                                   chunk_bytes=batch_bytes, progress=bar.update)
    doc = summary.model_dump()
    if fmt is DocFormat.json:
        print_json(doc)
    else:
        rows = [
            (s["source"], s.get("format", "jsonl"), fmt_int(s["lines"]), fmt_int(s["accepted"]),
             fmt_int(s["duplicates"]), fmt_int(s["rejected"]), fmt_int(s.get("spans", 0)),
             fmt_int(s.get("span_duplicates", 0)))
            for s in summary.sources
        ]
        cols = [("source", "left"), ("format", "left"), ("lines", "right"), ("accepted", "right"),
                ("duplicates", "right"), ("rejected", "right"), ("spans", "right"),
                ("span dups", "right")]
        caption = (f"{summary.files} file(s), {summary.lines:,} lines: {summary.accepted:,} accepted, "
                   f"{summary.duplicates:,} duplicates, {summary.rejected:,} rejected")
        if summary.spans or summary.span_duplicates:
            caption += f"; {summary.spans:,} spans stored, {summary.span_duplicates:,} already stored"
        if summary.redacted:
            caption += f"; {summary.redacted:,} values redacted"
        stdout().print(table("Ingest", cols, rows, caption=caption))
    if summary.rejected:
        warn(f"{summary.rejected:,} line(s) rejected and kept for inspection: run `toolctl rejects`")
        raise typer.Exit(EXIT_PARTIAL)


def rejects(
    ctx: typer.Context,
    source: Annotated[str, typer.Option(help="Only rejects whose source path contains this.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many rows.", min=1)] = 100,
    fmt: FormatOpt = Format.table,
) -> None:
    """List rejected lines: source, line number, reason and raw text.

    Example: toolctl rejects --source gateway-eu --format json
    """
    from toolctl import api

    with ctx.obj.open_read() as store:  # a RemoteStore while `toolctl serve` holds the file
        result = api.read(store, "rejects", api.RejectsQuery(source=source, limit=limit))
    rows = result["rows"]
    if result["total"] > len(rows):
        warn(f"showing {len(rows):,} of {result['total']:,} rejected lines: raise --limit to see more")
    columns = ["source", "line_no", "reason", "raw", "raw_bytes"]
    if fmt is Format.json:
        print_json([{k: r[k] for k in columns} for r in rows])
    elif fmt is Format.csv:
        print_csv(rows, columns)
    else:
        def short(text: str, n: int = 60) -> str:
            return text if len(text) <= n else text[: n - 1] + "…"

        # A span refused in an HTTP request or a whole-document file has no line number.
        body = [(short(r["source"], 40), "–" if r["line_no"] is None else str(r["line_no"]), r["reason"],
                 short(r["raw"])) for r in rows]
        shown = f"{len(rows):,} of {result['total']:,} rejected lines"
        stdout().print(table("Rejected lines", [("source", "left"), ("line", "right"),
                                                ("reason", "left"), ("raw", "left")], body,
                             caption=shown))


def schema() -> None:
    """Print the JSON Schema of the tool-call event (schema v1).

    Example: toolctl schema > tool-call-event.schema.json
    """
    from toolctl.models import event_json_schema

    print_json(event_json_schema())
