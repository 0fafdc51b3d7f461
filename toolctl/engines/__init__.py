"""Query engines over the Parquet lake: DuckDB on one machine, Apache Spark on a cluster.

``open_source(engine, lake)`` returns a read-only source with the Store's query interface
(``fetch_dicts``, ``row``, ``scalar``, ``execute(..).fetchnumpy()``, ``read_only``), so the
library functions that compute the figures (metrics.stats, gate.data, audit.lookups,
gate.baselines) run unchanged on it: the same SQL text, with the same parameters.

* ``duckdb``: an in-memory DuckDB reading the lake's Parquet files;
* ``spark``: a SparkSession (``--spark-master``, default ``local[*]``), the SQL transpiled by
  toolctl.engines.transpile.

Both register views ``events``, ``spans``, ``rejects`` (empty: rejected lines stay in the
store) and ``tool_calls`` (the migrations' definition; on Spark, which has no recursive CTE,
its auth walk is computed once per source, SparkLake._define_tool_calls). Before each
statement the views are pointed at the files of the statement's window (its
``since``/``until`` parameters): partitions outside it are not read, but for the auth walk's
``spans_all`` and, when the window holds spans, ``events_all`` (the JSON lines that may name
them, within NAMING_MARGIN of the window).
Which files are data is toolctl.lake.layout's definition, the one `lake ls/compact/verify` use.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
from abc import ABC, abstractmethod
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Mapping

from toolctl.errors import PrerequisiteError, UsageError

ENGINES = ("duckdb", "spark")
DEFAULT_SPARK_MASTER = "local[*]"


def spark_master_default() -> str:
    """``$TOOLCTL_SPARK_MASTER`` or ``local[*]``."""
    return os.environ.get("TOOLCTL_SPARK_MASTER") or DEFAULT_SPARK_MASTER


def _window(params: Mapping[str, Any] | None) -> tuple[datetime | None, datetime | None]:
    if not isinstance(params, Mapping):
        return None, None
    since, until = params.get("since"), params.get("until")
    return (since if isinstance(since, datetime) else None,
            until if isinstance(until, datetime) else None)


class Result:
    """Rows of one statement, drained: ``fetchall`` / ``fetchnumpy`` like a DuckDB result.

    Built from rows (DuckDB) or from an Arrow table (Spark, collected through Arrow): then
    ``fetchnumpy`` hands the columns over without making a Python object per value.
    """

    def __init__(self, columns: list[str], rows: list[tuple] | None = None, arrow: Any = None):
        self.description = [(c,) for c in columns]
        self._rows = rows
        self._arrow = arrow

    @classmethod
    def from_arrow(cls, table: Any) -> "Result":
        return cls(list(table.column_names), arrow=table)

    def fetchall(self) -> list[tuple]:
        if self._rows is None:
            self._rows = list(zip(*(_py_values(c) for c in self._arrow.columns)))
        return list(self._rows)

    def fetchnumpy(self) -> dict:
        import numpy as np

        if self._arrow is not None:
            return {name: col.to_numpy() for name, col in zip(self._arrow.column_names, self._arrow.columns)}
        return {c[0]: np.array([r[i] for r in self._rows]) for i, c in enumerate(self.description)}


def _py_values(column: Any) -> list:
    """An Arrow column as the Python values DuckDB returns (structs as dicts, lists as lists);
    a time-zone-aware timestamp (Spark's TIMESTAMP, UTC session) as naive UTC, like the store's."""
    import pyarrow as pa

    if pa.types.is_timestamp(column.type) and column.type.tz is not None:
        column = column.cast(pa.timestamp(column.type.unit))
    return column.to_pylist()


#: How far outside a query window a lake looks for the JSON line that names one of the
#: window's tool spans (migration 0007). The line and the span record the same attempt, moments
#: apart (clock skew between a gateway's log and its tracer); reading every event file instead
#: would make each windowed query over a lake with spans scan the lake's whole history.
NAMING_MARGIN = timedelta(hours=1)


def _widen(bound: datetime | None, by: timedelta) -> datetime | None:
    """A window bound moved by ``by``; None (open) past the years a datetime holds."""
    if bound is None:
        return None
    try:
        return bound + by
    except OverflowError:
        return None


#: The views a lake source defines (identifiers in SQL text come from this list only).
LAKE_VIEWS = ("events", "events_all", "spans", "spans_all", "rejects")


def _view(name: str) -> str:
    """``name`` if it is one of LAKE_VIEWS (plain identifiers, valid in both dialects)."""
    if name not in LAKE_VIEWS:
        raise ValueError(f"not a lake view: {name!r}")
    return name


class LakeSource(ABC):
    """A read-only query source over a lake (subclasses: one per engine)."""

    read_only = True
    engine = ""
    #: The view of the event files that may name a tool span of the window (the window widened
    #: by NAMING_MARGIN): the audit queries read those JSON lines from it (toolctl.audit.lookups;
    #: on the store, `events`).
    all_events = "events_all"

    def __init__(self, root: Path):
        from toolctl.lake.layout import open_lake

        self.root = Path(root).expanduser()
        open_lake(self.root, create=False)  # UsageError / LakeError: not a lake this toolctl reads
        self._window: tuple | None = None
        self.files_read: dict[str, int] = {}  # dataset → files behind its view, last statement

    # -- the Store query interface ---------------------------------------------------------
    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> Result:
        self._point_views(*_window(params))
        return self._run(sql, dict(params or {}))

    def fetch_dicts(self, sql: str, params: Mapping[str, Any] | None = None) -> list[dict]:
        res = self.execute(sql, params)
        cols = [d[0] for d in res.description]
        return [dict(zip(cols, r)) for r in res.fetchall()]

    def row(self, sql: str, params: Any = None) -> tuple | None:
        rows = self.execute(sql, params).fetchall()
        return rows[0] if rows else None

    def scalar(self, sql: str, params: Any = None) -> Any:
        row = self.row(sql, params)
        return row[0] if row else None

    def __enter__(self) -> "LakeSource":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        pass

    # -- views -----------------------------------------------------------------------------
    def _files(self, dataset: str, since: datetime | None = None, until: datetime | None = None) -> list[str]:
        """The dataset's data files in the window's partitions, as the lake's layout defines
        them (a stray or temporary name in a partition is not data), absolute paths."""
        from toolctl.lake.layout import list_files

        return [str(self.root / f.path) for f in list_files(self.root, dataset, since=since, until=until)]

    def _point_views(self, since: datetime | None, until: datetime | None) -> None:
        if self._window == (since, until):
            return
        if self._window is None:
            self._define("spans_all", "spans", self._files("spans"))
            self._define("rejects", "rejects", [])
        files = {d: self._files(d, since, until) for d in ("events", "spans")}
        for d, fs in files.items():
            self._define(d, d, fs)
        # A JSON line naming a tool span of the window leaves it out (migration 0007): the event
        # files of the window widened by NAMING_MARGIN, read only when the window holds spans.
        if since is None and until is None:
            naming = files["events"]
        elif files["spans"]:
            naming = self._files("events", _widen(since, -NAMING_MARGIN), _widen(until, NAMING_MARGIN))
        else:
            naming = []
        self._define(self.all_events, "events", naming)
        if self._window is None:
            self._define_tool_calls()
        self.files_read = {d: len(fs) for d, fs in files.items()}
        self._window = (since, until)

    @abstractmethod
    def _define(self, view: str, table: str, files: list[str]) -> None:
        """Define ``view`` over ``files`` of the lake dataset ``table``."""

    @abstractmethod
    def _define_tool_calls(self) -> None:
        """Define the tool_calls view over the lake views."""

    @abstractmethod
    def _run(self, sql: str, params: dict) -> Result:
        """Run one statement with bound parameters."""


class DuckDBLake(LakeSource):
    """The lake read by an in-memory DuckDB (one machine; the store's SQL as is)."""

    engine = "duckdb"

    def __init__(self, root: Path):
        import duckdb

        super().__init__(root)
        self.conn = duckdb.connect(":memory:")
        self.conn.execute("SET TimeZone = 'UTC'")

    def _define(self, view: str, table: str, files: list[str]) -> None:
        import duckdb

        from toolctl.engines.lake import projection

        if files:
            # The file list goes in as a value (a relation), never as SQL text.
            raw = f"_{view}_files"
            try:
                self.conn.read_parquet(files, union_by_name=True).create_view(raw, replace=True)
            except duckdb.Error as exc:  # reading the footers: only the files can be at fault
                raise self._damaged(exc, files) from None
            sql = projection(table, raw, "duckdb")
        else:
            sql = projection(table, "", "duckdb", empty=True)
        self.conn.execute("CREATE OR REPLACE TEMP VIEW " + _view(view) + " AS " + sql)

    def _define_tool_calls(self) -> None:
        from toolctl.engines.lake import tool_calls_tree

        self.conn.execute("CREATE OR REPLACE TEMP VIEW tool_calls AS " + tool_calls_tree().sql("duckdb"))

    def _run(self, sql: str, params: dict) -> Result:
        import duckdb

        try:
            cur = self.conn.execute(sql, params) if params else self.conn.execute(sql)
            return Result([d[0] for d in cur.description], cur.fetchall())
        except (duckdb.IOException, duckdb.InvalidInputException) as exc:
            raise self._damaged(exc, []) from None
        except duckdb.Error as exc:
            if type(exc) is not duckdb.Error:  # a binder or parser error is a bug: let it show
                raise
            raise self._damaged(exc, []) from None  # undecodable metadata ("don't know what type")

    def _damaged(self, exc: Exception, files: list[str]) -> Exception:
        """DuckDB's error reading a lake file as a LakeFileError naming the file: taken from
        the message, else found by opening the candidates one by one."""
        import duckdb

        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        m = re.search(r"""(['"])([^'"]+?\.parquet)\1""", detail)
        bad = m[2] if m else None
        if m:
            detail = (detail[:m.start()] + detail[m.end():]).replace(" : ", ": ").rstrip(" :")
        else:
            for f in files:
                try:
                    self.conn.read_parquet([f])
                except duckdb.Error:
                    bad = f
                    break
        detail = re.sub(r"^[A-Za-z ]*Error: ", "", detail)  # "Invalid Input Error: …"
        return _lake_file_error(self.root, bad, detail or type(exc).__name__)

    def close(self) -> None:
        self.conn.close()


def _lake_file_error(root: Path, bad: str | None, detail: str) -> Exception:
    """The one error for a lake file an engine cannot read: LakeFileError naming it (exit 4)."""
    from toolctl.errors import LakeFileError

    # Bytes of the damaged file can end up in the message ("don't know what type: \x0f").
    detail = "".join(c for c in detail if c.isprintable()).strip().rstrip(" :") or "unreadable"
    what = f"lake file {bad}" if bad else f"a file of the lake {root}"
    return LakeFileError(f"cannot read {what}: {detail}",
                         hint=f"check the lake with `toolctl audit verify --lake {shlex.quote(str(root))}`; restore "
                              "the file from a copy, or move it out of the lake to read the rest")


_SPARK: dict[str, Any] = {}


def java_runtime() -> str | None:
    """The java executable Spark's launcher (bin/spark-class) will run, or None if it is not there.

    spark-class runs ``$JAVA_HOME/bin/java`` whenever JAVA_HOME is set (a ``java`` on PATH is
    then not consulted), else ``java`` on PATH; this mirrors that choice.
    """
    home = os.environ.get("JAVA_HOME")
    if home:
        java = Path(home) / "bin" / "java"
        return str(java) if java.is_file() and os.access(java, os.X_OK) else None
    return shutil.which("java")


def spark_session(master: str | None = None):
    """The process's SparkSession (created once; UTC session time zone).

    Raises PrerequisiteError when pyspark is not installed, no Java runtime is reachable, or
    the JVM (Spark's gateway) exits before it is ready; nothing else is caught.
    """
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise PrerequisiteError("--engine spark needs pyspark, which is not installed",
                                hint="pip install 'toolctl[spark]' (and Java 17)") from None

    master = master or spark_master_default()
    if master in _SPARK:
        return _SPARK[master]
    java = java_runtime()
    if java is None:
        home = os.environ.get("JAVA_HOME")
        where = (f"JAVA_HOME is {home}, which has no bin/java" if home
                 else "JAVA_HOME is not set and there is no `java` on PATH")
        # Checked before the launch: without Java, pyspark fails with a 60-line traceback.
        raise PrerequisiteError(f"--engine spark needs a Java runtime: {where}",
                                hint="install Java 17 and set JAVA_HOME to it (or put its `java` on PATH)")
    b = (SparkSession.builder.master(master).appName("toolctl")
         .config("spark.sql.session.timeZone", "UTC")
         .config("spark.ui.enabled", "false")
         .config("spark.ui.showConsoleProgress", "false")  # stderr stays readable
         .config("spark.sql.ansi.enabled", "false")
         .config("spark.sql.execution.arrow.pyspark.enabled", "true")  # results come back as Arrow
         # spans.start_time is Parquet TIMESTAMP(NANOS), which Spark 3.5 reads only as a long.
         .config("spark.sql.legacy.parquet.nanosAsLong", "true"))
    if master.startswith("local"):
        # A laptop: few cores, so few shuffle partitions; a cluster keeps its own defaults.
        b = (b.config("spark.sql.shuffle.partitions", str(max(2, 2 * (os.cpu_count() or 1))))
             .config("spark.driver.memory", os.environ.get("TOOLCTL_SPARK_DRIVER_MEMORY", "2g")))
    try:
        session = b.getOrCreate()
    except Exception as exc:
        if _error_class(exc) != "JAVA_GATEWAY_EXITED":
            raise
        raise PrerequisiteError(f"--engine spark could not start Java ({java}): Spark's gateway exited "
                                "before it was ready", hint=f"run `{java} -version` (Java 17 is the tested "
                                "runtime); Java's own message, if any, is above") from None
    session.sparkContext.setLogLevel("ERROR")
    _SPARK[master] = session
    return session


def _error_class(exc: BaseException) -> str | None:
    """The error class of a PySparkException (pyspark >= 3.4), else None."""
    get = getattr(exc, "getErrorClass", None)
    return get() if callable(get) else None


class SparkLake(LakeSource):
    """The lake read by Apache Spark; each statement transpiled from the DuckDB text."""

    engine = "spark"

    def __init__(self, root: Path, master: str | None = None):
        super().__init__(root)
        self.spark = spark_session(master)  # PrerequisiteError: no pyspark or no Java
        self._known_files: set[str] = set()  # every data file behind a view: to name a damaged one

    def _define(self, view: str, table: str, files: list[str]) -> None:
        from toolctl.engines.lake import projection

        if files:
            raw = f"_{view}_files"
            uris = [_file_uri(f) for f in files]
            self._known_files.update(files)
            try:  # reads a footer for the schema
                self.spark.read.parquet(*uris).createOrReplaceTempView(raw)  # v1: one schema
            except Exception as exc:
                raise self._damaged(exc) from None
            sql = projection(table, raw, "spark")
        else:
            sql = projection(table, "", "spark", empty=True)
        self.spark.sql("CREATE OR REPLACE TEMP VIEW " + _view(view) + " AS " + sql)

    def _define_tool_calls(self) -> None:
        """tool_calls over its CTEs (the auth walk), each computed once, here: Spark 3.5 has no
        recursive CTE, and a walk unrolled to a fixed depth inlined into every statement cost
        seconds of planning per reference (~20 s per `stats` on a tiny lake, on 2 cores).

        Spark selects each plain CTE (the auth family: every span of a trace that holds an
        auth signal, four short columns) and hands it to the driver as Arrow; DuckDB runs each
        recursive CTE over those, with the migrations' own text, so the walk is the store's,
        exact to any depth and ending on a cycle of parent links. The CTEs the view reads
        become Spark temp views of those rows (the walk's result: the signalling spans'
        ancestors, joined to the spans as a small table)."""
        import duckdb
        from sqlglot import exp

        from toolctl.engines.lake import tool_calls_tree
        from toolctl.engines.transpile import rewrite_for_spark, split_ctes

        ctes, query = split_ctes(tool_calls_tree())
        read_by_view = {t.name for t in query.find_all(exp.Table)}
        walk = duckdb.connect(":memory:")
        try:
            for name, cols, base, step in ctes:
                if step is None:
                    df = self.spark.sql(rewrite_for_spark(base.copy(), {}).sql("spark"))
                    table = _collect_arrow(df.toDF(*cols) if cols else df)
                else:
                    alias = f"{name}({', '.join(cols)})" if cols else name
                    rounds = exp.select("*").from_(name).with_(
                        alias, as_=exp.union(base.copy(), step.copy(), distinct=True), recursive=True)
                    table = walk.sql(rounds.sql("duckdb")).to_arrow_table()
                walk.register(name, table)
                if name in read_by_view:
                    self._temp_view(name, table)
        except Exception as exc:  # a damaged span file, read here for the first time
            raise self._damaged(exc) from None
        finally:
            walk.close()
        self.spark.sql("CREATE OR REPLACE TEMP VIEW tool_calls AS "
                       + rewrite_for_spark(query, {}).sql("spark"))

    def _temp_view(self, name: str, table: Any) -> None:
        """A Spark temp view ``name`` (a name from the migrations) of an Arrow table's rows."""
        import pyarrow as pa

        spark_types = {pa.string(): "STRING", pa.large_string(): "STRING", pa.bool_(): "BOOLEAN"}
        schema = ", ".join(f"`{f.name}` {spark_types[f.type]}" for f in table.schema)
        rows = list(zip(*(c.to_pylist() for c in table.columns)))
        self.spark.createDataFrame(rows, schema).createOrReplaceTempView(name)

    def _run(self, sql: str, params: dict) -> Result:
        from toolctl.engines.transpile import to_spark

        df = self.spark.sql(to_spark(sql, params))
        try:
            return Result.from_arrow(_collect_arrow(df))
        except Exception as exc:  # a task failed: py4j's Py4JJavaError, pyspark's SparkException
            raise self._damaged(exc) from None

    def _damaged(self, exc: Exception) -> Exception:
        """A Spark failure that names one of the lake's files as LakeFileError (its message:
        the Java exception's line about the file), or a Parquet failure naming none whose file
        is found by reading the footers; any other failure as it was."""
        text = str(exc)
        for f in sorted(self._known_files):
            at = text.find(Path(f).absolute().as_posix())
            if at < 0:
                continue
            line = text[at:].splitlines()[0][len(Path(f).absolute().as_posix()):]
            return _lake_file_error(self.root, f, line.strip().lstrip(":").strip())
        if "org.apache.parquet" not in text:
            return exc
        # A Parquet reader failure naming no file (scrambled footer metadata: "can not read
        # class org.apache.parquet.format.FileMetaData: …"): the file whose footer does not read.
        import pyarrow.parquet as pq

        for f in sorted(self._known_files):
            try:
                pq.read_metadata(f)
            except Exception as bad:  # noqa: BLE001 (pyarrow raises OSError, ArrowInvalid, …)
                return _lake_file_error(self.root, f, str(bad).strip().splitlines()[0] if str(bad).strip()
                                        else type(bad).__name__)
        return exc


def _file_uri(path: str) -> str:
    """``file://`` + the absolute path, for Spark: toolctl listed the file on a local (or mounted)
    directory, and a bare path would be resolved against the cluster's default filesystem
    (``fs.defaultFS``, often HDFS). Not ``Path.as_uri()``: Hadoop takes the string as a path
    and would read its percent-escapes (``dt%3D…``) literally.

    Spark expands a path holding ``{}[]*?\\`` as a glob: those are escaped with a backslash
    (Hadoop's glob escape), so a lake under ``/data/lake[1]`` is read as named."""
    return "file://" + _GLOB_CHARS.sub(r"\\\g<0>", Path(path).absolute().as_posix())


#: Characters Hadoop's glob reads as pattern (Spark globs any path that holds one).
_GLOB_CHARS = re.compile(r"[{}\[\]*?\\]")


def _collect_arrow(df: Any) -> Any:
    """The rows of a Spark DataFrame as one Arrow table, sent to the driver as Arrow batches
    (``collect()`` would make a Row object per row, e.g. per latency of a gate arm)."""
    import pyarrow as pa

    if hasattr(df, "toArrow"):  # pyspark >= 4.0
        return df.toArrow()
    from pyspark.sql.pandas.types import to_arrow_schema

    batches = df._collect_as_arrow()  # what toPandas() uses in 3.5, without pandas
    return pa.Table.from_batches(batches) if batches else to_arrow_schema(df.schema).empty_table()


def open_source(engine: str, lake: str | Path, spark_master: str | None = None) -> LakeSource:
    """A read-only source over ``lake`` for ``engine`` (duckdb | spark). UsageError if unknown."""
    if engine not in ENGINES:
        raise UsageError(f"unknown engine {engine!r}", hint="--engine takes duckdb or spark")
    if engine == "duckdb":
        return DuckDBLake(Path(lake))
    return SparkLake(Path(lake), spark_master)
