"""The lake's on-disk layout (version 1): an interface other engines read (docs/lake.md).

    DIR/_toolctl_lake.json                                  {"format": "toolctl-lake", "version": 1, "lake_id": ...}
    DIR/<dataset>/dt=YYYY-MM-DD/hour=HH/<writer_id>-<seq:012d>.parquet
    DIR/_compactions/<writer_id>-<seq:012d>.json            what a compaction replaced

Files are immutable and appear atomically (``.<name>.tmp`` in the target directory, fsync,
rename). Readers ignore names starting with '.' or '_'. ``writer_id`` is
``<host>_<16 hex>`` (host: lowercase [a-z0-9], at most 20 characters), so the last '-'
of a file name separates it from the sequence number.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator

from toolctl.errors import LakeError, UsageError

LAKE_FORMAT = "toolctl-lake"
LAKE_VERSION = 1
MARKER = "_toolctl_lake.json"
COMPACTIONS = "_compactions"
ROW_GROUP_ROWS = 122_880
COMPRESSION = "zstd"

#: dataset -> (store table, time column the partition comes from, tie-break key for sorting).
DATASETS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "events": ("events", "ts", ("event_id",)),
    "spans": ("spans", "start_time", ("trace_id", "span_id")),
}

#: The v1 file schemas: the store's columns (migrations 0001 and 0002) in their order.
#: JSON columns are written as VARCHAR holding the JSON text.
EVENT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("event_id", "VARCHAR"), ("ts", "TIMESTAMP"), ("tool", "VARCHAR"), ("status", "VARCHAR"),
    ("latency_ms", "DOUBLE"), ("schema_version", "INTEGER"), ("trace_id", "VARCHAR"),
    ("span_id", "VARCHAR"), ("call_id", "VARCHAR"), ("session_id", "VARCHAR"), ("tenant", "VARCHAR"),
    ("user_id", "VARCHAR"), ("service", "VARCHAR"), ("version", "VARCHAR"), ("stage", "VARCHAR"),
    ("attempt", "INTEGER"), ("idempotency_key", "VARCHAR"), ("timeout_ms", "DOUBLE"),
    ("error_code", "VARCHAR"), ("message", "VARCHAR"), ("retryable", "BOOLEAN"),
    ("http_status", "INTEGER"), ("confidence", "DOUBLE"), ("args", "JSON"), ("data", "JSON"),
    ("extra", "JSON"), ("batch_id", "BIGINT"), ("source", "VARCHAR"), ("line_no", "BIGINT"),
)
SPAN_COLUMNS: tuple[tuple[str, str], ...] = (
    ("trace_id", "VARCHAR"), ("span_id", "VARCHAR"), ("parent_span_id", "VARCHAR"),
    ("trace_state", "VARCHAR"), ("name", "VARCHAR"), ("kind", "INTEGER"), ("start_ns", "BIGINT"),
    ("end_ns", "BIGINT"), ("start_time", "TIMESTAMP_NS"), ("status_code", "INTEGER"),
    ("status_message", "VARCHAR"), ("flags", "BIGINT"), ("service", "VARCHAR"),
    ("service_version", "VARCHAR"), ("resource", "JSON"), ("scope_name", "VARCHAR"),
    ("scope_version", "VARCHAR"), ("attributes", "JSON"), ("events", "JSON"), ("links", "JSON"),
    ("dropped_attributes_count", "BIGINT"), ("dropped_events_count", "BIGINT"),
    ("dropped_links_count", "BIGINT"), ("auth_signal", "BOOLEAN"), ("tool_rule", "VARCHAR"),
    ("tool", "VARCHAR"), ("status", "VARCHAR"), ("latency_ms", "DOUBLE"), ("call_id", "VARCHAR"),
    ("session_id", "VARCHAR"), ("tenant", "VARCHAR"), ("user_id", "VARCHAR"), ("attempt", "INTEGER"),
    ("idempotency_key", "VARCHAR"), ("retryable", "BOOLEAN"), ("confidence", "DOUBLE"),
    ("error_code", "VARCHAR"), ("http_status", "INTEGER"), ("args", "JSON"), ("result", "JSON"),
    ("batch_id", "BIGINT"), ("source", "VARCHAR"),
)
COLUMNS = {"events": EVENT_COLUMNS, "spans": SPAN_COLUMNS}

WRITER_RE = r"[a-z0-9]{1,20}_[0-9a-f]{16}"
FILE_RE = re.compile(rf"^(?P<writer>{WRITER_RE})-(?P<seq>[0-9]{{12}})\.parquet$")
PARTITION_RE = re.compile(r"^dt=(\d{4}-\d{2}-\d{2})$"), re.compile(r"^hour=(\d{2})$")


# LakeError (the lake directory is missing, not a toolctl lake, or of an unknown version)
# lives with the other error classes, so the commands that turn it into a verdict need not
# import this module.


def new_writer_id() -> str:
    host = re.sub(r"[^a-z0-9]", "", socket.gethostname().lower())[:20] or "host"
    return f"{host}_{secrets.token_hex(8)}"


def file_name(writer_id: str, seq: int) -> str:
    return f"{writer_id}-{seq:012d}.parquet"


def partition_dir(dataset: str, hour: datetime) -> str:
    """The partition of ``hour`` (a naive UTC datetime), relative to the lake."""
    # Not %Y: it does not zero-pad years before 1000 (0001-01-01 is Go's zero time), and a
    # `dt=1-01-01` directory does not match PARTITION_RE, so every reader would skip it.
    return f"{dataset}/dt={hour.year:04d}-{hour:%m-%d}/hour={hour:%H}"


def partition_hour(rel_dir: str) -> datetime:
    _, dt, hour = rel_dir.split("/")
    return datetime.strptime(f"{dt[3:]} {hour[5:]}", "%Y-%m-%d %H")


def _partition_start(text: str, fmt: str) -> datetime | None:
    """The start of a ``dt=``/``hour=`` directory, None when the name only looks like one
    (``dt=2026-13-45``, ``hour=24``): such a directory is not a partition of the layout."""
    try:
        return datetime.strptime(text, fmt)
    except ValueError:
        return None


def floor_hour(value: datetime) -> datetime:
    return value.replace(minute=0, second=0, microsecond=0)


def ceil_hour(value: datetime) -> datetime:
    """The next whole hour (``value`` itself when whole); within the last hour of 9999, whose
    end a datetime cannot hold, the last representable time."""
    floor = floor_hour(value)
    if floor == value:
        return floor
    return floor + timedelta(hours=1) if datetime.max - floor >= timedelta(hours=1) else datetime.max


# -- the marker ------------------------------------------------------------------------------
def open_lake(root: Path, *, create: bool) -> dict:
    """The lake's marker document; with ``create`` a missing lake is initialised.

    Raises LakeError when ``root`` is not a toolctl lake (or of a version this toolctl does
    not know), UsageError when it does not exist and ``create`` is false.
    """
    root = Path(root)
    marker = root / MARKER
    if not marker.exists():
        if not create and not root.is_dir():
            what = "it is a file, not a directory" if root.exists() else "the directory does not exist"
            raise UsageError(f"{root} is not a toolctl lake: {what}",
                             hint="write one with `toolctl lake export DIR` or `toolctl serve --lake DIR`")
        if not create:
            raise UsageError(f"{root} is not a toolctl lake (no {MARKER})",
                             hint="write one with `toolctl lake export DIR` or `toolctl serve --lake DIR`")
        if root.exists() and not root.is_dir():
            raise LakeError(f"lake {root} is not a directory", hint="pick a directory for the lake")
        if root.exists() and any(p.name not in (MARKER,) and not p.name.startswith((".", "_"))
                                 and p.name not in DATASETS for p in root.iterdir()):
            raise LakeError(f"{root} holds other files and no {MARKER}",
                            hint="point --lake at an empty or existing toolctl lake directory")
        if root.exists() and _holds_data(root):
            # A new marker would be a new lake_id: every store would export all its rows again.
            raise LakeError(f"{root} holds lake data files but no {MARKER}: its marker was lost",
                            hint=f"restore {MARKER} from a copy (`toolctl audit log --kind lake_file --format json` "
                                 "shows its lake_id), or point --lake at a new directory")
        root.mkdir(parents=True, exist_ok=True)
        doc = {"format": LAKE_FORMAT, "version": LAKE_VERSION, "lake_id": secrets.token_hex(16)}
        try:  # O_EXCL: two writers creating the lake at once agree on one marker
            write_atomic(marker, (json.dumps(doc, sort_keys=True) + "\n").encode(), exclusive=True)
        except FileExistsError:
            pass
    try:
        doc = json.loads(marker.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise LakeError(f"cannot read {marker}: {exc}", hint="restore the marker file") from None
    if doc.get("format") != LAKE_FORMAT:
        raise LakeError(f"{marker} is not a toolctl lake marker", hint="point at a toolctl lake")
    if doc.get("version") != LAKE_VERSION:
        raise LakeError(f"lake {root} has layout version {doc.get('version')}; this toolctl knows "
                        f"{LAKE_VERSION}", hint="use a toolctl that knows that layout version")
    if not isinstance(doc.get("lake_id"), str):
        # A marker written by hand (or another tool) without an id: its resolved path stands in.
        doc["lake_id"] = "path:" + str(root.resolve())
    return doc


def _holds_data(root: Path) -> bool:
    """Whether a dataset directory under ``root`` holds a data file (stops at the first)."""
    for ds in DATASETS:
        base = root / ds
        if base.is_dir() and any(FILE_RE.match(p.name) for p in base.glob("*/*/*.parquet")):
            return True
    return False


# -- atomic files ----------------------------------------------------------------------------
def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def tmp_path_for(final: Path) -> Path:
    return final.with_name(f".{final.name}.tmp")


def publish(tmp: Path, final: Path, *, exclusive: bool = False) -> None:
    """fsync ``tmp`` and rename it to ``final`` (both in one directory), then fsync the directory.
    exclusive: fail with FileExistsError rather than replace an existing ``final``."""
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    if exclusive:
        os.link(tmp, final)  # atomic and refuses to replace
        os.unlink(tmp)
    else:
        os.replace(tmp, final)
    fsync_dir(final.parent)


def write_atomic(final: Path, data: bytes, *, exclusive: bool = False) -> None:
    tmp = final.with_name(f".{final.name}.{secrets.token_hex(4)}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
    try:
        publish(tmp, final, exclusive=exclusive)
    finally:
        if tmp.exists():
            tmp.unlink()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def parquet_rows(path: Path) -> int:
    """Rows of a lake file, from its footer; LakeFileError (exit 4) naming it when unreadable."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(path).metadata.num_rows
    except (pa.ArrowException, OSError) as exc:
        raise damaged_file(path, exc) from None


def damaged_file(path: Path, exc: Exception) -> Exception:
    """A lake file that cannot be read (truncated, altered, not Parquet) as one ``Error:`` line."""
    from toolctl.errors import LakeFileError

    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return LakeFileError(f"cannot read lake file {path}: {detail}",
                         hint="check the lake with `toolctl audit verify --lake DIR`; restore the file "
                              "from a copy, or move it out of the lake")


# -- listing ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class LakeFile:
    path: str  # relative to the lake, '/'-separated
    dataset: str
    partition: str  # dataset/dt=…/hour=…
    writer_id: str
    seq: int


def visible(name: str) -> bool:
    return not name.startswith((".", "_"))


def _naive_utc(t: datetime | None) -> datetime | None:
    if t is not None and t.tzinfo is not None:
        t = t.astimezone(timezone.utc).replace(tzinfo=None)
    return t


def partitions(root: Path, dataset: str | None = None, *, since: datetime | None = None,
               until: datetime | None = None) -> Iterator[str]:
    """Partition directories (relative), sorted; with ``since``/``until`` only the hours that
    meet [since, until).

    Pruning is on the directory names alone: partition dt=D/hour=H holds the rows with
    D H:00 <= time < D H:00 + 1h, so a partition outside the window is never listed.
    """
    since, until = _naive_utc(since), _naive_utc(until)

    def outside(start: datetime, length: timedelta) -> bool:
        # since - start, not start + length: the end of dt=9999-12-31 is past what datetime holds.
        return until is not None and start >= until or since is not None and since - start >= length

    for ds in sorted(DATASETS) if dataset is None else [dataset]:
        base = Path(root) / ds
        if not base.is_dir():
            continue
        for dt in sorted(p for p in base.iterdir() if visible(p.name) and PARTITION_RE[0].match(p.name)):
            day = _partition_start(dt.name[3:], "%Y-%m-%d")
            if day is None or not dt.is_dir() or outside(day, timedelta(days=1)):
                continue
            for hour in sorted(p for p in dt.iterdir() if visible(p.name) and PARTITION_RE[1].match(p.name)):
                start = _partition_start(f"{dt.name[3:]} {hour.name[5:]}", "%Y-%m-%d %H")
                if start is not None and hour.is_dir() and not outside(start, timedelta(hours=1)):
                    yield f"{ds}/{dt.name}/{hour.name}"


def partition_files(root: Path, partition: str) -> list[LakeFile]:
    """The visible data files of one partition, sorted by name."""
    out = []
    d = Path(root) / partition
    if not d.is_dir():
        return out
    for p in sorted(d.iterdir()):
        m = FILE_RE.match(p.name)
        if m and visible(p.name):
            out.append(LakeFile(f"{partition}/{p.name}", partition.split("/")[0], partition,
                                m.group("writer"), int(m.group("seq"))))
    return out


def list_files(root: Path, dataset: str | None = None, *, since: datetime | None = None,
               until: datetime | None = None) -> list[LakeFile]:
    """The lake's data files (names matching FILE_RE in a partition directory; nothing else is
    data), of one dataset or all, in the partitions meeting [since, until) when given."""
    return [f for part in partitions(root, dataset, since=since, until=until)
            for f in partition_files(root, part)]


def list_lake(root: Path) -> list[dict]:
    """Files, rows and bytes per partition (``toolctl lake ls``)."""
    root = Path(root)
    open_lake(root, create=False)
    out = []
    for part in partitions(root):
        files = partition_files(root, part)
        if not files:
            continue
        out.append({"partition": part, "dataset": part.split("/")[0],
                    "hour": partition_hour(part).isoformat() + "Z", "files": len(files),
                    "rows": sum(parquet_rows(root / f.path) for f in files),
                    "bytes": sum((root / f.path).stat().st_size for f in files),
                    "writers": sorted({f.writer_id for f in files})})
    return out
