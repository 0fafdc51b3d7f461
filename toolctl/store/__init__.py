"""The store: the only package that opens DuckDB.

``Store.open(path, write=True)`` takes the single-writer lock DuckDB holds per file and
migrates the schema; ``write=False`` opens read-only and refuses a schema it does not
know. DuckDB errors are converted into ``StoreError``s here, at the one place the
connection lives, so callers above never import duckdb.

DuckDB lets one process write a file; while it does, no other process can open it, not
even read-only. Opening therefore retries for a short while (another ``toolctl``
command finishing) and then fails with ``StoreBusyError`` naming the holder. A running
``toolctl serve`` is found before that through its discovery file (see ``toolctl.remote``).
"""

from __future__ import annotations

import os
import re
import time
from contextlib import contextmanager
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

from toolctl import profile
from toolctl.errors import SchemaVersionError, StoreBusyError, StoreError, UsageError

#: Checkpoint once the WAL passes 256 MB (``Store.bulk_load`` / ``space_checkpoints``). DuckDB's
#: SET takes no bound parameters, so the whole statement is a constant.
SPACE_CHECKPOINTS_SQL = "SET checkpoint_threshold = '256MB'"

_LOCK_PATTERNS = ("could not set lock", "conflicting lock", "database is locked")
#: The migration that creates the ledger (toolctl.audit.ledger).
LEDGER_MIGRATION = "0004_audit"


@lru_cache(maxsize=None)
def load_sql(name: str) -> str:
    """The text of ``toolctl/store/sql/<name>.sql`` (named after the function that runs it)."""
    return resources.files("toolctl.store").joinpath("sql", f"{name}.sql").read_text("utf-8")


@lru_cache(maxsize=1)
def migrations() -> tuple[tuple[int, str, str], ...]:
    """All migrations as (version, name, sql), in order. Files are ``NNNN_name.sql``."""
    found = []
    for entry in resources.files("toolctl.store").joinpath("migrations").iterdir():
        m = re.fullmatch(r"(\d{4})_(\w+)\.sql", entry.name)
        if m:
            found.append((int(m.group(1)), m.group(2), entry.read_text("utf-8")))
    found.sort()
    versions = [v for v, _, _ in found]
    if versions != list(range(1, len(found) + 1)):
        raise RuntimeError(f"migrations are not numbered 1..n without gaps: {versions}")
    return tuple(found)


def latest_schema_version() -> int:
    return len(migrations())


def _holder_pid(message: str) -> str | None:
    m = re.search(r"PID (\d+)", message)
    return m.group(1) if m else None


class Store:
    """An open DuckDB store. Use as a context manager; ``conn`` is the DuckDB connection."""

    def __init__(self, conn: Any, path: Path | None, read_only: bool):
        self.conn = conn
        self.path = path
        self.read_only = read_only
        self._tx_depth = 0
        self._companion = False  # a second connection (``companion()``), not the store's own
        self._parent: "Store | None" = None  # the store a companion was opened from
        self._open_companions: set["Store"] = set()

    @property
    def in_transaction(self) -> bool:
        """True inside ``transaction()`` (a failed statement then loses the caller's work)."""
        return self._tx_depth > 0

    @contextmanager
    def transaction(self) -> Iterator["Store"]:
        """BEGIN … COMMIT, or ROLLBACK when the block raises.

        Re-entrant: inside an open transaction it joins that one, so a caller can group
        several writes (each written with its own ``transaction()``) into one commit —
        ``toolctl serve`` commits a burst of requests this way.
        """
        if self._tx_depth:
            self._tx_depth += 1
            try:
                yield self
            finally:
                self._tx_depth -= 1
            return
        self.conn.execute("BEGIN TRANSACTION")
        self._tx_depth = 1
        try:
            yield self
        except BaseException:
            self._tx_depth = 0
            self.conn.execute("ROLLBACK")
            raise
        self._tx_depth = 0
        if profile.ENABLED:  # a commit can checkpoint: worth its own line in the timeline
            profile.query("COMMIT", lambda: self.conn.execute("COMMIT"), rows_of=lambda _: None)
        else:
            self.conn.execute("COMMIT")

    # -- opening ---------------------------------------------------------------------------
    @classmethod
    def open(cls, path: Path | str, *, write: bool, wait_seconds: float = 10.0) -> "Store":
        """Open the store at ``path``.

        write=True creates the file if needed and applies pending migrations (in one
        transaction each). write=False opens read-only; if the file does not exist yet an
        empty in-memory store with the current schema is returned (``path`` is None then),
        so read commands show "no data" rather than failing.

        Raises StoreBusyError when another process holds the file past ``wait_seconds``,
        SchemaVersionError when the schema is newer than this toolctl or (read-only) older.
        """
        if profile.ENABLED:  # --profile: time the open (import duckdb, lock, migrations) as a phase
            with profile.phase("store open" + (" for writing" if write else " read-only")):
                return cls._open(path, write=write, wait_seconds=wait_seconds)
        return cls._open(path, write=write, wait_seconds=wait_seconds)

    @classmethod
    def _open(cls, path: Path | str, *, write: bool, wait_seconds: float) -> "Store":
        import duckdb

        path = Path(path)
        try:
            str(path).encode("utf-8")
        except UnicodeEncodeError:  # DuckDB takes UTF-8 names only (std::bad_cast otherwise)
            shown = os.fsencode(path).decode("utf-8", "backslashreplace")
            raise UsageError(f"store path {shown} is not valid UTF-8: DuckDB cannot open it",
                             hint="rename the file, or point --db or TOOLCTL_DB at a UTF-8 path") from None
        if not write and not path.exists():
            store = cls(duckdb.connect(":memory:"), None, read_only=False)
            store._configure()
            store.migrate()
            store.read_only = True
            return store
        if write:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:  # a file where a directory must be, a read-only place
                why = ("a file, not a directory" if isinstance(exc, FileExistsError)
                       else exc.strerror or str(exc))
                raise StoreError(f"cannot open store {path}: cannot create its directory "
                                 f"{path.parent}: {why}",
                                 hint="check the path (--db, TOOLCTL_DB or store.path)") from None
        deadline = time.monotonic() + wait_seconds
        delay = 0.05
        while True:
            try:
                conn = duckdb.connect(str(path), read_only=not write)
                break
            except duckdb.Error as exc:  # IOException on lock conflicts
                text = str(exc)
                if not any(p in text.lower() for p in _LOCK_PATTERNS):
                    raise StoreError(
                        f"cannot open store {path}: {text.splitlines()[0]}",
                        hint="check the path; if the file is damaged, restore it from a backup",
                    ) from exc
                if time.monotonic() >= deadline:
                    pid = _holder_pid(text)
                    who = f"process {pid}" if pid else "another process"
                    raise StoreBusyError(
                        f"store {path} is locked by {who}",
                        hint="DuckDB allows one writer per file: wait for that command to finish, "
                        "or if it is `toolctl serve`, send data to it over HTTP",
                    ) from exc
                time.sleep(delay)
                delay = min(delay * 2, 0.5)
        store = cls(conn, path, read_only=not write)
        try:
            store._configure()
            if write:
                store.migrate()
            else:
                store._check_readable_schema()
        except BaseException:
            conn.close()  # a refused store must not stay open (and locked) in this process
            raise
        return store

    @classmethod
    def scratch(cls) -> "Store":
        """An in-memory database without the schema, its session set up as the store's
        connections are (``_configure``): for SQL that reads no table of the store, in a
        process that must not open the store file (the collector's decoding workers)."""
        import duckdb

        store = cls(duckdb.connect(":memory:"), None, read_only=False)
        store._configure()
        return store

    def _configure(self) -> None:
        # Timestamps are stored as naive UTC; make every conversion in SQL agree.
        self.conn.execute("SET TimeZone = 'UTC'")
        if profile.LEVEL >= 2:  # TOOLCTL_PROFILE=2: DuckDB keeps each query's operator profile
            self.conn.execute("SET enable_profiling = 'no_output'")

    @contextmanager
    def bulk_load(self) -> Iterator["Store"]:
        """Checkpoint less often while a bulk load runs (``toolctl ingest``).

        DuckDB checkpoints when its WAL passes ``checkpoint_threshold`` (16 MB by default),
        i.e. after almost every 16 MiB ingest batch, and each checkpoint rewrites the
        table's last, partly filled row group and the indexes touched since the previous
        one, so their cost grows with the store. At 256 MB (SPACE_CHECKPOINTS_SQL) a 1M-event
        ingest ran ~20% faster for ~+80 MiB (benchmarks/RESULTS.md). Durability does not
        change: every commit is in the WAL, which is replayed on the next open after a crash.
        """
        self.space_checkpoints()
        try:
            yield self
        finally:
            self.conn.execute("RESET checkpoint_threshold")

    def space_checkpoints(self) -> None:
        """Checkpoint per 256 MB of WAL from now on (``toolctl serve``).

        For a writer that keeps the store open: on a 10M-event store a checkpoint costs
        ~1.5 s (the indexes it serializes grow with the store), so at the default 16 MB
        a collector stalls every few seconds. Costs up to that much WAL held in memory and
        replayed on the next open after a crash (benchmarks/writes_at_scale.py).
        """
        self.conn.execute(SPACE_CHECKPOINTS_SQL)

    def companion(self, *, lossless_arrow: bool = False) -> "Store":
        """A second connection to this open database (DuckDB ``cursor()``), for another thread.

        It sees what this connection committed, not its open transaction, and has its own
        temp tables. Ingest parses the next batch on one while the writer stores the
        current batch on this one. ``lossless_arrow``: Arrow results keep DuckDB types
        (JSON stays JSON), so handing them back to this connection costs no re-parse.
        Close it when done; closing this store first cancels its running statement and
        waits for it to be closed.
        """
        other = Store(self.conn.cursor(), self.path, self.read_only)
        other._companion = True
        other._parent = self
        self._open_companions.add(other)
        other._configure()
        if lossless_arrow:  # SESSION: a plain SET of this option changes every connection
            other.conn.execute("SET SESSION arrow_lossless_conversion = true")
        if hasattr(self, "redaction_rules"):
            other.redaction_rules = self.redaction_rules  # type: ignore[attr-defined]
        return other

    def close(self) -> None:
        if self._open_companions:
            self._stop_companions()
        self.conn.close()
        if self._companion:
            if self._parent is not None:
                self._parent._open_companions.discard(self)
        else:
            profile.mark("store closed")

    def _stop_companions(self, wait_seconds: float = 10.0) -> None:
        """Cancel what companions still run (an error stopped their consumer) and wait for them.

        DuckDB refuses to close a connection while one of its cursors runs a statement
        ("connection is busy"), which would replace the error being raised with its own.
        A companion's thread closes it once its statement is interrupted.
        """
        deadline = time.monotonic() + wait_seconds
        while self._open_companions and time.monotonic() < deadline:
            for other in list(self._open_companions):
                try:
                    other.conn.interrupt()
                except Exception:  # already closed by its thread in the meantime
                    pass
            time.sleep(0.01)

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- schema ----------------------------------------------------------------------------
    def schema_version(self) -> int:
        exists = self.scalar(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_migrations'"
        )
        if not exists:
            return 0
        return self.scalar("SELECT coalesce(max(version), 0) FROM schema_migrations")

    def migrate(self) -> list[str]:
        """Apply pending migrations, each with its bookkeeping row in one transaction."""
        self.conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, applied_at TIMESTAMP NOT NULL)"
        )
        current = self.schema_version()
        latest = latest_schema_version()
        if current > latest:
            raise SchemaVersionError(
                f"store {self.path} has schema version {current}; this toolctl knows up to {latest}",
                hint="upgrade toolctl (pip install -U toolctl)",
            )
        applied = []
        for version, name, sql in migrations():
            if version <= current:
                continue
            with self.transaction():
                self.conn.execute(sql)
                self.conn.execute(
                    "INSERT INTO schema_migrations VALUES (?, ?, now()::TIMESTAMP)", [version, name]
                )
            applied.append(f"{version:04d}_{name}")
        if current and LEDGER_MIGRATION in applied:
            # Rows stored before the ledger existed are adopted now (their digests in an
            # `adopt` entry), not at the next write: `audit verify` right after an upgrade
            # (`db migrate`, `db backup`, `db vacuum`) must vouch for them, not call them forged.
            from toolctl.audit import ledger

            with self.transaction():
                ledger.ensure_started(self)
        return applied

    def _check_readable_schema(self) -> None:
        current = self.schema_version()
        latest = latest_schema_version()
        if current == latest:
            return
        if current > latest:
            raise SchemaVersionError(
                f"store {self.path} has schema version {current}; this toolctl knows up to {latest}",
                hint="upgrade toolctl (pip install -U toolctl)",
            )
        raise SchemaVersionError(
            f"store {self.path} has schema version {current}, older than this toolctl's {latest}",
            hint="run `toolctl db migrate` (any write, e.g. `toolctl ingest`, also migrates it)",
        )

    # -- queries ---------------------------------------------------------------------------
    def fetch_dicts(self, sql: str, params: dict[str, Any] | Sequence[Any] | None = None) -> list[dict]:
        """Run one statement with bound parameters and return its rows as dicts."""
        if profile.ENABLED:
            return profile.query(sql, lambda: self._fetch_dicts(sql, params), explain=self._explain)
        return self._fetch_dicts(sql, params)

    def _fetch_dicts(self, sql: str, params: Any) -> list[dict]:
        cur = self.conn.execute(sql, params) if params is not None else self.conn.execute(sql)
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, row)) for row in cur.fetchall()]

    def _explain(self) -> str | None:
        """DuckDB's operator profile of the statement just run (TOOLCTL_PROFILE=2)."""
        try:
            doc = self.conn.get_profiling_information(format="json")
        except Exception:  # profiling unavailable for this statement: the timeline still stands
            return None
        return profile.summarize_duckdb_profile(doc)

    def fetch_arrow(self, sql: str, params: dict[str, Any] | None = None) -> Any:
        """Run one statement with bound parameters and return its rows as an Arrow table.

        Through a relation, not a DB-API result: DuckDB hands Arrow over without a copy.
        """
        def run() -> Any:
            return self.conn.sql(sql, params=params).to_arrow_table()
        if profile.ENABLED:
            return profile.query(sql, run, rows_of=lambda t: t.num_rows, explain=self._explain)
        return run()

    def row(self, sql: str, params: Any = None) -> tuple | None:
        """The first row of a statement (the result is drained: DuckDB 2 requires it)."""
        if profile.ENABLED:
            rows = profile.query(sql, lambda: self._run(sql, params).fetchall(), explain=self._explain)
        else:
            rows = self._run(sql, params).fetchall()
        return rows[0] if rows else None

    def scalar(self, sql: str, params: Any = None) -> Any:
        row = self.row(sql, params)
        return row[0] if row else None

    def execute(self, sql: str, params: Any = None) -> Any:
        if profile.ENABLED:  # DuckDB runs the statement in execute(); fetching is cheap after
            return profile.query(sql, lambda: self._run(sql, params), rows_of=lambda _: None,
                                 explain=self._explain)
        return self._run(sql, params)

    def _run(self, sql: str, params: Any) -> Any:
        return self.conn.execute(sql, params) if params is not None else self.conn.execute(sql)


def quote_ident(name: str, allowed: Iterable[str]) -> str:
    """Quote an SQL identifier that must come from ``allowed`` (never from user text as is)."""
    if name not in set(allowed):
        raise ValueError(f"identifier {name!r} is not allowed here")
    return '"' + name.replace('"', '""') + '"'
