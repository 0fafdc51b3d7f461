"""Forensic lookups over stored tool calls: search, export, duplicate side effects.

A tool call is what ``toolctl stats`` counts (the ``tool_calls`` view): a JSON-line event or
a tool span (an OTLP span a rule recognised, docs/spans.md); rows say which in ``origin``.
Id lookups (event, call, trace, idempotency key) go through an ART index (event_id's
primary key, the 0004 indexes on events, the 0006 ones on spans): ``search_events.sql``
isolates each id equality in a MATERIALIZED CTE, the only shape DuckDB answers with an
index scan.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from datetime import datetime
from pathlib import Path
from typing import Any

from toolctl.audit import load_query
from toolctl.jsonio import loads_stored
from toolctl.errors import ToolctlError, UsageError

#: Id filters with an ART index, in the order the lookup prefers them.
ID_COLUMNS = ("event_id", "call_id", "trace_id", "idempotency_key")
#: The indexed spans column each id filter is looked up by: a span-derived call's event id
#: is ``trace_id:span_id``, found through trace_id (the other filters then match it exactly).
SPAN_ID_COLUMNS = {"event_id": "trace_id", "call_id": "call_id", "trace_id": "trace_id",
                   "idempotency_key": "idempotency_key"}
EXPORT_FORMATS = {"jsonl": "(FORMAT json)", "csv": "(FORMAT csv, HEADER true)",
                  "parquet": "(FORMAT parquet)"}
JSON_COLUMNS = ("args", "data", "extra")
#: How an export writes ``ts`` (stored as naive UTC): text formats as ``--format json``
#: renders a time (Python's isoformat + ``Z``: no fraction on a whole second, else six
#: digits), Parquet as a UTC-adjusted timestamp. A bare ``2026-11-24 06:00:00`` says
#: nothing about its zone to whoever reads the file later.
EXPORT_TS = {
    "jsonl": "CASE WHEN epoch_us(ts) % 1000000 = 0 THEN strftime(ts, '%Y-%m-%dT%H:%M:%SZ') "
             "ELSE strftime(ts, '%Y-%m-%dT%H:%M:%S.%fZ') END",
    "parquet": "ts::TIMESTAMPTZ",
}
EXPORT_TS["csv"] = EXPORT_TS["jsonl"]


@dataclass
class EventFilter:
    """Filters of ``audit search`` / ``audit export``; None means "any"."""

    event_id: str | None = None
    call_id: str | None = None
    trace_id: str | None = None
    idempotency_key: str | None = None
    user: str | None = None
    tenant: str | None = None
    tool: str | None = None
    version: str | None = None
    status: str | None = None
    error_code: str | None = None
    http_status: int | None = None
    since: datetime | None = None
    until: datetime | None = None

    def params(self) -> dict[str, Any]:
        p = {f.name: getattr(self, f.name) for f in fields(self)}
        if p["trace_id"]:
            p["trace_id"] = p["trace_id"].lower()  # stored lower-case; accepted in any case
        if p["status"] is not None and p["status"] not in ("ok", "error"):
            raise UsageError(f"--status must be ok or error, got {p['status']!r}",
                             hint="use --status ok or --status error")
        return p


def _search_sql(flt: EventFilter, store: Any = None) -> tuple[str, dict[str, Any]]:
    params = flt.params()
    column = next((c for c in ID_COLUMNS if params[c] is not None), None)
    if column is None:
        id_filter, params["id"] = "$id IS NULL", None  # binds $id; always true
        span_filter, params["span_key"] = "$span_key IS NULL", None
    else:
        # The identifiers come from ID_COLUMNS / SPAN_ID_COLUMNS (fixed allowlists), never from input.
        id_filter, params["id"] = f'"{column}" = $id', params[column]
        span_filter = f'"{SPAN_ID_COLUMNS[column]}" = $span_key'
        params["span_key"] = params[column].split(":", 1)[0] if column == "event_id" else params[column]
    # The events that may name a span of the lookup: the store's `events`, or a lake source's
    # view of the window's event files widened by engines.NAMING_MARGIN (the window's own
    # `events` may miss such a line); an identifier from the source, no input.
    all_events = getattr(store, "all_events", "events")
    sql = load_query("search_events").replace("{id_filter}", id_filter).replace("{all_events}", all_events)
    return sql.replace("{span_id_filter}", span_filter), params


def search_events(store: Any, flt: EventFilter, *, limit: int = 100) -> list[dict]:
    """Stored tool calls (events and tool spans) matching every filter, newest first, with
    args/data/extra decoded; ``origin`` is ``event`` or ``span``."""
    sql, params = _search_sql(flt, store)
    rows = store.fetch_dicts(sql, {**params, "limit": limit})
    for r in rows:
        for c in JSON_COLUMNS:
            if r[c] is not None:
                r[c] = loads_stored(r[c])
    return rows


def export_events(store: Any, flt: EventFilter, *, fmt: str, path: str | Path,
                  limit: int | None = None) -> int:
    """Write the rows ``search_events`` matches to ``path`` with DuckDB's COPY (streamed, no
    Python per row).

    ``fmt`` is jsonl, csv or parquet. Returns the number of rows written.
    """
    if fmt not in EXPORT_FORMATS:
        raise UsageError(f"unknown export format {fmt!r}", hint="use jsonl, csv or parquet")
    sql, params = _search_sql(flt, store)
    params["limit"] = limit  # LIMIT NULL = no limit
    if str(path) == "-":
        raise UsageError("audit export writes a file, not standard output",
                         hint="to stream events to stdout use `toolctl audit search … --format jsonl --limit N`")
    out = Path(path)
    if not out.parent.exists():
        raise UsageError(f"cannot write {out}: directory {out.parent} does not exist",
                         hint="create the directory or choose another -o path")
    # The ts expression and the options come from fixed tables, never from input.
    copy = f"COPY (SELECT * REPLACE ({EXPORT_TS[fmt]} AS ts) FROM ({sql})) TO $out_path {EXPORT_FORMATS[fmt]}"
    try:
        rows = store.execute(copy, {**params, "out_path": str(out)}).fetchall()
    except Exception as exc:  # duckdb.IOException: permission denied, disk full
        # The class lives in `_duckdb` (duckdb's C module), so not `startswith("duckdb")`.
        if type(exc).__module__.lstrip("_").startswith("duckdb") and "IO" in type(exc).__name__:
            raise ToolctlError(f"cannot write {out}: {str(exc).splitlines()[0]}",
                               hint="check the path and free space") from exc
        raise
    return int(rows[0][0]) if rows else 0


def duplicate_executions(store: Any, *, tool: str | None = None, since: datetime | None = None,
                         until: datetime | None = None, limit: int = 100) -> list[dict]:
    """Idempotency keys whose execution succeeded more than once, most repeated first."""
    return store.fetch_dicts(load_query("duplicates"),
                             {"tool": tool, "since": since, "until": until, "limit": limit})
