"""The Parquet lake as query sources: layout check, partition pruning, the tables' schema.

Layout (docs/engines.md, written by `toolctl serve --lake` / `toolctl lake export`):

    DIR/_toolctl_lake.json                                   {"format": "toolctl-lake", "version": 1}
    DIR/events/dt=YYYY-MM-DD/hour=HH/<writer>-<seq>.parquet  the store's `events` columns
    DIR/spans/dt=YYYY-MM-DD/hour=HH/<writer>-<seq>.parquet   the store's `spans` columns

Files or directories whose name starts with '.' or '_' are not data (temp files, markers).
The column names and types are read from the store's migrations, so the lake views have
exactly the store's schema whatever a writer's Parquet types were (JSON columns as VARCHAR).
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from pathlib import Path

from toolctl.errors import UsageError

LAKE_FORMAT = "toolctl-lake"
LAKE_VERSIONS = (1,)
DATASETS = ("events", "spans")
#: The auth walk from a signalling span up to its ancestors, unrolled to this many levels (Spark
#: 3.5 has no recursive CTE). A tool span more than this many levels above the span that
#: signals the failure would not count it; real agent traces are a handful of levels deep.
AUTH_WALK_DEPTH = 16

_PART = re.compile(r"dt=(\d{4}-\d{2}-\d{2})")
_HOUR = re.compile(r"hour=(\d{2})")


def check_lake(path: str | Path) -> Path:
    """The lake directory, after checking its marker file. Raises UsageError otherwise."""
    root = Path(path).expanduser()
    marker = root / "_toolctl_lake.json"
    if not root.is_dir():
        raise UsageError(f"lake directory {root} does not exist",
                         hint="pass the DIR a `toolctl serve --lake DIR` or `toolctl lake export DIR` wrote")
    try:
        meta = json.loads(marker.read_text("utf-8"))
    except (OSError, ValueError):
        raise UsageError(f"{root} is not a toolctl lake: {marker.name} is missing or not JSON",
                         hint="pass the DIR a `toolctl serve --lake DIR` or `toolctl lake export DIR` wrote") from None
    if not isinstance(meta, dict) or meta.get("format") != LAKE_FORMAT or meta.get("version") not in LAKE_VERSIONS:
        raise UsageError(f"{marker} does not describe a toolctl lake this version reads: {meta!r}",
                         hint=f"expected format {LAKE_FORMAT!r}, version in {list(LAKE_VERSIONS)}; upgrade toolctl")
    return root


def _naive_utc(t: datetime | None) -> datetime | None:
    if t is not None and t.tzinfo is not None:
        t = t.astimezone(timezone.utc).replace(tzinfo=None)
    return t


def list_files(root: Path, dataset: str, since: datetime | None = None,
               until: datetime | None = None) -> list[str]:
    """Data files of one dataset whose hour partition meets [since, until), sorted.

    Pruning is on the directory names alone: an hour partition dt=D/hour=H holds rows with
    D H:00 <= ts < D H:00 + 1h, so a partition outside the window is never opened.
    """
    since, until = _naive_utc(since), _naive_utc(until)
    base = root / dataset
    if not base.is_dir():
        return []
    out = []
    for dt_dir in base.iterdir():
        m = _PART.fullmatch(dt_dir.name)
        if not m or not dt_dir.is_dir():
            continue
        day = datetime.strptime(m.group(1), "%Y-%m-%d")
        if until is not None and day >= until or since is not None and day + timedelta(days=1) <= since:
            continue
        for hour_dir in dt_dir.iterdir():
            h = _HOUR.fullmatch(hour_dir.name)
            if not h or not hour_dir.is_dir():
                continue
            start = day + timedelta(hours=int(h.group(1)))
            if until is not None and start >= until or since is not None and start + timedelta(hours=1) <= since:
                continue
            out.extend(str(f) for f in hour_dir.iterdir()
                       if f.suffix == ".parquet" and not f.name.startswith((".", "_")) and f.is_file())
    return sorted(out)


@lru_cache(maxsize=None)
def table_columns(table: str) -> tuple[tuple[str, str], ...]:
    """(column, DuckDB type) of a store table as its migrations define it; JSON → VARCHAR."""
    import sqlglot
    from sqlglot import exp

    from toolctl.store import migrations

    cols: tuple[tuple[str, str], ...] = ()
    for _, _, sql in migrations():
        for stmt in sqlglot.parse(sql, read="duckdb"):
            if isinstance(stmt, exp.Create) and stmt.kind == "TABLE" and stmt.this.this.name == table:
                defs = [c for c in stmt.this.expressions if isinstance(c, exp.ColumnDef)]
                cols = tuple((c.name, "VARCHAR" if c.kind.this == exp.DataType.Type.JSON
                              else c.kind.sql("duckdb")) for c in defs)
    if not cols:
        raise RuntimeError(f"no CREATE TABLE {table} in the migrations")
    return cols


def projection(table: str, source: str, dialect: str, empty: bool = False) -> str:
    """``SELECT CAST(col AS type) AS col, .. FROM source`` in ``dialect`` (names from the migrations).

    ``empty``: no rows and no FROM (a dataset with no file in the window).
    """
    from sqlglot import exp

    import sqlglot

    def col(c: str, t: str):
        if empty:
            # Spark has no nanosecond timestamp: TIMESTAMP_NS is read at microseconds there.
            return exp.cast(exp.Null(), "TIMESTAMP" if dialect == "spark" and t == "TIMESTAMP_NS" else t,
                            dialect="duckdb")
        if dialect == "spark" and t == "TIMESTAMP_NS":
            # Spark reads Parquet TIMESTAMP(NANOS) as epoch ns (spark.sql.legacy.parquet.nanosAsLong)
            e = sqlglot.parse_one("CAST(timestamp_micros(__c DIV 1000) AS TIMESTAMP_NTZ)", read="spark")
            return e.transform(lambda n: exp.column(c) if isinstance(n, exp.Column) and n.name == "__c" else n)
        return exp.cast(exp.column(c), t, dialect="duckdb")

    sel = exp.select(*[exp.alias_(col(c, t), c) for c, t in table_columns(table)])
    sel = sel.where(exp.false()) if empty else sel.from_(source)
    return sel.sql(dialect=dialect)


@lru_cache(maxsize=None)
def tool_calls_tree(depth: int = AUTH_WALK_DEPTH):
    """The latest `tool_calls` view of the migrations, as a DuckDB syntax tree, for the lake.

    Two changes, both mechanical: recursive CTEs are unrolled to ``depth`` levels, and the
    CTEs (the auth walk) read `spans_all` (every span file) while the outer query reads
    `spans` (the files of the query window): a signalling child span may lie outside it.
    """
    import sqlglot
    from sqlglot import exp

    from toolctl.engines.transpile import unroll_recursive
    from toolctl.store import migrations

    view = None
    for _, _, sql in migrations():
        for stmt in sqlglot.parse(sql, read="duckdb"):
            if isinstance(stmt, exp.Create) and stmt.kind == "VIEW" and stmt.this.name == "tool_calls":
                view = stmt.expression
    if view is None:
        raise RuntimeError("no CREATE VIEW tool_calls in the migrations")
    tree = unroll_recursive(view.copy(), depth)
    with_ = tree.args.get("with_") or tree.args.get("with")
    for cte in (with_.expressions if with_ else []):
        for t in cte.find_all(exp.Table):
            if t.name == "spans":
                t.set("this", exp.to_identifier("spans_all"))
    return tree
