"""Span writes: one decoded batch of OpenTelemetry spans in, one transaction out.

The collector decodes a request or file into Arrow columns (``collector.otlp``); this
module inserts them with one statement per table, so no Python code runs per row here.
The batch, its refused spans and its bookkeeping row commit together: an interrupted
ingest leaves all of the batch or none of it, and re-sending it stores nothing twice
(``(trace_id, span_id)`` primary key, reject key).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from toolctl.models import REJECT_RAW_CAP
from toolctl.store import Store, load_sql
from toolctl.store.writer import SKIP_STORED, insert_then_skip_stored, next_batch_id


@dataclass
class SpanBatchResult:
    batch_id: int
    spans: int  # newly stored
    duplicates: int  # already stored (or repeated within the batch)
    tool_calls: int  # newly stored spans that count as tool calls
    rejected: int
    #: (trace_id, span_id) -> is_tool of every newly stored span (``return_keys=True``)
    new_keys: dict[tuple[str, str], bool] | None = None


#: The tail of a span row's canonical JSON: batch_id and source, the last two fields.
SPAN_ROW_TAIL = "SELECT to_json(struct_pack(batch_id := $batch_id::BIGINT, source := $source::VARCHAR))"
#: row_hashes.sql's spans branch for a batch whose rows were hashed by prepare_spans
#: (``_span_hashes``: the newly stored rows' keys and finished hashes).
PREPARED_SPAN_HASHES = "SELECT $batch_id::BIGINT AS batch_id, k, h FROM _span_hashes"


@dataclass
class PreparedSpans:
    """One request's spans made ready to store: redacted, each row's ledger hash begun.

    ``hashes`` maps each row's ledger key to a sha256 over its canonical JSON up to (not
    including) batch_id and source, which only the writer knows; None when the rows must
    be hashed as stored instead (a key repeated within the request, or not hashed here).
    """

    spans: Any  # Arrow table (collector.otlp.COLUMNS) or None
    rejects: Any  # Arrow table line_no, reason, raw, raw_bytes or None
    redacted: int = 0
    hashes: dict[str, Any] | None = None


def prepare_spans(store: Store, spans: Any, rejects: Any) -> PreparedSpans:
    """Redact one request's decoded spans and begin each row's ledger hash.

    Runs in the collector's decoding threads on a companion connection (``store`` may be
    any connection to the database: it only reads the redaction salt), so the writer's
    thread, the collector's serial stage, neither redacts nor serialises rows: it only
    finishes each stored row's hash with the batch id (``write_span_batch``). The row JSON
    is DuckDB's own (span_row_json.sql, as ``audit verify`` computes it); only the sha256
    runs here, in OpenSSL, which is also ~3× faster than DuckDB's on this kind of machine.
    """
    return begin_hashes(*prepare_span_rows(store, spans, rejects))


def prepare_span_rows(store: Store, spans: Any, rejects: Any) -> tuple[Any, Any, int, Any, bytes]:
    """``prepare_spans`` up to the hashing: (spans redacted, rejects redacted, values
    redacted, Arrow k / row_json of each span or None, the open tail ``row_json`` ends in).

    Reads no table of the store: ``store`` can be an in-memory database whose
    ``redaction_rules`` and ``redaction_salt`` are the store's (a decoding worker process
    of the collector, which must not open the store file)."""
    from toolctl.audit.ledger import span_row_json_sql
    from toolctl.audit.redact import redact_span_tables

    spans, rejects, redacted = redact_span_tables(store, spans, rejects)
    open_tail = _open_tail(store)
    if spans is None or not spans.num_rows:
        return spans, rejects, redacted, None, open_tail
    store.conn.register("_spans_prep", spans)
    try:
        table = store.fetch_arrow(load_sql("prepare_spans").replace("{row_json}", span_row_json_sql()))
    finally:
        store.conn.unregister("_spans_prep")
    return spans, rejects, redacted, table, open_tail


def begin_hashes(spans: Any, rejects: Any, redacted: int, rows: Any, open_tail: bytes) -> PreparedSpans:
    """The ``PreparedSpans`` of ``prepare_span_rows``' result: each row's sha256 begun over its
    JSON up to the open tail (no statement: runs in whichever process holds the store)."""
    if rows is None:
        return PreparedSpans(spans, rejects, redacted, {})
    cut = len(open_tail)
    hashes: dict[str, Any] | None = {}
    for k, row_json in zip(rows.column("k").to_pylist(), rows.column("row_json").to_pylist()):
        if not row_json.endswith(open_tail):  # span_row_json.sql no longer ends in batch_id, source
            hashes = None
            break
        hashes[k] = hashlib.sha256(memoryview(row_json)[:-cut])
    if hashes is not None and len(hashes) != spans.num_rows:
        hashes = None  # a span twice in the request: which copy is stored is the insert's call
    return PreparedSpans(spans, rejects, redacted, hashes)


def merge_prepared(parts: list[PreparedSpans]) -> PreparedSpans:
    """Several requests' prepared spans as one batch (a group commit of the collector)."""
    import pyarrow as pa

    if len(parts) == 1:
        return parts[0]
    spans = [p.spans for p in parts if p.spans is not None]
    rejects = [p.rejects for p in parts if p.rejects is not None]
    hashes: dict[str, Any] | None = {}
    for p in parts:
        if p.hashes is None:
            hashes = None
            break
        before = len(hashes)
        hashes.update(p.hashes)
        if len(hashes) != before + len(p.hashes):  # a span in two requests of the burst
            hashes = None
            break
    return PreparedSpans(
        (pa.concat_tables(spans) if len(spans) > 1 else spans[0]) if spans else None,
        (pa.concat_tables(rejects) if len(rejects) > 1 else rejects[0]) if rejects else None,
        sum(p.redacted for p in parts), hashes)


def _row_tail(store: Store, batch_id: int | None, source: str | None) -> bytes:
    """``,"batch_id":…,"source":…}``: how a span row's canonical JSON ends, as DuckDB writes it."""
    doc = store.scalar(SPAN_ROW_TAIL, {"batch_id": batch_id, "source": source})
    return ("," + doc[1:]).encode("utf-8")


#: DuckDB's JSON for the sources seen lately (see _tail); sources come from request headers,
#: so the cache is bounded.
_SOURCE_JSON: dict[str, bytes] = {}
_SOURCE_JSON_MAX = 256
#: The tail with batch_id and source NULL, as prepare_spans cuts it off (taken once).
_OPEN_TAIL: list[bytes] = []


def _open_tail(store: Store) -> bytes:
    if not _OPEN_TAIL:
        _OPEN_TAIL.append(_row_tail(store, None, None))
    return _OPEN_TAIL[0]


def _tail(store: Store, batch_id: int, source: str) -> bytes:
    """``_row_tail`` without a statement per batch (each one is a GIL round trip for the
    collector's writer thread): the batch id is an integer, and the source's JSON string
    is cut out of the first tail DuckDB writes for that source."""
    head = b',"batch_id":%d,"source":' % batch_id
    encoded = _SOURCE_JSON.get(source)
    if encoded is not None:
        return head + encoded + b"}"
    exact = _row_tail(store, batch_id, source)
    if exact.startswith(head) and exact.endswith(b"}"):
        if len(_SOURCE_JSON) >= _SOURCE_JSON_MAX:
            _SOURCE_JSON.clear()
        _SOURCE_JSON[source] = exact[len(head):-1]
    return exact


def _finish_hashes(store: Store, hashes: dict[str, Any], flags: list, batch_id: int, source: str) -> Any:
    """The newly stored rows' keys and hashes (Arrow k, h), or None if one was not begun."""
    import pyarrow as pa

    tail = _tail(store, batch_id, source)
    keys, digests = [], []
    for trace_id, span_id, _is_tool in flags:
        k = f"s:{trace_id}:{span_id}"
        begun = hashes.get(k)
        if begun is None:
            return None
        h = begun.copy()
        h.update(tail)
        keys.append(k)
        digests.append(h.hexdigest())
    return pa.table({"k": pa.array(keys, pa.string()), "h": pa.array(digests, pa.string())})


def write_span_batch(store: Store, prepared: PreparedSpans, *, source: str, kind: str,
                     return_keys: bool = False) -> SpanBatchResult:
    """Store one batch of spans and refused spans atomically.

    ``prepared`` (``prepare_spans``) holds the redacted spans, an Arrow table with the
    columns of ``collector.otlp.COLUMNS`` (or None), and the refused spans, an Arrow table
    line_no, reason, raw, raw_bytes (or None). ``kind`` is where the batch came from
    ('file', 'stdin', 'http'); the ``batches`` row records it as ``otlp_<kind>`` with
    lines = spans seen (stored + duplicates + rejected). With ``return_keys`` the result
    names the newly stored spans (``new_keys``), so a caller that merged several requests
    into this batch can count each one exactly.

    A span already stored (a retried request) fails the plain insert: alone, the batch is
    redone with the insert that skips stored spans; inside the caller's transaction (a burst
    of the collector's writer) the error propagates, the burst rolls back and the writer
    replays each request alone.
    """
    spans, rejects = prepared.spans, prepared.rejects
    conn = store.conn
    registered = []
    for name, table in (("_spans_in", spans), ("_span_rejects", rejects)):
        if table is not None:
            conn.register(name, table)
            registered.append(name)
    try:
        # A span twice in the batch (within a request, or in two requests of a burst) would
        # fail the plain insert and, inside a burst, every request of it: skip from the start.
        repeated = spans is not None and not _keys_unique(spans)
        return insert_then_skip_stored(
            store, lambda skip: _write_span_batch(store, prepared, source=source, kind=kind,
                                                  return_keys=return_keys, skip_stored=skip),
            skip_first=repeated)
    finally:
        for name in registered:
            conn.unregister(name)


def _keys_unique(spans: Any) -> bool:
    import pyarrow.compute as pc

    keys = pc.binary_join_element_wise(spans.column("trace_id"), spans.column("span_id"), ":")
    return pc.count_distinct(keys).as_py() == spans.num_rows


def _write_span_batch(store: Store, prepared: PreparedSpans, *, source: str, kind: str,
                      return_keys: bool, skip_stored: bool) -> SpanBatchResult:
    """One transaction of ``write_span_batch``. ``skip_stored=False`` inserts plainly (the
    primary key's ART index checks each new key) and fails on a stored or repeated key;
    ``True`` adds ON CONFLICT DO NOTHING, which DuckDB plans as a hash join against every
    stored key: a cost that grows with the table (benchmarks/span_inserts.py: a 512-span
    request 70 ms against 35 ms at 3M stored spans, 192 against 54 ms at 10M), so it runs
    only for a batch that repeats a key, or after a plain insert failed."""
    from toolctl.audit.ledger import record_batch  # lazy: audit sits above the store

    conn = store.conn
    n_in = prepared.spans.num_rows if prepared.spans is not None else 0
    n_rej = prepared.rejects.num_rows if prepared.rejects is not None else 0
    on_conflict = SKIP_STORED if skip_stored else ""
    hashes_registered = False
    try:
        with store.transaction():
            batch_id = next_batch_id(store)
            stored = tools = 0
            new_keys = {} if return_keys else None
            flags: list = []
            if n_in:
                flags = store.execute(load_sql("insert_spans").replace("{skip_stored}", on_conflict),
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
                finished = (_finish_hashes(store, prepared.hashes, flags, batch_id, source)
                            if prepared.hashes is not None else None)
                if finished is not None:
                    conn.register("_span_hashes", finished)
                    hashes_registered = True
                record_batch(store, batch_id, kind=kind, source=source, batch_kind="span_batch",
                             extra={"spans": n_in, "stored": stored, "rejected": n_rej,
                                    "redacted": prepared.redacted},
                             span_hashes=PREPARED_SPAN_HASHES if finished is not None else None)
    finally:
        if hashes_registered:
            conn.unregister("_span_hashes")
    return result
