"""``toolctl lake compact``: merge the small files of closed hours, one file per partition.

Per partition, under ``_compact.lock`` (created with O_CREAT|O_EXCL; stale after
``LOCK_STALE_SECONDS``, then taken over), the inputs are listed again, read, sorted and
written as one file named with this store's writer id and a sequence number committed to
the store first. The replacement is journalled in the lake, so a crash at any point is
finished or undone by the next compactor of that partition:

1. ``_compactions/<output stem>.pending.json``: partition, inputs (path, rows, sha256),
   output (path, rows, sha256), written atomically before the output appears;
2. the output is published (temp name, fsync, rename), then the inputs are deleted;
3. a ``lake_compact`` ledger entry is committed to this store;
4. the journal is renamed to ``<output stem>.json``: the permanent record that lets any
   writer's ``audit verify --lake`` account for its files that were compacted away.

Recovery (next compaction of that partition): a pending journal whose output exists is
finished (remaining inputs deleted, ledger entry recorded if it is ours, journal done);
one whose output does not exist is dropped (the inputs were never touched). Between
steps 2's rename and its deletes a reader listing the partition can see both the output
and some inputs; the window is one unlink per input (docs/lake.md).
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterator

from toolctl.errors import LakeFileError
from toolctl.lake.layout import (COMPACTIONS, COMPRESSION, DATASETS, LAKE_VERSION, ROW_GROUP_ROWS,
                                 damaged_file, file_name, floor_hour, fsync_dir, open_lake, partition_files,
                                 partition_hour, partitions, parquet_rows, publish, sha256_file,
                                 tmp_path_for, write_atomic)

LOCK_NAME = "_compact.lock"
#: A lock older than this (seconds since its file was written) is taken over: a compactor
#: that crashed. Far longer than compacting one hour's partition takes.
LOCK_STALE_SECONDS = 600


@dataclass
class CompactResult:
    lake: str
    before: str
    compacted: list[dict] = field(default_factory=list)
    recovered: list[str] = field(default_factory=list)
    busy: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"lake": self.lake, "before": self.before, "compacted": self.compacted,
                "recovered": self.recovered, "busy": self.busy}


# -- the partition lock ----------------------------------------------------------------------
def _try_lock(directory: Path, stale_seconds: float) -> str | None:
    path = directory / LOCK_NAME
    token = json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "token": secrets.token_hex(8),
                        "at": time.time()})
    for _ in range(3):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                age = time.time() - path.stat().st_mtime
                held = path.read_text("utf-8")
            except FileNotFoundError:
                continue
            if age < stale_seconds:
                return None
            # Take a stale lock over by moving it aside; if what moved is not the stale lock
            # (someone took it over meanwhile), put it back and give up.
            aside = directory / f"{LOCK_NAME}.stale-{secrets.token_hex(4)}"
            try:
                os.rename(path, aside)
            except FileNotFoundError:
                continue
            moved = aside.read_text("utf-8")
            if moved != held:
                try:
                    os.link(aside, path)
                except FileExistsError:
                    pass
                aside.unlink()
                return None
            aside.unlink()
            continue
        try:
            os.write(fd, token.encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        return token
    return None


def _unlock(directory: Path, token: str) -> None:
    path = directory / LOCK_NAME
    try:
        if path.read_text("utf-8") == token:
            path.unlink()
    except FileNotFoundError:
        pass


def _read_input(path: Path, required: list[str]) -> Any:
    """A compaction input as an Arrow table; LakeFileError naming it when it cannot be read or
    lacks the dataset's time and key columns (not a file of this dataset)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.ParquetFile(path).read()
    except (pa.ArrowException, OSError) as exc:
        raise damaged_file(path, exc) from None
    missing = [c for c in required if c not in table.column_names]
    if missing:
        raise LakeFileError(f"cannot read lake file {path}: it has no column {', '.join(missing)}",
                            hint="it is not a file of this dataset: move it out of the lake")
    return table


@contextmanager
def partition_lock(directory: Path, stale_seconds: float = LOCK_STALE_SECONDS) -> Iterator[bool]:
    """Hold the partition's compaction lock; yields False (and holds nothing) when it is busy."""
    token = _try_lock(directory, stale_seconds)
    try:
        yield token is not None
    finally:
        if token is not None:
            _unlock(directory, token)


# -- journal ---------------------------------------------------------------------------------
def _journal_dir(root: Path) -> Path:
    d = root / COMPACTIONS
    d.mkdir(exist_ok=True)
    return d


def compaction_records(root: Path, *, pending: bool = False) -> list[dict]:
    """The compaction journals of the lake (done ones; with ``pending`` the unfinished ones)."""
    d = Path(root) / COMPACTIONS
    if not d.is_dir():
        return []
    suffix = ".pending.json" if pending else ".json"
    out = []
    for p in sorted(d.iterdir()):
        if p.name.startswith(".") or not p.name.endswith(suffix):
            continue
        if not pending and p.name.endswith(".pending.json"):
            continue
        try:
            doc = json.loads(p.read_text("utf-8"))
        except (OSError, ValueError):
            continue
        doc["_journal"] = p
        out.append(doc)
    return out


def _ledger_has_output(store: Any, path: str, lake_id: str) -> bool:
    return store.scalar(
        "SELECT count(*) FROM ledger WHERE kind = 'lake_compact'"
        " AND json_extract_string(payload, '$.output.path') = ?"
        " AND json_extract_string(payload, '$.lake_id') = ?", [path, lake_id]) > 0


def _entry(doc: dict) -> dict:
    return {k: doc[k] for k in ("lake_id", "partition", "dataset", "writer_id", "seq", "inputs", "output")}


def _finish(store: Any, root: Path, doc: dict, writer_id: str) -> None:
    """Steps 2 (deletes) to 4 of a journal whose output is in place."""
    from toolctl.audit.ledger import record_event

    for item in doc["inputs"]:
        try:
            (root / item["path"]).unlink()
        except FileNotFoundError:
            pass
    fsync_dir(root / doc["partition"])
    if doc["writer_id"] == writer_id and not _ledger_has_output(store, doc["output"]["path"], doc["lake_id"]):
        with store.transaction():
            record_event(store, "lake_compact", _entry(doc))
    journal: Path = doc["_journal"]
    done = journal.with_name(journal.name.replace(".pending.json", ".json"))
    os.replace(journal, done)
    fsync_dir(journal.parent)


def _recover(store: Any, root: Path, partition: str, writer_id: str) -> list[str]:
    recovered = []
    for doc in compaction_records(root, pending=True):
        if doc.get("partition") != partition:
            continue
        out = root / doc["output"]["path"]
        if out.exists():
            _finish(store, root, doc, writer_id)
        else:
            tmp = tmp_path_for(out)
            if tmp.exists():
                tmp.unlink()
            doc["_journal"].unlink()
        recovered.append(doc["output"]["path"])
    return recovered


# -- compaction ------------------------------------------------------------------------------
def closed_before(now: datetime) -> datetime:
    """Partitions starting before this hour are closed: they ended at least an hour before
    ``now`` (now 10:30 -> 09:00: the 08:00 partition ended at 09:00)."""
    return floor_hour(now - timedelta(hours=1))


def compact(store: Any, root: Path | str, *, before: datetime | None = None,
            now: datetime | None = None, stale_seconds: float = LOCK_STALE_SECONDS) -> CompactResult:
    """Merge each closed partition's files into one. ``before`` (naive UTC, floored to the
    hour): compact partitions starting before it; default: those that ended an hour ago.

    Must not run inside an open store transaction (the sequence of the output file is
    committed before the file is published). Raises LakeError/UsageError for a bad lake.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    from toolctl.lake.export import lake_state, reserve_seq

    if store.in_transaction:
        raise RuntimeError("compact() commits its own transactions; call it outside one")
    root = Path(root)
    doc = open_lake(root, create=False)
    lake_id = doc["lake_id"]
    if now is None:
        now = datetime.now(timezone.utc).replace(tzinfo=None)
    bound = floor_hour(before) if before is not None else closed_before(now)
    result = CompactResult(str(root), bound.isoformat() + "Z")
    with store.transaction():
        writer_id = lake_state(store, root, lake_id)["writer_id"]
    for part in list(partitions(root)):
        if partition_hour(part) >= bound:
            continue
        directory = root / part
        pending_here = any(d.get("partition") == part for d in compaction_records(root, pending=True))
        if len(partition_files(root, part)) < 2 and not pending_here:
            continue
        with partition_lock(directory, stale_seconds) as held:
            if not held:
                result.busy.append(part)
                continue
            result.recovered += _recover(store, root, part, writer_id)
            files = partition_files(root, part)  # again, under the lock
            if len(files) < 2:
                continue
            dataset = part.split("/")[0]
            _, ts, keys = DATASETS[dataset]
            inputs, tables = [], []
            for f in files:
                path = root / f.path
                inputs.append({"path": f.path, "rows": parquet_rows(path), "sha256": sha256_file(path)})
                tables.append(_read_input(path, [ts, *keys]))
            # "default" promotion: a file written before a nullable column was appended (still
            # v1, docs/lake.md) gets NULLs there instead of failing the merge; a changed type
            # still fails (that is a new layout version).
            try:
                table = pa.concat_tables(tables, promote_options="default")
            except pa.ArrowException as exc:
                raise LakeFileError(f"cannot compact {root / part}: its files do not share the "
                                    f"{dataset} schema ({str(exc).splitlines()[0]})",
                                    hint=f"check the lake with `toolctl audit verify --lake {root}`; move "
                                         "the file that is not this dataset's out of the lake") from None
            table = table.sort_by([(ts, "ascending")] + [(k, "ascending") for k in keys])
            table = table.replace_schema_metadata({"toolctl.lake.version": str(LAKE_VERSION),
                                                   "toolctl.lake.dataset": dataset})
            with store.transaction():
                seq = reserve_seq(store, lake_id)
            rel = f"{part}/{file_name(writer_id, seq)}"
            final = root / rel
            tmp = tmp_path_for(final)
            pq.write_table(table, tmp, compression=COMPRESSION, row_group_size=ROW_GROUP_ROWS)
            journal_doc = {"format": "toolctl-lake-compaction", "version": LAKE_VERSION, "lake_id": lake_id,
                           "partition": part, "dataset": dataset, "writer_id": writer_id, "seq": seq,
                           "created_at": datetime.now(timezone.utc).replace(tzinfo=None).isoformat(timespec="seconds") + "Z",
                           "inputs": inputs,
                           "output": {"path": rel, "rows": table.num_rows, "sha256": sha256_file(tmp)}}
            if table.num_rows != sum(i["rows"] for i in inputs):
                raise RuntimeError(f"compaction of {part} read {table.num_rows} rows from inputs "
                                   f"holding {sum(i['rows'] for i in inputs)}")
            journal = _journal_dir(root) / f"{final.stem}.pending.json"
            write_atomic(journal, json.dumps(journal_doc, sort_keys=True, indent=1).encode())
            publish(tmp, final, exclusive=True)
            journal_doc["_journal"] = journal
            _finish(store, root, journal_doc, writer_id)
            result.compacted.append(_entry(journal_doc))
    return result
