"""Store upkeep: what is in the store, migrations, retention, compaction, backups.

One function per ``toolctl db`` command; each takes an open Store (or a path, for the
operations that must own the file) and returns a JSON-ready dict.

Retention is provable, not tampering: ``prune_store`` removes whole ingest batches (the
unit the ledger digests), only batches whose every row is older than the cutoff, and only
after checking each batch's stored rows still match the digest the ledger holds for it. The
``prune`` ledger entry names the cutoff, the batches, their row counts and those digests
(``toolctl.audit.ledger.record_pruned_batches``), so ``toolctl audit verify`` passes
afterwards and reports the batches as pruned by that entry, while rows deleted without
such an entry are still reported as deleted.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from toolctl.errors import StoreError, ToolctlError, UsageError
from toolctl.store import Store, latest_schema_version, load_sql, quote_ident

#: Row counts `db info` reports, in this order (tables a newer migration adds are appended).
INFO_TABLES = ("events", "spans", "rejects", "batches", "ingest_sources", "ledger",
               "gate_runs", "gate_evaluations", "gate_check_results", "baselines",
               "baseline_tools")

# Rows of the tool_calls view are attempts (README "Figure definitions"). Distinct calls are
# left to `toolctl stats`: counting them means hashing every call_id (~1 s per 5M attempts),
# where everything else `db info` reads costs milliseconds.
ATTEMPT_RANGE = "SELECT count(*), min(ts), max(ts) FROM tool_calls"
USER_TABLES = ("SELECT table_name FROM information_schema.tables"
               " WHERE table_schema = 'main' AND table_type = 'BASE TABLE' ORDER BY table_name")

# Whole batches only: the ledger digests a batch's rows together.
DELETE_EVENTS = "DELETE FROM events WHERE list_contains($ids, batch_id)"
DELETE_SPANS = "DELETE FROM spans WHERE list_contains($ids, batch_id)"
DELETE_REJECTS = "DELETE FROM rejects WHERE list_contains($ids, batch_id)"


def file_bytes(path: Path | None) -> int | None:
    """Bytes on disk of a store: the database file plus its write-ahead log."""
    if path is None or not Path(path).exists():
        return None
    wal = Path(str(path) + ".wal")
    return Path(path).stat().st_size + (wal.stat().st_size if wal.exists() else 0)


def table_counts(store: Any) -> dict[str, int]:
    """Row count of every base table of the store (known tables first, then any others)."""
    present = [r["table_name"] for r in store.fetch_dicts(USER_TABLES)]
    ordered = [t for t in INFO_TABLES if t in present] + \
        [t for t in present if t not in INFO_TABLES and t != "schema_migrations"]
    return {t: int(store.scalar("SELECT count(*) FROM " + quote_ident(t, present))) for t in ordered}


def store_info(store: Any) -> dict:
    """Path, size, schema version, row counts, tool-call attempts and their time range, ledger size.

    ``attempts.count`` counts stored attempts (events and tool spans), not calls.
    """
    attempts, first, last = store.row(ATTEMPT_RANGE)
    counts = table_counts(store)
    pruned = store.scalar("SELECT count(*) FROM ledger WHERE kind = 'prune'") if "ledger" in counts else 0
    return {
        "path": str(store.path) if store.path is not None else None,
        "exists": store.path is not None,
        "size_bytes": file_bytes(store.path),
        "schema_version": store.schema_version(),
        "latest_schema_version": latest_schema_version(),
        "tables": counts,
        "attempts": {"count": int(attempts), "first_ts": first, "last_ts": last},
        "ledger_entries": counts.get("ledger", 0),
        "prune_entries": int(pruned),
    }


class _Unmigrated(Store):
    """A Store that opens for writing without migrating, so `db migrate` can report the
    version it found before applying anything."""

    def migrate(self) -> list[str]:  # type: ignore[override]
        return []


def migrate_store(path: Path) -> dict:
    """Apply pending migrations to the store at ``path`` (created if missing).

    Returns {path, from_version, to_version, applied: ["0003_gate", ...]}; ``applied`` is
    empty when the store was already current. Raises SchemaVersionError if the store is newer
    than this toolctl, StoreBusyError if another process holds it.
    """
    with _Unmigrated.open(path, write=True) as store:
        before = store.schema_version()
        applied = Store.migrate(store)
        return {"path": str(path), "from_version": before, "to_version": store.schema_version(),
                "applied": applied}


def parse_age(text: str) -> timedelta:
    """``30d``, ``12h``, ``90m``, ``2w`` or ``45s`` as a timedelta (positive)."""
    from toolctl.timeutil import parse_duration

    return parse_duration(text or "", option="--older-than")


def prune_store(store: Any, *, cutoff: datetime, dry_run: bool = False, older_than: str | None = None,
                allow_unexported: bool = False) -> dict:
    """Remove the ingest batches whose every row is older than ``cutoff`` (naive UTC).

    Unless ``allow_unexported``, a batch with rows that a lake this store exports to
    (lake_state) does not hold yet stops the prune: UsageError, nothing removed (dry run too),
    checked first: before any digest is recomputed or a ledger adopt entry written.

    Batches with rows on both sides of the cutoff are kept whole and listed as ``kept``.
    Each removed batch must still match its ledger digest, else LedgerTamperedError (exit 5)
    and nothing is removed. Not dry-run: deletes and appends one ``prune`` ledger entry in
    one transaction (joins the caller's); nothing to remove writes nothing. Dry run: reads
    only. Returns {cutoff, dry_run, batches: [...], kept: [...], events, spans, rejects,
    ledger_seq}.
    """
    from toolctl.audit import ledger

    with store.transaction():
        candidates = store.fetch_dicts(load_sql("prune_candidates"), {"cutoff": cutoff})
        whole = [c for c in candidates if c["newest"] < cutoff]
        if whole and not allow_unexported:  # before any digest is computed or entry written
            _refuse_unexported(store, sorted(int(c["batch_id"]) for c in whole))
        kept = [{"batch_id": int(c["batch_id"]), "newest": c["newest"]} for c in candidates
                if c["newest"] >= cutoff]
        started = store.row("SELECT seq FROM ledger LIMIT 1") is not None
        if whole and not started and not dry_run:
            ledger.ensure_started(store)  # adopt first: the prune entry needs their digests
            started = True
        expected, _ = ledger.expected_batches(store)
        removed: dict[int, dict] = {}
        for c in whole:
            bid = int(c["batch_id"])
            count, digest = ledger.batch_digest(store, bid)
            if not started:  # dry run on a store without a ledger: adopt would record these
                expected[bid] = (count, digest, 0)
            had = expected.get(bid)
            if had is None or (had[0], had[1]) != (count, digest):
                what = ("no ledger entry records it" if had is None
                        else f"its rows no longer match ledger entry {had[2]}")
                raise ledger.LedgerTamperedError(
                    f"batch {bid} cannot be pruned: {what}; nothing was removed",
                    hint="run `toolctl audit verify` to see what changed; prune only removes "
                         "batches the ledger can vouch for")
            removed[bid] = {"row_count": count, "rows_digest": digest, "recorded_by": had[2],
                            "events": int(c["events"]), "spans": int(c["spans"]),
                            "rejects": int(c["rejects"]), "newest": c["newest"]}
        totals = {k: sum(r[k] for r in removed.values()) for k in ("events", "spans", "rejects")}
        entry = None
        if removed and not dry_run:
            ids = sorted(removed)
            for sql in (DELETE_EVENTS, DELETE_SPANS, DELETE_REJECTS):
                store.execute(sql, {"ids": ids}).fetchall()
            entry = ledger.record_pruned_batches(store, removed, {
                "cutoff": cutoff, "older_than": older_than, **totals})
    return {
        "cutoff": cutoff,
        "older_than": older_than,
        "dry_run": dry_run,
        "batches": [{"batch_id": b, **{k: v for k, v in r.items()}} for b, r in sorted(removed.items())],
        "kept": kept,
        **totals,
        "ledger_seq": entry["seq"] if entry else None,
    }


def _refuse_unexported(store: Any, batch_ids: list[int]) -> None:
    """UsageError when a lake of this store lacks rows of ``batch_ids`` (the first such lake)."""
    import shlex

    from toolctl.lake.export import unexported_rows

    missing = unexported_rows(store, batch_ids)
    if missing:
        lake = missing[0]
        raise UsageError(f"{lake['events']:,} event(s) and {lake['spans']:,} span(s) of the batches to prune "
                         f"are not in lake {lake['lake_path']} yet; nothing was removed",
                         hint=f"run `toolctl lake export {shlex.quote(lake['lake_path'])}` first, or pass "
                              "--allow-unexported to remove them anyway")


def _copy_into(store: Any, tmp: Path) -> dict[str, int]:
    """Copy the whole database into the new file ``tmp`` in one transaction (a snapshot),
    check it by opening it and comparing every table's row count; returns the counts."""
    for leftover in (tmp, Path(str(tmp) + ".wal")):
        leftover.unlink(missing_ok=True)
    with store.transaction():
        source = store.scalar("SELECT current_database()")
        counts = table_counts(store)
        store.execute("ATTACH $path AS toolctl_copy", {"path": str(tmp)}).fetchall()
        try:
            store.execute("COPY FROM DATABASE " + quote_ident(source, [source])
                          + " TO toolctl_copy").fetchall()
        finally:
            store.execute("DETACH toolctl_copy").fetchall()
    with Store.open(tmp, write=False) as copy:
        copied = table_counts(copy)
    if copied != counts:
        raise StoreError(f"copy check failed: row counts differ (store {counts}, copy {copied})",
                         hint="retry; if it persists, copy the file while no toolctl runs")
    return counts


def _tmp_next_to(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def vacuum_store(path: Path) -> dict:
    """Reclaim the space of deleted rows: checkpoint, then rewrite the store compactly.

    DuckDB reuses freed blocks but does not shrink its file, so after a checkpoint the
    store is copied (ATTACH + COPY FROM DATABASE) to a new file next to it, checked by row
    counts, and renamed over the original while this process still holds the original's
    lock (a waiting process then opens the new file). Returns {path, size_before,
    size_after} in bytes (file + WAL).
    """
    path = Path(path)
    before = file_bytes(path)
    tmp = _tmp_next_to(path)
    with Store.open(path, write=True) as store:
        store.execute("FORCE CHECKPOINT").fetchall()
        try:
            _copy_into(store, tmp)
            if Path(str(tmp) + ".wal").exists():  # DETACH checkpoints; never rename half a store
                raise StoreError(f"vacuum copy {tmp} kept a write-ahead log",
                                 hint="the store is unchanged; run `toolctl db vacuum` again")
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    return {"path": str(path), "size_before": before, "size_after": file_bytes(path)}


def backup_store(store: Any, dest: Path, *, force: bool = False) -> dict:
    """A consistent copy of the store in ``dest`` (DuckDB ATTACH + COPY FROM DATABASE, in one
    transaction: a snapshot), checked by opening it and comparing every table's row count.

    Written to a temporary file next to ``dest`` and renamed into place only after the check,
    so a failed backup never leaves a half-written ``dest``. Refuses an existing ``dest``
    unless ``force`` (UsageError). Returns {path, source, size_bytes, tables}.
    """
    dest = Path(dest).expanduser().resolve()
    if store.path is None:
        raise UsageError("there is no store to back up yet", hint="ingest something first")
    if dest == Path(store.path).resolve():
        raise UsageError(f"backup file {dest} is the store itself", hint="name another file")
    if dest.is_dir():
        raise UsageError(f"backup file {dest} is a directory",
                         hint="name a file in it, e.g. " + str(dest / "toolctl-backup.duckdb"))
    if dest.exists() and not force:
        raise UsageError(f"backup file {dest} already exists", hint="pass --force to overwrite it")
    if not dest.parent.is_dir():
        raise UsageError(f"directory {dest.parent} does not exist", hint="create it first")
    tmp = _tmp_next_to(dest)
    import duckdb

    try:
        counts = _copy_into(store, tmp)
        os.replace(tmp, dest)
    except (OSError, duckdb.IOException) as exc:  # permissions, a read-only place, disk full
        tmp.unlink(missing_ok=True)
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc).splitlines()[0]
        raise ToolctlError(f"cannot write backup {dest}: {reason}",
                           hint="pick a directory you can write to, with room for the store") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return {"path": str(dest), "source": str(store.path), "size_bytes": file_bytes(dest),
            "tables": counts}
