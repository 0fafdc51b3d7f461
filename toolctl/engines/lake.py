"""The lake's tables as the engines see them: the store's schema and the tool_calls view.

What a lake is and which files are its data (marker, partitions, file names, pruning by
hour) is defined once, in toolctl.lake.layout (docs/lake.md); this module only says how the
engines read those files: the column names and types come from the store's migrations, so the
lake views have exactly the store's schema whatever a writer's Parquet types were (JSON
columns as VARCHAR), and the tool_calls view is the migrations' one.
"""

from __future__ import annotations

from functools import lru_cache

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
def tool_calls_tree():
    """The latest `tool_calls` view of the migrations, as a DuckDB syntax tree, for the lake.

    Two changes, both mechanical: the CTEs (the recursive auth walk) read `spans_all` (every
    span file) while the outer query reads `spans` (the files of the query window): a
    signalling child span may lie outside it; and the anti join that leaves out a tool span
    named by a JSON line (migration 0007) reads `events_all`: the line may lie outside the
    window (its time is the attempt's).
    """
    import sqlglot
    from sqlglot import exp

    from toolctl.store import migrations

    view = None
    for _, _, sql in migrations():
        for stmt in sqlglot.parse(sql, read="duckdb"):
            if isinstance(stmt, exp.Create) and stmt.kind == "VIEW" and stmt.this.name == "tool_calls":
                view = stmt.expression
    if view is None:
        raise RuntimeError("no CREATE VIEW tool_calls in the migrations")
    tree = view.copy()
    with_ = tree.args.get("with_") or tree.args.get("with")
    for cte in (with_.expressions if with_ else []):
        for t in cte.find_all(exp.Table):
            if t.name == "spans":
                t.set("this", exp.to_identifier("spans_all"))
    for join in tree.find_all(exp.Join):
        if join.args.get("kind") == "ANTI" and isinstance(join.this, exp.Table) and join.this.name == "events":
            join.this.set("this", exp.to_identifier("events_all"))
    return tree
