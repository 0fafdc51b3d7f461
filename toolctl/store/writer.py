"""Bulk writes: one batch of raw JSON lines in, one transaction out.

Python hands DuckDB an Arrow table of raw lines; validation, typing, dedupe and the
insert all run inside DuckDB (``sql/parse_batch.sql``), so no Python code touches a row
on the hot path. A batch commits atomically with its bookkeeping row: ``kill -9`` at any
point leaves either the whole batch or none of it, and re-running the ingest skips what
is stored (event_id primary key, reject key).

Two audit hooks run inside the batch's transaction: redaction of the parsed rows before
the insert (``toolctl.audit.redact.redact_parsed``: candidate rows found by one RE2 scan in
SQL, only those fixed in Python), and the batch's ledger entry after it
(``toolctl.audit.ledger.record_batch``: row digest computed in SQL over the stored rows).
They are imported lazily: the audit package sits above the store and imports from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from toolctl.models import REJECT_RAW_CAP
from toolctl.store import Store, load_sql


#: Rows per Arrow record batch handed to DuckDB (its unit of parallel work).
PARSE_CHUNK_ROWS = 4096


@dataclass
class BatchResult:
    batch_id: int
    lines: int
    accepted: int
    duplicates: int
    rejected: int
    redacted: int = 0  # secret values replaced before storing


def next_batch_id(store: Store) -> int:
    return store.scalar("SELECT nextval('batch_seq')")


def write_line_batch(store: Store, raw: Any, *, source: str, kind: str) -> BatchResult:
    """Validate and store one batch.

    ``raw`` is an Arrow table with columns line_no (int64), line (string), pre_reason
    (string, null unless Python already rejected the line) and raw_bytes (int64, null =
    the UTF-8 length of ``line``). Returns the batch's accounting: lines (non-blank),
    accepted (newly stored), duplicates (valid but already stored), rejected.
    """
    from toolctl.audit.ledger import record_batch
    from toolctl.audit.redact import redact_parsed

    conn = store.conn
    # DuckDB parallelises an Arrow scan per record batch: one big batch runs on one core.
    # Splitting costs nothing (zero-copy slices) and halves parse time on 2 cores.
    raw = type(raw).from_batches(raw.to_batches(max_chunksize=PARSE_CHUNK_ROWS), schema=raw.schema)
    conn.register("_raw", raw)
    try:
        with store.transaction():
            batch_id = next_batch_id(store)
            conn.execute(load_sql("parse_batch"))
            lines, valid, rejected, first, last = store.row(
                "SELECT count(*), count(*) FILTER (WHERE reason IS NULL),"
                " count(*) FILTER (WHERE reason IS NOT NULL), min(line_no), max(line_no) FROM _parsed"
            )
            redacted = redact_parsed(store) if lines else 0
            accepted = 0
            if valid:
                accepted = store.scalar(load_sql("insert_events"), {"batch_id": batch_id, "source": source})
            if rejected:
                store.scalar(
                    load_sql("insert_rejects"),
                    {"batch_id": batch_id, "source": source, "raw_cap": REJECT_RAW_CAP},
                )
            result = BatchResult(batch_id, lines, accepted, valid - accepted, rejected, redacted)
            if lines:
                conn.execute(
                    "INSERT INTO batches VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, now()::TIMESTAMP)",
                    [batch_id, kind, source, first, last, lines, accepted, result.duplicates, rejected],
                )
                record_batch(store, batch_id, kind=kind, source=source,
                             extra={"lines": lines, "first_line": first, "last_line": last,
                                    "accepted": accepted, "duplicates": result.duplicates,
                                    "rejected": rejected, "redacted": redacted})
            conn.execute("DROP TABLE _parsed")
    finally:
        conn.unregister("_raw")
    return result


def record_source(store: Store, *, source: str, sha256: str, nbytes: int, lines: int,
                  accepted: int, duplicates: int, rejected: int, redacted: int = 0) -> None:
    """Note that a whole source was read, with a ledger entry carrying its content hash."""
    from toolctl.audit import ledger

    conn = store.conn
    with store.transaction():
        conn.execute(
            "INSERT INTO ingest_sources VALUES (?, ?, ?, ?, ?, ?, ?, now()::TIMESTAMP)",
            [source, sha256, nbytes, lines, accepted, duplicates, rejected],
        )
        ledger.record_source(store, source=source, sha256=sha256,
                             payload={"bytes": nbytes, "lines": lines, "accepted": accepted,
                                      "duplicates": duplicates, "rejected": rejected,
                                      "redacted": redacted})
