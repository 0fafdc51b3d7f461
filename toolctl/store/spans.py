"""Span writes: one decoded batch of OpenTelemetry spans in, one transaction out.

The collector decodes a request or file into Arrow columns (``collector.otlp``); this
module inserts them with one statement per table, so no Python code runs per row here.
The batch, its refused spans and its bookkeeping row commit together: an interrupted
ingest leaves all of the batch or none of it, and re-sending it stores nothing twice
(``(trace_id, span_id)`` primary key, reject key).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from toolctl.models import REJECT_RAW_CAP
from toolctl.store import Store, load_sql
from toolctl.store.writer import next_batch_id


@dataclass
class SpanBatchResult:
    batch_id: int
    spans: int  # newly stored
    duplicates: int  # already stored (or repeated within the batch)
    tool_calls: int  # newly stored spans that count as tool calls
    rejected: int
    #: (trace_id, span_id) -> is_tool of every newly stored span (``return_keys=True``)
    new_keys: dict[tuple[str, str], bool] | None = None


def write_span_batch(store: Store, spans: Any, rejects: Any, *, source: str, kind: str,
                     return_keys: bool = False) -> SpanBatchResult:
    """Store one batch of spans and refused spans atomically.

    ``spans`` is an Arrow table with the columns of ``collector.otlp.COLUMNS`` (or None);
    ``rejects`` an Arrow table line_no, reason, raw, raw_bytes (or None). ``kind`` is
    where the batch came from ('file', 'stdin', 'http'); the ``batches`` row records it
    as ``otlp_<kind>`` with lines = spans seen (stored + duplicates + rejected).
    With ``return_keys`` the result names the newly stored spans (``new_keys``), so a
    caller that merged several requests into this batch can count each one exactly.
    """
    from toolctl.audit.ledger import record_batch  # lazy: audit sits above the store
    from toolctl.audit.redact import redact_span_tables

    spans, rejects, _redacted = redact_span_tables(store, spans, rejects)
    conn = store.conn
    n_in = spans.num_rows if spans is not None else 0
    n_rej = rejects.num_rows if rejects is not None else 0
    if spans is not None:
        conn.register("_spans_in", spans)
    if rejects is not None:
        conn.register("_span_rejects", rejects)
    try:
        with store.transaction():
            batch_id = next_batch_id(store)
            stored = tools = 0
            new_keys = {} if return_keys else None
            if n_in:
                flags = store.execute(load_sql("insert_spans"),
                                      {"batch_id": batch_id, "source": source}).fetchall()
                stored = len(flags)
                tools = sum(1 for (_t, _s, is_tool) in flags if is_tool)
                if return_keys:
                    new_keys = {(t, s): is_tool for t, s, is_tool in flags}
            if n_rej:
                store.execute(load_sql("insert_span_rejects"),
                              {"batch_id": batch_id, "source": source, "raw_cap": REJECT_RAW_CAP}).fetchall()
            result = SpanBatchResult(batch_id, stored, n_in - stored, tools, n_rej, new_keys)
            if n_in or n_rej:
                conn.execute(
                    "INSERT INTO batches VALUES (?, ?, ?, NULL, NULL, ?, ?, ?, ?, now()::TIMESTAMP)",
                    [batch_id, f"otlp_{kind}", source, n_in + n_rej, stored, result.duplicates, n_rej],
                )
                record_batch(store, batch_id, kind=kind, source=source, batch_kind="span_batch",
                             extra={"spans": n_in, "stored": stored, "rejected": n_rej,
                                    "redacted": _redacted})
    finally:
        if spans is not None:
            conn.unregister("_spans_in")
        if rejects is not None:
            conn.unregister("_span_rejects")
    return result
