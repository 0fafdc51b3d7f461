"""Write a store's events and spans to the lake: ``toolctl lake export``, ``serve --lake``.

One export runs in one store transaction: it reads the rows no earlier export wrote (per
(dataset, batch, hour), ``lake_exports``), writes one file per partition, and records the
files (``lake_exports``, ``lake_state.next_seq``, one ``lake_file`` ledger entry each)
before committing. Files are published (renamed into place) before the commit; a file of
this writer with a seq >= the committed ``next_seq`` therefore belongs to an export that
never committed, and is deleted before the next export writes (see ``_drop_orphans``).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from toolctl.errors import UsageError
from toolctl.lake import load_query
from toolctl.lake.layout import (COLUMNS, COMPRESSION, DATASETS, LAKE_VERSION, ROW_GROUP_ROWS, LakeError,
                                 ceil_hour, file_name, floor_hour, list_files, new_writer_id,
                                 open_lake, partition_dir, publish, sha256_file, tmp_path_for)
from toolctl.store import quote_ident

# Files this process published whose transaction may not have committed: (lake_id, writer) ->
# {seq: path}. Checked against the committed next_seq at the start of every export.
_published: dict[tuple[str, str], dict[int, Path]] = {}
_scanned: set[tuple[str, str]] = set()  # lakes whose orphans this process looked for on disk
_lock = threading.Lock()


@dataclass
class ExportResult:
    lake: str
    lake_id: str
    writer_id: str
    files: list[dict] = field(default_factory=list)
    orphans_removed: int = 0

    @property
    def rows(self) -> dict[str, int]:
        out = {ds: 0 for ds in DATASETS}
        for f in self.files:
            out[f["dataset"]] += f["rows"]
        return out

    def to_dict(self) -> dict:
        return {"lake": self.lake, "lake_id": self.lake_id, "writer_id": self.writer_id,
                "files": self.files, "rows": self.rows, "orphans_removed": self.orphans_removed}


def _sql(name: str, dataset: str) -> str:
    table, ts, keys = DATASETS[dataset]
    cols = [c for c, _ in COLUMNS[dataset]]
    q = {c: "t." + quote_ident(c, cols) for c in cols}
    ts_q = quote_ident(ts, cols)
    columns = ", ".join(f"{q[c]}::VARCHAR AS {quote_ident(c, cols)}" if typ == "JSON" else q[c]
                        for c, typ in COLUMNS[dataset])
    pending = "(\n" + load_query("lake_pending").format(ts=ts_q) + "\n)"
    return load_query(name).format(table=quote_ident(table, DATASETS_TABLES), ts=ts_q, pending=pending,
                                   columns=columns, keys=", ".join(q[k] for k in keys))


DATASETS_TABLES = tuple(t for t, _, _ in DATASETS.values())


def unexported_rows(store: Any, batch_ids: list[int]) -> list[dict]:
    """Per lake this store exports to, the rows of ``batch_ids`` it has not exported there
    yet ({lake_path, events, spans}); lakes that hold all of them are left out.

    A lake whose directory now holds another lake (deleted and exported again: a new
    lake_id at the same path) is no longer written: that new lake has its own lake_state row.
    A directory that is gone still counts (its rows may be in no other place)."""
    out = []
    lakes = store.fetch_dicts("SELECT lake_id, lake_path, complete_through FROM lake_state ORDER BY lake_path")
    for lake in lakes:
        if _lake_id_at(Path(lake["lake_path"])) not in (None, lake["lake_id"]):
            continue
        counts = {ds: int(store.scalar(_sql("lake_unexported", ds), {
            "ids": batch_ids, "lake_id": lake["lake_id"], "dataset": ds,
            "after": lake["complete_through"], "since": None, "until": None}) or 0) for ds in DATASETS}
        if any(counts.values()):
            out.append({"lake_path": lake["lake_path"], **counts})
    return out


def _lake_id_at(root: Path) -> str | None:
    """The lake_id of the lake at ``root``, or None (no readable toolctl lake there)."""
    try:
        return str(open_lake(root, create=False)["lake_id"])
    except (LakeError, UsageError, KeyError, TypeError, AttributeError):
        return None


def lake_state(store: Any, root: Path, lake_id: str) -> dict:
    """This store's writer state for the lake (created on first use, in the caller's transaction)."""
    row = store.row("SELECT writer_id, next_seq, complete_through FROM lake_state WHERE lake_id = ?",
                    [lake_id])
    if row is None:
        row = (new_writer_id(), 1, 0)
        store.execute("INSERT INTO lake_state VALUES (?, ?, ?, ?, ?)",
                      [lake_id, str(Path(root).resolve()), *row]).fetchall()
    return {"writer_id": row[0], "next_seq": int(row[1]), "complete_through": int(row[2])}


def reserve_seq(store: Any, lake_id: str) -> int:
    """Take this store's next file sequence for the lake (commit it before publishing the file
    when the file must survive a rollback: compaction does)."""
    seq = int(store.scalar("SELECT next_seq FROM lake_state WHERE lake_id = ?", [lake_id]))
    store.execute("UPDATE lake_state SET next_seq = next_seq + 1 WHERE lake_id = ?", [lake_id]).fetchall()
    return seq


def _drop_orphans(root: Path, lake_id: str, writer_id: str, next_seq: int) -> int:
    """Delete files of this writer that no committed export recorded (seq >= next_seq)."""
    removed = 0
    with _lock:
        key = (lake_id, writer_id)
        mine = _published.setdefault(key, {})
        candidates = dict(mine)
        if key not in _scanned:
            _scanned.add(key)
            for f in list_files(root):
                if f.writer_id == writer_id:
                    candidates[f.seq] = root / f.path
            for tmp in root.glob(f"*/dt=*/hour=*/.{writer_id}-*.parquet.tmp"):
                tmp.unlink(missing_ok=True)  # a killed export's unfinished file
        for seq, path in candidates.items():
            if seq >= next_seq:
                try:
                    path.unlink()
                    removed += 1
                except FileNotFoundError:
                    pass
            mine.pop(seq, None)
    return removed


def export_pending(store: Any, root: Path | str, *, since: datetime | None = None,
                   until: datetime | None = None) -> ExportResult:
    """Export the store's rows not yet in the lake at ``root`` (created if missing).

    ``since``/``until`` (naive UTC) are widened to whole hours. Without them, every pending
    row is exported and ``complete_through`` advances. Call it outside a transaction (the
    writer id is committed before any file is published). Raises LakeError for a directory
    that is not a toolctl lake.
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    root = Path(root)
    doc = open_lake(root, create=True)
    lake_id = doc["lake_id"]
    since_h = floor_hour(since) if since is not None else None
    until_h = ceil_hour(until) if until is not None else None
    with store.transaction():
        # Committed on its own first: files published under this writer id must be
        # recognisable as this store's orphans even if the export below never commits.
        lake_state(store, root, lake_id)
    with store.transaction():
        state = lake_state(store, root, lake_id)
        writer_id, seq = state["writer_id"], state["next_seq"]
        result = ExportResult(str(root), lake_id, writer_id)
        result.orphans_removed = _drop_orphans(root, lake_id, writer_id, seq)
        high = int(store.scalar("SELECT coalesce(max(batch_id), 0) FROM batches"))
        from toolctl.audit.ledger import record_event

        for dataset, (_, ts, _) in DATASETS.items():
            base = {"lake_id": lake_id, "dataset": dataset, "after": state["complete_through"],
                    "since": since_h, "until": until_h}
            hours = store.fetch_dicts(_sql("lake_pending_hours", dataset), base)
            for h in hours:
                hour = h["hour"]
                rel = f"{partition_dir(dataset, hour)}/{file_name(writer_id, seq)}"
                final = root / rel
                final.parent.mkdir(parents=True, exist_ok=True)
                tmp = tmp_path_for(final)
                table = store.fetch_arrow(_sql("lake_partition_rows", dataset), {**base, "hour": hour})
                table = table.replace_schema_metadata({"toolctl.lake.version": str(LAKE_VERSION),
                                                       "toolctl.lake.dataset": dataset})
                pq.write_table(table, tmp, compression=COMPRESSION, row_group_size=ROW_GROUP_ROWS)
                with _lock:
                    _published.setdefault((lake_id, writer_id), {})[seq] = final
                publish(tmp, final)
                lo, hi = pc.min_max(pc.cast(table.column(ts), pa.timestamp("us"), safe=False)).values()
                entry = {"lake_id": lake_id, "path": rel, "dataset": dataset, "rows": table.num_rows,
                         "sha256": sha256_file(final), "bytes": final.stat().st_size,
                         "min_ts": _iso(lo.as_py()), "max_ts": _iso(hi.as_py()),
                         "writer_id": writer_id, "seq": seq}
                store.execute(_sql("lake_record_export", dataset),
                              {**base, "hour": hour, "file": rel}).fetchall()
                record_event(store, "lake_file", entry)
                result.files.append(entry)
                seq += 1
        store.execute("UPDATE lake_state SET next_seq = ?, lake_path = ?,"
                      " complete_through = CASE WHEN ? THEN greatest(complete_through, ?)"
                      " ELSE complete_through END WHERE lake_id = ?",
                      [seq, str(root.resolve()), since_h is None and until_h is None, high,
                       lake_id]).fetchall()
    return result


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat(timespec="microseconds") + "Z"
