"""`toolctl audit …`: forensic lookups, trace and call timelines, the tamper-evident ledger."""

from __future__ import annotations

import json
from datetime import datetime
from enum import Enum
from typing import Annotated, Optional

import typer

from toolctl.cli._engine import Engine, EngineOpt, LakeOpt, SparkMasterOpt, lake_source
from toolctl.cli._output import DocFormat, fmt_ms, label, print_json, print_jsonl, stdout, table

app = typer.Typer(help="Forensics: find events, follow a trace or call, verify the ledger.",
                  no_args_is_help=True)


class SearchFormat(str, Enum):
    table = "table"
    json = "json"
    jsonl = "jsonl"
    csv = "csv"


class ExportFormat(str, Enum):
    jsonl = "jsonl"
    csv = "csv"
    parquet = "parquet"


def _when(value: str | None, name: str) -> datetime | None:
    """A window bound as every command reads one (``toolctl.timeutil.parse_time``)."""
    from toolctl.timeutil import parse_time

    return parse_time(value, option=name)


EventId = Annotated[Optional[str], typer.Option("--event-id", help="Exact event id.")]
CallId = Annotated[Optional[str], typer.Option("--call-id", help="Exact call id.")]
TraceId = Annotated[Optional[str], typer.Option("--trace-id", help="Trace id (any case).")]
IdemKey = Annotated[Optional[str], typer.Option("--idempotency-key", help="Exact idempotency key.")]
User = Annotated[Optional[str], typer.Option("--user", help="Events of this user.")]
Tenant = Annotated[Optional[str], typer.Option("--tenant", help="Events of this tenant.")]
Tool = Annotated[Optional[str], typer.Option("--tool", help="Events of this tool.")]
Version = Annotated[Optional[str], typer.Option("--version", help="Events of this tool version.")]
Status = Annotated[Optional[str], typer.Option("--status", help="ok or error.")]
ErrorCode = Annotated[Optional[str], typer.Option("--error-code", help="Events with this error code.")]
HttpStatus = Annotated[Optional[int], typer.Option("--http-status", help="Events with this HTTP status.")]
Since = Annotated[Optional[str], typer.Option("--since", help="From this time (inclusive): RFC 3339 or an age like 15m, 2h, 7d.")]
Until = Annotated[Optional[str], typer.Option("--until", help="Up to this time (exclusive): RFC 3339 or an age.")]


def _filter(event_id, call_id, trace_id, idempotency_key, user, tenant, tool, version, status,
            error_code, http_status, since, until):
    from toolctl.audit.lookups import EventFilter

    return EventFilter(event_id=event_id, call_id=call_id, trace_id=trace_id,
                       idempotency_key=idempotency_key, user=user, tenant=tenant, tool=tool,
                       version=version, status=status, error_code=error_code,
                       http_status=http_status, since=_when(since, "--since"),
                       until=_when(until, "--until"))


def _read(ctx: typer.Context, operation: str, request, source=None):
    """Run an audit read here, or on `toolctl serve` when it holds the store (toolctl.api);
    on ``source`` (a lake, toolctl.engines) when given."""
    from toolctl import api

    with source or ctx.obj.open_read() as store:
        return api.read(store, operation, request)


@app.command("search")
def search(ctx: typer.Context, event_id: EventId = None, call_id: CallId = None,
           trace_id: TraceId = None, idempotency_key: IdemKey = None, user: User = None,
           tenant: Tenant = None, tool: Tool = None, version: Version = None,
           status: Status = None, error_code: ErrorCode = None, http_status: HttpStatus = None,
           since: Since = None, until: Until = None,
           limit: Annotated[int, typer.Option(help="At most this many events.", min=1)] = 100,
           fmt: Annotated[SearchFormat, typer.Option("--format", "-f", help="Output format.")] = SearchFormat.table,
           engine: EngineOpt = Engine.duckdb, lake: LakeOpt = None, spark_master: SparkMasterOpt = None) -> None:
    """Find stored tool calls (events and tool spans) by id or attributes, newest first.

    Example: toolctl audit search --call-id call-42 --format json
    """
    from toolctl.api import AuditSearch

    flt = _filter(event_id, call_id, trace_id, idempotency_key, user, tenant, tool, version,
                  status, error_code, http_status, since, until)
    rows = _read(ctx, "audit_search", AuditSearch(filter=flt, limit=limit),
                 lake_source(engine, lake, spark_master))
    if fmt is SearchFormat.json:
        print_json(rows)
    elif fmt is SearchFormat.jsonl:
        print_jsonl(rows)
    elif fmt is SearchFormat.csv:
        from toolctl.cli._output import print_csv

        cols = list(rows[0]) if rows else ["event_id"]
        print_csv([{k: json.dumps(v) if isinstance(v, (dict, list)) else v for k, v in r.items()}
                   for r in rows], cols)
    else:
        spans = sum(r["origin"] == "span" for r in rows)
        # The origin column only when a tool span is among the rows: an events-only answer
        # reads as it always has.
        body = [(r["ts"], r["event_id"], *((r["origin"],) if spans else ()), r["tool"], r["status"],
                 fmt_ms(r["latency_ms"]), r["call_id"] or "–", "–" if r["attempt"] is None else str(r["attempt"]),
                 r["stage"] or "–", r["error_code"] or "–")
                for r in rows]
        cols = [("ts", "left"), ("event_id", "left"), *([("origin", "left")] if spans else []),
                ("tool", "left"), ("status", "left"), ("latency_ms", "right"), ("call_id", "left"),
                ("attempt", "right"), ("stage", "left"), ("error_code", "left")]
        caption = (f"{len(rows) - spans} event(s), {spans} tool span(s), newest first" if spans
                   else f"{len(rows)} event(s), newest first")
        stdout().print(table("Events", cols, body, caption=caption))


@app.command("export")
def export(ctx: typer.Context,
           output: Annotated[str, typer.Option("--output", "-o", help="File to write.")],
           fmt: Annotated[ExportFormat, typer.Option("--format", "-f", help="File format.")] = ExportFormat.jsonl,
           event_id: EventId = None, call_id: CallId = None, trace_id: TraceId = None,
           idempotency_key: IdemKey = None, user: User = None, tenant: Tenant = None,
           tool: Tool = None, version: Version = None, status: Status = None,
           error_code: ErrorCode = None, http_status: HttpStatus = None, since: Since = None,
           until: Until = None) -> None:
    """Export what `audit search` matches to a file, streamed by DuckDB (jsonl, csv or parquet).

    Example: toolctl audit export --tenant acme --format parquet -o acme.parquet
    """
    import sys

    from pathlib import Path

    from toolctl.api import AuditExport

    flt = _filter(event_id, call_id, trace_id, idempotency_key, user, tenant, tool, version,
                  status, error_code, http_status, since, until)
    path = output if output == "-" else str(Path(output).resolve())  # "-" is refused, by name
    n = _read(ctx, "audit_export", AuditExport(filter=flt, fmt=fmt.value, path=path))
    sys.stderr.write(f"wrote {n:,} tool-call row(s) to {output}\n")


@app.command("duplicates")
def duplicates(ctx: typer.Context, tool: Tool = None, since: Since = None, until: Until = None,
               limit: Annotated[int, typer.Option(help="At most this many keys.", min=1)] = 100,
               fmt: Annotated[DocFormat, typer.Option("--format", "-f", help="Output format.")] = DocFormat.table) -> None:
    """Idempotency keys executed successfully more than once (duplicate side effects).

    Example: toolctl audit duplicates --tool payments.charge
    """
    from toolctl.api import AuditDuplicates

    rows = _read(ctx, "audit_duplicates", AuditDuplicates(
        tool=tool, since=_when(since, "--since"), until=_when(until, "--until"), limit=limit))
    if fmt is DocFormat.json:
        print_json(rows)
        return
    body = [(r["idempotency_key"], r["tool"], str(r["successes"]), str(r["calls"]),
             ", ".join(r["call_ids"] or [])) for r in rows]
    stdout().print(table("Duplicate executions", [("idempotency_key", "left"), ("tool", "left"),
                                                  ("successes", "right"), ("calls", "right"),
                                                  ("call_ids", "left")], body,
                         caption=f"{len(rows)} key(s) executed successfully more than once"))


def _call_lines(call: dict) -> list[str]:
    lines = []
    for a in call["attempts"]:
        stages = " → ".join(f"{s['stage'] or s['origin']} {s['status']} {fmt_ms(s['latency_ms'])} ms"
                            + (f" [{s['error_code']}]" if s["error_code"] else "") for s in a["stages"])
        lines.append(f"attempt {a['attempt']}: {stages}")
    final = call["final"] or {}
    budget = call["timeout_budget_ms"]
    used = f"{fmt_ms(call['latency_used_ms'])} ms" + (
        f" of {fmt_ms(budget)} ms budget ({call['budget_used_ratio'] * 100:.0f}%)" if budget else "")
    lines.append(f"final: {final.get('status')}" + (f" {final['error_code']}" if final.get("error_code") else "")
                 + f"; time used {used}")
    return lines


@app.command("call")
def call(ctx: typer.Context, call_id: Annotated[str, typer.Argument(help="The call id.")],
         fmt: Annotated[DocFormat, typer.Option("--format", "-f", help="Output format.")] = DocFormat.table) -> None:
    """All attempts of one tool call (validate → authorize → execute) and the timeout budget used.

    Example: toolctl audit call call-42
    """
    from toolctl.api import AuditId

    doc = _read(ctx, "audit_call", AuditId(id=call_id))
    if fmt is DocFormat.json:
        print_json(doc)
        return
    from rich.tree import Tree

    tree = Tree(label(f"call {call_id} ({doc['tool']}, {doc['attempt_count']} attempt(s))"))
    if doc["attempts"]:
        for line in _call_lines(doc):
            tree.add(label(line))
    for s in doc["spans"]:
        tree.add(label(f"span {s['name']} {s['span_id']} (trace {s['trace_id']}) "
                        f"{fmt_ms(s['duration_ms'])} ms {s['status'] or '–'}"))
    stdout().print(tree)


#: Levels `audit trace` indents; deeper spans are listed flat with their depth.
TREE_DEPTH = 16


@app.command("trace")
def trace(ctx: typer.Context, trace_id: Annotated[str, typer.Argument(help="The trace id (any case).")],
          fmt: Annotated[DocFormat, typer.Option("--format", "-f", help="Output format.")] = DocFormat.table) -> None:
    """The lifecycle of one trace: spans as a tree, tool calls with each attempt, events.

    Example: toolctl audit trace 4BF92F3577B34DA6A3CE929D0E0E4736 --format json
    """
    from toolctl.api import AuditId

    doc = _read(ctx, "audit_trace", AuditId(id=trace_id))
    if fmt is DocFormat.json:
        print_json(doc)
        return
    from rich.tree import Tree

    def add_calls(node, calls):
        for c in calls:
            sub = node.add(label(f"call {c['call_id'] or '(no call id)'} {c['tool']}"))
            for line in _call_lines(c):
                sub.add(label(line))

    c = doc["counts"]
    root = Tree(label(f"trace {doc['trace_id']}: {c['spans']} span(s), {c['calls']} call(s), "
                       f"{c['events']} event(s)"))
    # spans come flat in tree order with their depth; anchors[d] is where a span of depth d
    # goes. Past TREE_DEPTH the indentation stops growing (a chain can be thousands deep):
    # deeper spans are listed in order under the last indented one, each with its depth.
    anchors = [root]
    for s in doc["spans"]:
        depth = s["depth"]
        mark = (" [orphan: parent not received]" if s["orphan"] else
                " [cycle: its parent chain loops back to it]" if s["cycle"] else "")
        text = (f"[depth {depth}] " if depth >= TREE_DEPTH else "") + \
            f"{s['name']} {s['span_id']} {fmt_ms(s['duration_ms'])} ms {s['status_name']}{mark}"
        node = anchors[min(depth, TREE_DEPTH)].add(label(text))
        if depth < TREE_DEPTH:
            del anchors[depth + 1:]
            anchors.append(node)
        add_calls(node, s["calls"])
    add_calls(root, doc["calls"])
    stdout().print(root)


@app.command("log")
def log(ctx: typer.Context,
        kind: Annotated[Optional[str], typer.Option(help="Only entries of this kind.")] = None,
        limit: Annotated[int, typer.Option(help="At most this many entries.", min=1)] = 100,
        fmt: Annotated[DocFormat, typer.Option("--format", "-f", help="Output format.")] = DocFormat.table) -> None:
    """List the ledger, newest first: batches, sources, gate decisions, baseline saves…

    Example: toolctl audit log --kind gate_decision
    """
    from toolctl.api import AuditLog

    rows = _read(ctx, "audit_log", AuditLog(kind=kind, limit=limit))
    if fmt is DocFormat.json:
        print_json(rows)
        return
    body = [(str(r["seq"]), r["created_at"], r["kind"], "–" if r["batch_id"] is None else str(r["batch_id"]),
             r["source"] or "–", "–" if r["row_count"] is None else str(r["row_count"]),
             r["entry_hash"][:16], "yes" if r["hmac"] else "no") for r in rows]
    stdout().print(table("Ledger", [("seq", "right"), ("created_at", "left"), ("kind", "left"),
                                    ("batch", "right"), ("source", "left"), ("rows", "right"),
                                    ("entry_hash", "left"), ("signed", "left")], body))


@app.command("verify")
def verify(ctx: typer.Context,
           fmt: Annotated[DocFormat, typer.Option("--format", "-f", help="Output format.")] = DocFormat.table,
           lake: Annotated[Optional[str], typer.Option("--lake", metavar="DIR", help="Also check the lake's files against this store's ledger.")] = None) -> None:
    """Recompute every batch digest and walk the hash chain. Exit 0 intact, 5 tampered.

    Example: TOOLCTL_LEDGER_KEY=... toolctl audit verify --lake /data/lake
    """
    from toolctl.api import NoArgs
    from toolctl.audit.ledger import EXIT_TAMPERED

    doc = _read(ctx, "audit_verify", NoArgs())
    if lake is not None:
        _merge_lake(doc, _read_lake(ctx, lake))
    if fmt is DocFormat.json:
        print_json(doc)
    elif doc["intact"]:
        signed = (f"; {doc['signed']} signed entries checked" if doc["signatures_checked"]
                  else f"; {doc['signed']} signed entries (set TOOLCTL_LEDGER_KEY to check them)")
        stdout().print(f"ledger intact: {doc['entries']} entries, {doc['batches']} batches, "
                       f"{doc['rows']:,} rows{signed}", highlight=False)
        by_entry: dict[int, list[str]] = {}
        for p in doc.get("pruned_batches", []):
            by_entry.setdefault(p["pruned_by"], []).append(str(p["batch_id"]))
        for seq, batches in by_entry.items():
            stdout().print(f"batches {', '.join(batches)}: pruned by entry {seq}", highlight=False)
    if fmt is not DocFormat.json and doc.get("lake"):
        _print_lake(doc["lake"])
    if not doc["intact"]:
        import sys

        def where(p: dict) -> str:
            return f"entry {p['seq']}" if p["seq"] is not None else "rows outside the ledger"

        first = doc["problems"][0]
        sys.stderr.write(f"Error: ledger broken at {where(first)}: {first['problem']}\n")
        for p in doc["problems"][1:]:
            sys.stderr.write(f"  also: {where(p)}: {p['problem']}\n")
        if all(p["problem"].startswith("lake: ") for p in doc["problems"]):
            sys.stderr.write("Hint: lake files were changed or removed outside toolctl; restore them "
                             "from a copy (`toolctl audit log --kind lake_file` lists what was written)\n")
        else:
            sys.stderr.write("Hint: the store was changed outside toolctl; restore it from a backup "
                             "and compare with `toolctl audit log`\n")
        raise typer.Exit(EXIT_TAMPERED)


def _read_lake(ctx: typer.Context, lake: str) -> dict:
    from pathlib import Path

    from toolctl.api import LakeVerify

    return _read(ctx, "lake_verify", LakeVerify(lake=str(Path(lake).expanduser().resolve())))


def _merge_lake(doc: dict, lake_doc: dict) -> None:
    """The lake's problems join the ledger's (as entries' problems: exit 5 either way)."""
    doc["lake"] = lake_doc
    for p in lake_doc["problems"]:
        doc["problems"].append({"seq": p["seq"], "problem": f"lake: {p['problem']}"})
    doc["intact"] = doc["intact"] and lake_doc["intact"]


def _print_lake(lake: dict) -> None:
    state = "intact" if lake["intact"] else "BROKEN"
    stdout().print(f"lake {state}: {lake['files_present']} of {lake['files_recorded']} recorded file(s) present, "
                   f"{lake['compacted_away']} compacted away, {lake['rows']:,} rows exported by this store; "
                   f"{lake['unknown_files']} file(s) of other writers", highlight=False)
