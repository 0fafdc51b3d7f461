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

from dataclasses import dataclass, field
from typing import Any, Callable, TypeVar

from toolctl.models import REJECT_RAW_CAP
from toolctl.store import Store, load_sql

T = TypeVar("T")

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


#: Takes `$n` values of batch_seq in one statement (one commit).
TAKE_BATCH_IDS = "SELECT nextval('batch_seq') AS id FROM range($n::BIGINT) ORDER BY id"


class BatchIds:
    """Batch ids for the batches of one source, taken from ``batch_seq`` a block at a time.

    The parse connection takes each batch's id before the writer stores it (``export_parsed``).
    Taking one per batch there is one commit per batch, and a commit waits for the writer's
    commit in progress: measured ~65 ms a batch, 2.3 s of a 1M-event ingest stalled on it.
    Blocks double from 1 up to ``MAX_BLOCK``, so a one-batch source takes exactly one id;
    ids taken but not used (at most the last block) leave a gap in the sequence, as a failed
    batch always could.
    """

    MAX_BLOCK = 16

    def __init__(self) -> None:
        self._free: list[int] = []
        self._block = 1

    def take(self, store: Store) -> int:
        if not self._free:
            rows = store.execute(TAKE_BATCH_IDS, {"n": self._block}).fetchall()
            self._free = [int(r[0]) for r in rows]
            self._block = min(self._block * 2, self.MAX_BLOCK)
        return self._free.pop(0)


@dataclass
class ParsedBatch:
    """One batch after ``parse_line_batch``: its accounting and, where it was parsed on
    another connection (``export_parsed``), its rows as Arrow."""

    lines: int
    valid: int
    rejected: int
    first_line: int | None
    last_line: int | None
    redacted: int = 0
    rows: Any = None  # None: the rows are the temp table `_parsed` of the writer's connection
    # Set by export_parsed(source=...): the batch id allocated while parsing, the source
    # the rows were hashed for, and `rows` carries `row_hash` (the ledger's per-row hash).
    batch_id: int | None = None
    source: str | None = None
    # Values redacted per line number (only lines that had some): ``redacted`` counts the
    # lines that are then stored, not those found stored already (a re-ingest).
    redacted_lines: dict[int, int] = field(default_factory=dict)


#: Line numbers of a batch's redacted lines that it stored (events or rejects); the
#: batch_id filter keeps both scans to the batch's own row groups (zone maps).
STORED_LINES = """SELECT line_no FROM events WHERE batch_id = $batch_id AND line_no IN (SELECT unnest($lines))
UNION ALL
SELECT line_no FROM rejects WHERE batch_id = $batch_id AND line_no IN (SELECT unnest($lines))"""


def write_line_batch(store: Store, raw: Any, *, source: str, kind: str) -> BatchResult:
    """Validate and store one batch (parse and store on the one connection of ``store``).

    ``raw`` is an Arrow table with columns line_no (int64), line (string), pre_reason
    (string, null unless Python already rejected the line) and raw_bytes (int64, null =
    the UTF-8 length of ``line``). Returns the batch's accounting: lines (non-blank),
    accepted (newly stored), duplicates (valid but already stored), rejected.
    """
    try:
        parsed = parse_line_batch(store, raw)
    except BaseException:
        store.conn.execute("DROP TABLE IF EXISTS _parsed")
        raise
    return store_line_batch(store, parsed, source=source, kind=kind)


def parse_line_batch(store: Store, raw: Any) -> ParsedBatch:
    """Parse, validate and redact ``raw`` into the temp table ``_parsed`` of ``store``'s connection.

    Touches only that temp table: outside any transaction of the store's data, so a retry
    of the insert does not parse again, and it can run on a second connection
    (``Store.companion``) while the writer stores the previous batch (``export_parsed``).
    """
    from toolctl.audit.redact import redact_parsed

    conn = store.conn
    # DuckDB parallelises an Arrow scan per record batch: one big batch runs on one core.
    # Splitting costs nothing (zero-copy slices) and halves parse time on 2 cores.
    raw = type(raw).from_batches(raw.to_batches(max_chunksize=PARSE_CHUNK_ROWS), schema=raw.schema)
    conn.register("_raw", raw)
    try:
        store.execute(load_sql("parse_batch"))
    finally:
        conn.unregister("_raw")
    lines, valid, rejected, first, last = store.row(
        "SELECT count(*), count(*) FILTER (WHERE reason IS NULL),"
        " count(*) FILTER (WHERE reason IS NOT NULL), min(line_no), max(line_no) FROM _parsed"
    )
    per_line = redact_parsed(store) if lines else {}
    return ParsedBatch(lines, valid, rejected, first, last, sum(per_line.values()), redacted_lines=per_line)


#: The rows of `_parsed` with the ledger's hash of each valid row as it will be stored
#: (ledger.event_row_hash_sql() fills {hash}; $batch_id, $source as the insert binds them).
HASHED_ROWS = """-- hashed_rows: the parsed rows and their ledger hashes (--profile's label)
SELECT * EXCLUDE (batch_id, source),
       CASE WHEN reason IS NULL THEN {hash} END AS row_hash
FROM (SELECT *, $batch_id::BIGINT AS batch_id, $source::VARCHAR AS source FROM _parsed)"""

#: row_hashes.sql's events branch for a batch hashed by HASHED_ROWS: exactly the rows
#: insert_events.sql stores when no event_id was stored before (first line per event_id).
PARSED_EVENT_HASHES = """SELECT $batch_id::BIGINT AS batch_id, 'e:' || event_id AS k, row_hash AS h
    FROM _parsed
    WHERE reason IS NULL
    QUALIFY row_number() OVER (PARTITION BY event_id ORDER BY line_no) = 1"""


def export_parsed(store: Store, parsed: ParsedBatch, *, source: str | None = None,
                  ids: BatchIds | None = None) -> ParsedBatch:
    """Move the rows of ``store``'s temp table ``_parsed`` into ``parsed.rows`` (Arrow).

    For a parse on a companion connection: the writer's connection cannot see that
    connection's temp tables. ``store`` must have ``arrow_lossless_conversion`` set
    (``Store.companion(lossless_arrow=True)``) so JSON columns travel as JSON and are not
    parsed again on insert.

    ``source``: also take the batch id now (from ``ids``) and hash each valid row as it will be stored
    (``row_hash``), so the writer's ledger digest does not read the stored rows back and
    hash them inside its transaction (~1/3 of the writer's time, measured in
    benchmarks/RESULTS.md); this connection does it while the writer stores the batch before.
    """
    sql, params = "SELECT * FROM _parsed", None
    if source is not None:
        from toolctl.audit.ledger import event_row_hash_sql

        parsed.batch_id = (ids or BatchIds()).take(store)
        parsed.source = source
        sql = HASHED_ROWS.replace("{hash}", event_row_hash_sql())
        params = {"batch_id": parsed.batch_id, "source": source}
    try:
        parsed.rows = store.fetch_arrow(sql, params)
    finally:
        store.conn.execute("DROP TABLE IF EXISTS _parsed")
    return parsed


def store_line_batch(store: Store, parsed: ParsedBatch, *, source: str, kind: str) -> BatchResult:
    """Store a parsed batch in one transaction (its rows, rejects, batch row, ledger entry)."""
    conn = store.conn
    if parsed.rows is not None:
        conn.register("_parsed", parsed.rows)
    try:
        return insert_then_skip_stored(
            store, lambda skip: _store_parsed(store, parsed, source=source, kind=kind, skip_stored=skip))
    finally:
        if parsed.rows is not None:
            conn.unregister("_parsed")
        else:
            conn.execute("DROP TABLE IF EXISTS _parsed")


def insert_then_skip_stored(store: Store, write: Callable[[bool], T], *, skip_first: bool = False) -> T:
    """Run ``write(skip_stored)``, one transaction: first plainly (``skip_first=False``), and
    again skipping stored keys only when the plain insert hit one (see SKIP_STORED).

    Inside the caller's transaction the error propagates instead: that transaction is lost,
    and its owner (the collector's writer, for a burst) replays each job on its own.
    """
    try:
        return write(skip_first)
    except _constraint_error():
        if skip_first or store.in_transaction:
            raise
        # Some rows are stored already (a re-run, a retried request): the insert that skips them.
        return write(True)


def _constraint_error() -> type[Exception]:
    """DuckDB's error for a violated key (imported lazily: duckdb is heavy)."""
    import duckdb

    return duckdb.ConstraintException


#: Appended to the inserts when some rows may be stored already. DuckDB turns an INSERT with
#: ON CONFLICT into a hash join against every stored key (a scan that grows with the table),
#: while a plain INSERT checks each new key in the primary key's ART index. So a batch is
#: first inserted plainly; only when that hits a stored key (a re-ingest, a retried request)
#: does the batch roll back and run again with this clause.
SKIP_STORED = "\nON CONFLICT DO NOTHING"


def _store_parsed(store: Store, parsed: ParsedBatch, *, source: str, kind: str,
                  skip_stored: bool) -> BatchResult:
    from toolctl.audit.ledger import record_batch

    lines, valid, rejected = parsed.lines, parsed.valid, parsed.rejected
    first, last, redacted = parsed.first_line, parsed.last_line, parsed.redacted
    tail = SKIP_STORED if skip_stored else ""

    def insert(name: str) -> str:
        return load_sql(name).rstrip().rstrip(";") + tail
    # Rows hashed while parsing (export_parsed) are the stored rows only when none was
    # stored before; otherwise (skip_stored) the digest hashes what the insert kept.
    hashed = parsed.batch_id is not None and parsed.source == source and not skip_stored
    with store.transaction():
        batch_id = parsed.batch_id if parsed.batch_id is not None else next_batch_id(store)
        accepted = 0
        if valid:
            accepted = store.scalar(insert("insert_events"), {"batch_id": batch_id, "source": source})
        if rejected:
            store.scalar(
                insert("insert_rejects"),
                {"batch_id": batch_id, "source": source, "raw_cap": REJECT_RAW_CAP},
            )
        if redacted and (skip_stored or accepted < valid):
            # Some lines were not stored (found stored already, or a repeated event_id):
            # count only the values redacted in lines this batch stored.
            found = store.execute(STORED_LINES, {"batch_id": batch_id,
                                                 "lines": list(parsed.redacted_lines)}).fetchall()
            redacted = sum(parsed.redacted_lines[line] for (line,) in found)
        result = BatchResult(batch_id, lines, accepted, valid - accepted, rejected, redacted)
        if lines:
            store.conn.execute(
                "INSERT INTO batches VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, now()::TIMESTAMP)",
                [batch_id, kind, source, first, last, lines, accepted, result.duplicates, rejected],
            )
            record_batch(store, batch_id, kind=kind, source=source,
                         extra={"lines": lines, "first_line": first, "last_line": last,
                                "accepted": accepted, "duplicates": result.duplicates,
                                "rejected": rejected, "redacted": redacted},
                         event_hashes=PARSED_EVENT_HASHES if hashed else None)
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
