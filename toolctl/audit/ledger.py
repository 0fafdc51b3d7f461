"""The append-only, hash-chained ledger: what was written, when, from where.

Every ingest batch (JSON lines or spans) gets an entry holding the batch id, its source,
the number of rows it stored and ``rows_digest``: sha256 over the ordered per-row sha256s
of the stored rows' canonical JSON, computed in DuckDB inside the batch's transaction
(``queries/row_hashes.sql``). A fully read source gets an ``ingest_source`` entry with its
content hash. Control-plane mutations (gate decisions, baseline saves, runbook runs,
prunes, configuration changes) are entries too: ``record_event(store, kind, payload)``.

Each entry's ``entry_hash`` is sha256 of its canonical JSON, which includes the previous
entry's hash: altering, inserting or deleting an entry breaks the chain after it. With
``TOOLCTL_LEDGER_KEY`` set, ``hmac`` = HMAC-SHA256(key, entry_hash), so someone holding
only the database file cannot rewrite the chain consistently.

``verify`` recomputes every batch digest from the stored rows and walks the chain.

Pruning: ``toolctl db prune`` removes whole batches and records a ``prune`` entry with
``record_pruned_batches(store, removed, payload)``. ``payload.pruned_batches`` maps each
removed batch id to the row count and digest the ledger held for it (and ``recorded_by``, the
seq of the entry that recorded them). Verify checks those against its own walk of the chain
(a prune entry cannot launder rows that were already altered), then expects no rows under
those batch ids and reports them as pruned by that entry. Rows deleted without such an
entry are still "rows deleted". ``record_prune(store, batch_ids, payload)`` (partial purge:
the re-digested remainder becomes the expected digest) is kept for library use.
"""

from __future__ import annotations

import hashlib
import hmac as hmac_mod
import json
import os
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Any, Iterable

from toolctl.audit import load_query
from toolctl.errors import ToolctlError

LEDGER_KEY_ENV = "TOOLCTL_LEDGER_KEY"
EXIT_TAMPERED = 5

#: Entry kinds toolctl writes itself; record_event accepts any snake_case kind.
BATCH_KINDS = ("ingest_batch", "span_batch", "adopt")

_ENTRY_FIELDS = ("seq", "kind", "created_at", "batch_id", "source", "source_sha256", "row_count",
                 "rows_digest", "payload", "prev_hash")


class LedgerTamperedError(ToolctlError):
    """``audit verify`` found stored rows or ledger entries that toolctl did not write."""

    exit_code = EXIT_TAMPERED
    code = "ledger_tampered"


# -- canonical forms -----------------------------------------------------------------------
def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(timezone.utc).replace(tzinfo=None)
        return value.isoformat(timespec="microseconds") + "Z"
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return str(value)


def canonical_json(value: Any) -> str:
    """Sorted keys, no whitespace, UTF-8 text: the form every hash is taken over."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=_json_default, allow_nan=False)


def _normalise_payload(payload: dict) -> dict:
    return json.loads(canonical_json(payload))


def _ts_text(value: datetime) -> str:
    return value.isoformat(timespec="microseconds")


def entry_hash(entry: dict) -> str:
    """sha256 of the entry's canonical JSON (the fields in ``_ENTRY_FIELDS``)."""
    doc = {k: entry.get(k) for k in _ENTRY_FIELDS}
    doc["created_at"] = _ts_text(entry["created_at"])
    return hashlib.sha256(canonical_json(doc).encode("utf-8")).hexdigest()


def ledger_key() -> bytes | None:
    key = os.environ.get(LEDGER_KEY_ENV)
    return key.encode("utf-8") if key else None


def sign(entry_hash_hex: str, key: bytes) -> str:
    return hmac_mod.new(key, entry_hash_hex.encode("ascii"), hashlib.sha256).hexdigest()


# -- writing -------------------------------------------------------------------------------
def _expression(name: str) -> str:
    """A query file holding one SQL expression, its comment lines dropped."""
    lines = load_query(name).splitlines()
    return "\n".join(line for line in lines if not line.lstrip().startswith("--")).strip()


def event_row_hash_sql() -> str:
    """The per-row hash expression of ``events`` (``queries/event_row_hash.sql``)."""
    return _expression("event_row_hash")


def span_row_json_sql() -> str:
    """The canonical JSON of one ``spans`` row (``queries/span_row_json.sql``); its sha256 is
    the row's hash."""
    return _expression("span_row_json")


#: row_hashes.sql's events branch over the stored rows (what `audit verify` recomputes).
EVENT_HASHES = "SELECT batch_id, 'e:' || event_id AS k, {hash} AS h\n    FROM events"
#: row_hashes.sql's spans branch over the stored rows.
SPAN_HASHES = "SELECT batch_id, 's:' || trace_id || ':' || span_id AS k, sha256({json}) AS h\n    FROM spans"


def row_hashes_sql(event_hashes: str | None = None, span_hashes: str | None = None) -> str:
    """The ``row_hashes`` WITH-prefix. ``event_hashes`` / ``span_hashes`` replace its events
    / spans branch (a constant SELECT yielding batch_id, k, h), for rows hashed before
    they were stored."""
    events = event_hashes or EVENT_HASHES.replace("{hash}", event_row_hash_sql())
    spans = span_hashes or SPAN_HASHES.replace("{json}", span_row_json_sql())
    return load_query("row_hashes").replace("{event_hashes}", events).replace("{span_hashes}", spans)


def batch_digest(store: Any, batch_id: int, event_hashes: str | None = None,
                 span_hashes: str | None = None) -> tuple[int, str]:
    """(row_count, rows_digest) of the rows stored under ``batch_id`` (events, rejects, spans).

    ``event_hashes`` / ``span_hashes``: where the batch's events (ingest's parse step) or
    spans (the collector's decoding threads) were hashed before the insert, a SELECT of
    those hashes (it may use ``$batch_id``) instead of hashing the stored rows again; the
    caller guarantees they are exactly the rows the batch stored.
    """
    count, digest = store.row(row_hashes_sql(event_hashes, span_hashes) + load_query("batch_digest"),
                              {"batch_id": batch_id})
    return int(count), digest


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def _append(store: Any, *, kind: str, payload: dict, batch_id: int | None = None,
            source: str | None = None, source_sha256: str | None = None,
            row_count: int | None = None, rows_digest: str | None = None) -> dict:
    last = store.row("SELECT entry_hash FROM ledger ORDER BY seq DESC LIMIT 1")
    if last is None and kind != "adopt" and not _ledger_started(store):
        # Only the store's very first entry adopts older rows: a ledger emptied behind
        # toolctl's back must not bless whatever the store holds now.
        store.execute("INSERT INTO audit_settings VALUES ('ledger_started', now()::VARCHAR)").fetchall()
        _adopt_existing(store, exclude=batch_id)
        last = store.row("SELECT entry_hash FROM ledger ORDER BY seq DESC LIMIT 1")
    entry = {
        "seq": int(store.scalar("SELECT nextval('ledger_seq')")),
        "kind": kind,
        "created_at": _now(),
        "batch_id": batch_id,
        "source": source,
        "source_sha256": source_sha256,
        "row_count": row_count,
        "rows_digest": rows_digest,
        "payload": _normalise_payload(payload),
        "prev_hash": last[0] if last else "",
    }
    entry["entry_hash"] = entry_hash(entry)
    key = ledger_key()
    entry["hmac"] = sign(entry["entry_hash"], key) if key else None
    store.execute(
        "INSERT INTO ledger (seq, kind, created_at, batch_id, source, source_sha256, row_count,"
        " rows_digest, payload, prev_hash, entry_hash, hmac)"
        " VALUES ($seq, $kind, $created_at, $batch_id, $source, $source_sha256, $row_count,"
        " $rows_digest, $payload, $prev_hash, $entry_hash, $hmac)",
        {**entry, "payload": canonical_json(entry["payload"])},
    ).fetchall()
    return entry


def _ledger_started(store: Any) -> bool:
    return store.scalar("SELECT count(*) FROM audit_settings WHERE key = 'ledger_started'") > 0


def _adopt_existing(store: Any, exclude: int | None) -> None:
    """First entry of a store that held rows before the ledger existed: digest them all."""
    rows = [r for r in store.fetch_dicts(row_hashes_sql() + load_query("all_batch_digests"))
            if r["batch_id"] != exclude]
    if not rows:
        return
    digests = {str(r["batch_id"]): {"row_count": int(r["row_count"]), "rows_digest": r["rows_digest"]}
               for r in rows}
    _append(store, kind="adopt", payload={"batch_digests": digests,
                                          "note": "rows stored before the ledger existed"})


def record_batch(store: Any, batch_id: int, *, kind: str, source: str, batch_kind: str = "ingest_batch",
                 extra: dict | None = None, event_hashes: str | None = None,
                 span_hashes: str | None = None) -> dict:
    """Ledger entry for one ingest batch; call inside the batch's transaction, after its inserts.

    ``event_hashes`` / ``span_hashes``: rows hashed before the insert (see ``batch_digest``).
    """
    count, digest = batch_digest(store, batch_id, event_hashes, span_hashes)
    payload = {"transport": kind, **(extra or {})}
    return _append(store, kind=batch_kind, payload=payload, batch_id=batch_id, source=source,
                   row_count=count, rows_digest=digest)


def record_source(store: Any, *, source: str, sha256: str, payload: dict) -> dict:
    """Ledger entry for a source read to the end (file or stdin) with its content hash."""
    return _append(store, kind="ingest_source", payload=payload, source=source, source_sha256=sha256)


def record_event(store: Any, kind: str, payload: dict) -> dict:
    """Append a control-plane entry (gate decision, baseline save, runbook run, config change).

    ``payload`` must be JSON-serialisable (datetimes become ISO-8601 UTC strings). Returns
    the entry as a dict (seq, kind, created_at, payload, prev_hash, entry_hash, hmac, ...).
    Runs in the caller's transaction if one is open.
    """
    return _append(store, kind=kind, payload=payload)


def control_rows(store: Any, *, evaluation_id: int | None = None, baseline: str | None = None) -> dict:
    """``{"row_count", "rows_digest"}`` of one gate evaluation's or one baseline's stored rows
    (``queries/control_rows_digest.sql``): what its ledger entry vouches for."""
    n, digest = store.row(load_query("control_rows_digest"),
                          {"evaluation_id": evaluation_id, "baseline": baseline})
    return {"row_count": int(n), "rows_digest": digest}


def record_prune(store: Any, batch_ids: Iterable[int], payload: dict) -> dict:
    """Record a retention purge: call after deleting rows, in the same transaction.

    The batches' digests are recomputed from what remains and stored in
    ``payload['batch_digests']``; verify expects those from this entry on.
    """
    digests = {}
    for bid in sorted(set(int(b) for b in batch_ids)):
        count, digest = batch_digest(store, bid)
        digests[str(bid)] = {"row_count": count, "rows_digest": digest}
    return _append(store, kind="prune", payload={**payload, "batch_digests": digests})


def ensure_started(store: Any) -> None:
    """Start the ledger if this store has none yet (adopting the rows it holds), so a caller
    can read the expected digests of every stored batch before it changes rows."""
    if store.row("SELECT seq FROM ledger LIMIT 1") is None and not _ledger_started(store):
        store.execute("INSERT INTO audit_settings VALUES ('ledger_started', now()::VARCHAR)").fetchall()
        _adopt_existing(store, exclude=None)


def expected_batches(store: Any) -> tuple[dict[int, tuple[int, str, int]], dict[int, int]]:
    """What the ledger says the store holds: ({batch_id: (row_count, rows_digest, seq)},
    {batch_id: seq of the prune entry that removed it}). Does not check the chain (verify does)."""
    expected: dict[int, tuple[int, str, int]] = {}
    pruned: dict[int, int] = {}
    for e in store.fetch_dicts("SELECT seq, kind, batch_id, row_count, rows_digest, payload"
                               " FROM ledger ORDER BY seq"):
        try:
            payload = json.loads(e["payload"])
        except (TypeError, ValueError):
            continue
        try:
            _apply_entry(e, payload, expected, pruned)
        except _MALFORMED as exc:
            raise LedgerTamperedError(
                f"ledger entry {e['seq']} is malformed ({_malformed(exc)}): it was altered outside toolctl",
                hint="run `toolctl audit verify` to see what changed") from None
    return expected, pruned


#: What folding an entry whose fields were edited into the wrong shape raises (a payload that
#: is a list, a NULL row_count, a digest map without counts): tampering, reported as such.
_MALFORMED = (TypeError, ValueError, KeyError, AttributeError)


def _malformed(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"


def _apply_entry(e: dict, payload: dict, expected: dict, pruned: dict) -> list[str]:
    """Fold one entry into the expected state; returns what is inconsistent about it.

    Raises one of ``_MALFORMED`` when the entry's fields do not have the shapes toolctl
    writes; nothing is folded then."""
    if not isinstance(payload, dict):
        raise TypeError(f"payload is a JSON {type(payload).__name__}, not an object")
    problems = []
    if e["kind"] in BATCH_KINDS and e["batch_id"] is not None:
        expected[int(e["batch_id"])] = (int(e["row_count"]), e["rows_digest"], e["seq"])
        pruned.pop(int(e["batch_id"]), None)
    for bid, d in (payload.get("batch_digests") or {}).items():
        expected[int(bid)] = (int(d["row_count"]), d["rows_digest"], e["seq"])
        pruned.pop(int(bid), None)
    if e["kind"] == "prune":
        for bid_text, d in (payload.get("pruned_batches") or {}).items():
            bid = int(bid_text)
            had = expected.get(bid)
            if had is None:
                problems.append(f"prune entry removes batch {bid}, which no earlier entry records")
            elif (int(d.get("row_count", -1)), d.get("rows_digest")) != (had[0], had[1]):
                problems.append(f"prune entry's digest of batch {bid} differs from what entry "
                                f"{had[2]} recorded")
            expected.pop(bid, None)
            pruned[bid] = e["seq"]
    return problems


def record_pruned_batches(store: Any, removed: dict[int, dict], payload: dict) -> dict:
    """Record a retention prune of whole batches: call after deleting their rows, in the same
    transaction. ``removed``: batch_id -> {row_count, rows_digest, recorded_by, ...} as the
    ledger had them; verify expects no rows under those ids from this entry on."""
    pruned = {str(bid): removed[bid] for bid in sorted(removed)}
    return _append(store, kind="prune", payload={**payload, "pruned_batches": pruned})


# -- reading -------------------------------------------------------------------------------
def list_entries(store: Any, *, kind: str | None = None, limit: int = 100) -> list[dict]:
    """Ledger entries, newest first."""
    rows = store.fetch_dicts(
        "SELECT seq, kind, created_at, batch_id, source, source_sha256, row_count, rows_digest,"
        " payload, prev_hash, entry_hash, hmac FROM ledger"
        " WHERE ($kind IS NULL OR kind = $kind) ORDER BY seq DESC LIMIT $limit",
        {"kind": kind, "limit": limit},
    )
    for r in rows:
        r["payload"] = json.loads(r["payload"]) if r["payload"] is not None else None
    return rows


@dataclass
class Problem:
    seq: int | None  # the ledger entry concerned (None: rows no entry accounts for)
    what: str

    def to_dict(self) -> dict:
        return {"seq": self.seq, "problem": self.what}


@dataclass
class VerifyReport:
    entries: int = 0
    signed: int = 0
    signatures_checked: bool = False
    batches: int = 0
    rows: int = 0
    problems: list[Problem] = field(default_factory=list)
    pruned: dict[int, int] = field(default_factory=dict)  # batch_id -> pruning entry's seq

    @property
    def intact(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict:
        return {"intact": self.intact, "entries": self.entries, "signed": self.signed,
                "signatures_checked": self.signatures_checked, "batches": self.batches,
                "rows": self.rows, "problems": [p.to_dict() for p in self.problems],
                "pruned_batches": [{"batch_id": b, "pruned_by": s} for b, s in self.pruned.items()]}


#: The store's tables and columns as the information schema lists them.
_STORE_COLUMNS = "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'main'"


def _columns_read(sql: str) -> list[str]:
    """The column names of the first ``struct_pack(...)`` in a hash expression."""
    inner = sql[sql.index("struct_pack(") + len("struct_pack("):]
    return [c.strip() for c in inner[:inner.index(")")].split(",")]


def _missing_schema(store: Any) -> list[str]:
    """The tables and columns verify reads that the store lacks (dropped outside toolctl)."""
    control = load_query("control_rows_digest").split("struct_pack(")[1:]
    wanted = {
        "ledger": list(_ENTRY_FIELDS) + ["entry_hash", "hmac"],
        "events": _columns_read(event_row_hash_sql()),
        "spans": _columns_read(span_row_json_sql()),
        "rejects": _columns_read(load_query("row_hashes")),
        **{t: _columns_read("struct_pack(" + c) for t, c in
           zip(("gate_evaluations", "gate_check_results", "baselines", "baseline_tools"), control)},
    }
    have: dict[str, set[str]] = {}
    for table, column in store.execute(_STORE_COLUMNS).fetchall():
        have.setdefault(table, set()).add(column)
    missing = []
    for table, columns in wanted.items():
        if table not in have:
            missing.append(f"table {table}")
        else:
            missing += [f"column {table}.{c}" for c in columns if c not in have[table]]
    return missing


def verify(store: Any) -> VerifyReport:
    """Walk the chain and recompute every batch digest from the stored rows.

    Returns a VerifyReport; ``problems`` is ordered by ledger entry, the first one being
    the first broken entry. Rows under a batch id no entry accounts for are reported last.
    Raises LedgerTamperedError when a table or column it reads was dropped.
    """
    missing = _missing_schema(store)
    if missing:
        raise LedgerTamperedError(
            f"the store's schema was changed outside toolctl: {', '.join(missing[:5])} "
            f"{'is' if len(missing) == 1 else 'are'} missing",
            hint="restore the store from a backup (`toolctl db backup` copies are checked)")
    report = VerifyReport()
    key = ledger_key()
    report.signatures_checked = key is not None
    entries = store.fetch_dicts(
        "SELECT seq, kind, created_at, batch_id, source, source_sha256, row_count, rows_digest,"
        " payload, prev_hash, entry_hash, hmac FROM ledger ORDER BY seq")
    report.entries = len(entries)
    expected: dict[int, tuple[int, str, int]] = {}  # batch_id -> (count, digest, seq)
    controls: dict[str, dict] = {"gate": {}, "baseline": {}}  # key -> (rows or None, seq)
    pruned: dict[int, int] = {}  # batch_id -> seq of the prune entry that removed it
    prev = ""
    seen_signed = False
    for e in entries:
        seq = e["seq"]
        try:
            e["payload"] = json.loads(e["payload"])
        except (TypeError, ValueError):
            report.problems.append(Problem(seq, "payload is not valid JSON: the entry was altered"))
            prev = e["entry_hash"]
            continue
        if e["prev_hash"] != prev:
            report.problems.append(Problem(
                seq, "prev_hash does not match the previous entry's hash: an entry before it "
                     "was deleted, inserted or altered"))
        recomputed = entry_hash(e)
        if recomputed != e["entry_hash"]:
            report.problems.append(Problem(
                seq, f"entry contents do not match its entry_hash: the entry was altered "
                     f"(stored {e['entry_hash'][:12]}…, recomputed {recomputed[:12]}…)"))
        if e["hmac"]:
            report.signed += 1
            seen_signed = True
            if key is not None and not hmac_mod.compare_digest(e["hmac"], sign(e["entry_hash"], key)):
                report.problems.append(Problem(seq, "HMAC does not match TOOLCTL_LEDGER_KEY: the entry "
                                                    "was re-hashed without the key (or the key differs)"))
        elif seen_signed and key is not None:
            report.problems.append(Problem(seq, "entry is unsigned although earlier entries are signed"))
        prev = e["entry_hash"]
        try:
            for what in _apply_entry(e, e["payload"], expected, pruned):
                report.problems.append(Problem(seq, what))
            _note_control_rows(e, controls)
        except _MALFORMED as exc:
            report.problems.append(Problem(seq, f"entry fields are malformed ({_malformed(exc)}): "
                                                f"the entry was altered"))

    if key is not None and entries and not seen_signed:
        # Someone holding only the file can rewrite the whole chain unsigned; with the key,
        # the newest entry (written by a toolctl that had it) must carry an HMAC.
        report.problems.append(Problem(entries[-1]["seq"], "no entry is signed although "
                                       "TOOLCTL_LEDGER_KEY is set: the chain was rewritten without "
                                       "the key (or written by a toolctl that did not have it)"))
    actual = {int(r["batch_id"]): (int(r["row_count"]), r["rows_digest"])
              for r in store.fetch_dicts(row_hashes_sql() + load_query("all_batch_digests"))}
    report.batches = len(actual)
    report.rows = sum(c for c, _ in actual.values())
    for bid, (count, digest, seq) in expected.items():
        got_count, got_digest = actual.get(bid, (0, hashlib.sha256(b"").hexdigest()))
        if got_count < count:
            report.problems.append(Problem(seq, f"batch {bid}: {count - got_count} stored row(s) "
                                                f"deleted (ledger {count}, found {got_count})"))
        elif got_count > count:
            report.problems.append(Problem(seq, f"batch {bid}: {got_count - count} row(s) inserted "
                                                f"outside toolctl (ledger {count}, found {got_count})"))
        elif got_digest != digest:
            report.problems.append(Problem(seq, f"batch {bid}: stored rows were edited "
                                                f"({count} rows, digest differs)"))
    report.pruned = {bid: pruned[bid] for bid in sorted(pruned)}
    for bid in sorted(set(actual) & set(pruned)):
        report.problems.append(Problem(pruned[bid], f"batch {bid}: {actual[bid][0]} row(s) under a "
                                                    f"batch pruned by entry {pruned[bid]} "
                                                    f"(inserted outside toolctl)"))
    for bid in sorted(set(actual) - set(expected) - set(pruned)):
        report.problems.append(Problem(None, f"batch {bid}: {actual[bid][0]} row(s) that no ledger "
                                             f"entry records (inserted outside toolctl)"))
    report.problems.extend(_check_control_rows(store, controls))
    report.problems.sort(key=lambda p: (p.seq is None, p.seq or 0))
    return report


#: Every gate evaluation stored: each must have a ledger entry.
_GATE_EVALUATIONS = "SELECT evaluation_id FROM gate_evaluations"


def _note_control_rows(e: dict, controls: dict) -> None:
    """Keep what a gate decision or baseline entry says its rows were (the latest entry of a
    baseline wins: saving one replaces it, deleting it leaves no rows)."""
    payload = e["payload"]
    if not isinstance(payload, dict):
        return
    if e["kind"] == "gate_decision" and payload.get("evaluation_id") is not None:
        controls["gate"][int(payload["evaluation_id"])] = (_rows_doc(payload.get("rows")), e["seq"])
    elif e["kind"] in ("baseline_save", "baseline_delete") and payload.get("name") is not None:
        rows = _rows_doc(payload.get("rows")) if e["kind"] == "baseline_save" else {"row_count": 0}
        controls["baseline"][payload["name"]] = (rows, e["seq"])


def _rows_doc(rows: Any) -> dict | None:
    """A control entry's ``rows`` ({row_count, rows_digest}, or absent); ValueError otherwise."""
    if rows is not None and not (isinstance(rows, dict) and type(rows.get("row_count")) is int):
        raise ValueError(f"rows is {canonical_json(rows)[:60]}, not {{row_count, rows_digest}}")
    return rows


def _check_control_rows(store: Any, controls: dict) -> list[Problem]:
    """Gate history and baselines against their entries.

    Entries written before they carried a digest (``rows`` absent) vouch only for their
    existence. A gate evaluation no entry records is reported when it is newer than the
    first evaluation whose entry carries a digest (older ones may predate the ledger); an
    unrecorded baseline is not (its created_at is the caller's clock, not the ledger's).
    """
    problems = []
    for kind, key_name in (("gate", "evaluation_id"), ("baseline", "baseline")):
        for key, (rows, seq) in controls[kind].items():
            if rows is None:
                continue
            got = control_rows(store, **{key_name: key})
            what = f"gate evaluation {key}" if kind == "gate" else f"baseline {key!r}"
            if got["row_count"] != rows["row_count"]:
                problems.append(Problem(seq, f"{what}: {rows['row_count']} row(s) recorded, "
                                             f"{got['row_count']} found (deleted or inserted outside toolctl)"))
            elif rows["row_count"] and got["rows_digest"] != rows.get("rows_digest"):
                problems.append(Problem(seq, f"{what}: stored rows were edited (digest differs)"))
    vouched = [eid for eid, (rows, _) in controls["gate"].items() if rows is not None]
    if vouched:
        for (eid,) in store.execute(_GATE_EVALUATIONS).fetchall():
            if int(eid) > min(vouched) and int(eid) not in controls["gate"]:
                problems.append(Problem(None, f"gate evaluation {eid}: no ledger entry records it "
                                              f"(inserted outside toolctl)"))
    return problems
