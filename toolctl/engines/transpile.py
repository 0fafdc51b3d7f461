"""DuckDB SQL → Spark SQL at run time: sqlglot plus a small set of tested rewrites.

The figure definitions live once, as DuckDB SQL (toolctl/metrics/queries, toolctl/gate/queries,
toolctl/audit/queries, the tool_calls view of the migrations). Spark runs the same text after:

* parameters (``$name``) bound as typed literals in the syntax tree (never pasted as text);
* ``quantile_cont(x, [..])`` → Spark's exact ``percentile(x, array(..))`` (both interpolate
  linearly between the two closest ranks);
* ``time_bucket(INTERVAL, ts)`` → epoch-microsecond arithmetic with DuckDB's origin
  (2000-01-03 00:00:00, a Monday) so the buckets are the same;
* ``arg_max(v, (k1, k2, ..))`` → ``max_by(v, struct(k1, k2, ..))`` (field-by-field order);
* ``list(x ORDER BY x)`` → ``sort_array(collect_list(x))``;
* ``strftime(ts, '%Y-..')`` → ``date_format(ts, 'yyyy-..')`` with literal text quoted;
* ``epoch_us(ts)`` → ``unix_micros(ts)`` (session time zone UTC);
* ``json_valid(x)`` → ``get_json_object(x, '$') IS NOT NULL`` (NULL exactly for non-JSON);
* a recursive CTE: Spark 3.5 has none, so ``split_ctes`` hands the view's CTEs to the Spark
  engine, which computes them once per source (the recursive one by DuckDB on the driver, over
  the rows Spark selected: toolctl.engines.SparkLake._define_tool_calls).

sqlglot itself handles the rest (casts, FILTER, IS NOT DISTINCT FROM, 1-based list indexes,
struct literals, list_contains, integer division).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any, Mapping

from toolctl.errors import UsageError

#: DuckDB's time_bucket origin for sub-month widths (microseconds since the epoch).
TIME_BUCKET_ORIGIN_US = 946857600 * 1_000_000  # 2000-01-03T00:00:00Z

#: strftime directives the figure queries use → Java DateTimeFormatter letters.
_STRFTIME_TO_JAVA = {"%Y": "yyyy", "%m": "MM", "%d": "dd", "%H": "HH", "%M": "mm", "%S": "ss",
                     "%f": "SSSSSS", "%%": "%"}


def _exp():
    from sqlglot import exp

    return exp


def literal(value: Any):
    """A Python parameter value as a sqlglot literal expression (typed, quoted by sqlglot)."""
    exp = _exp()
    if value is None:
        return exp.Null()
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, (int, float)):
        return exp.Literal.number(repr(value) if isinstance(value, float) else str(value))
    if isinstance(value, str):
        return exp.Literal.string(value)
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            from datetime import timezone

            value = value.astimezone(timezone.utc).replace(tzinfo=None)
        return exp.cast(exp.Literal.string(value.isoformat(sep=" ")), "TIMESTAMP")
    if isinstance(value, date):
        return exp.cast(exp.Literal.string(value.isoformat()), "DATE")
    if isinstance(value, (list, tuple)):
        return exp.Array(expressions=[literal(v) for v in value])
    if isinstance(value, timedelta):
        micros = (value.days * 86400 + value.seconds) * 1_000_000 + value.microseconds
        return exp.Interval(this=exp.Literal.string(str(micros)), unit=exp.var("MICROSECOND"))
    raise TypeError(f"cannot bind a {type(value).__name__} as an SQL literal")


def _param_name(node) -> str | None:
    exp = _exp()
    while isinstance(node, exp.Cast):
        node = node.this
    if isinstance(node, exp.Placeholder):
        return node.name
    return None


def bind_params(tree, params: Mapping[str, Any]):
    """Replace every ``$name`` placeholder with the literal of ``params[name]``."""
    exp = _exp()

    def sub(node):
        if isinstance(node, exp.Placeholder):
            if node.name not in params:
                raise KeyError(f"query parameter ${node.name} was not given")
            return literal(params[node.name])
        return node

    return tree.transform(sub)


def _time_bucket(node, params: Mapping[str, Any]):
    """time_bucket($every::INTERVAL, ts) → NULL, or DuckDB's bucket start computed on epoch µs."""
    import sqlglot

    exp = _exp()
    name = _param_name(node.this)
    if name is None:
        raise UsageError("time_bucket needs its width as a query parameter to run on Spark",
                         hint="pass the bucket width as $every")
    width = params.get(name)
    if width is None:
        return exp.cast(exp.Null(), "TIMESTAMP")
    if not isinstance(width, timedelta) or width <= timedelta(0):
        raise UsageError(f"bucket width {width!r} is not a positive duration", hint="use e.g. --every 1h")
    w = (width.days * 86400 + width.seconds) * 1_000_000 + width.microseconds
    # All BIGINT: the start is the time minus its non-negative remainder (pmod) after the
    # origin. floor((µs - origin) / w) in doubles was not exact beyond 2^53 µs (~285 years
    # from 2000): a time a microsecond before a boundary of year 1 or 9999 went to the next
    # bucket.
    tmpl = sqlglot.parse_one(
        "timestamp_micros(unix_micros(CAST(__ts AS TIMESTAMP)) - pmod(unix_micros(CAST(__ts AS TIMESTAMP)) - __o, __w))",
        read="spark")
    repl = {"__ts": node.expression, "__o": exp.Literal.number(TIME_BUCKET_ORIGIN_US),
            "__w": exp.Literal.number(w)}
    return tmpl.transform(lambda n: repl[n.name].copy()
                          if isinstance(n, exp.Column) and n.name in repl else n)


def _strftime_java(fmt: str) -> str:
    out, text, i = [], [], 0

    def flush():
        if text:
            out.append("'" + "".join(text).replace("'", "''") + "'")
            text.clear()

    while i < len(fmt):
        d = fmt[i:i + 2]
        if fmt[i] == "%":
            if d not in _STRFTIME_TO_JAVA:
                raise ValueError(f"strftime directive {d!r} has no Spark rewrite")
            flush()
            out.append(_STRFTIME_TO_JAVA[d])
            i += 2
        else:
            text.append(fmt[i])
            i += 1
    flush()
    return "".join(out)


def rewrite_for_spark(tree, params: Mapping[str, Any]):
    """The DuckDB → Spark rewrites sqlglot does not do by itself (module docstring)."""
    exp = _exp()

    def sub(node):
        if isinstance(node, exp.DateBin):
            return _time_bucket(node, params)
        if isinstance(node, exp.PercentileCont) and not isinstance(node.parent, exp.WithinGroup):
            return exp.Anonymous(this="percentile", expressions=[node.this, node.expression])
        if isinstance(node, (exp.ArgMax, exp.ArgMin)) and isinstance(node.expression, exp.Tuple):
            key = exp.Struct(expressions=list(node.expression.expressions))
            return node.__class__(this=node.this, expression=key)
        if isinstance(node, exp.ArrayAgg) and isinstance(node.this, exp.Order):
            order = node.this
            keys = order.expressions
            if len(keys) != 1 or keys[0].args.get("desc") or keys[0].this != order.this:
                raise ValueError("list(x ORDER BY ..) runs on Spark only ordered by x ascending")
            return exp.Anonymous(this="sort_array", expressions=[
                exp.Anonymous(this="collect_list", expressions=[order.this])])
        if isinstance(node, exp.TimeToStr):
            fmt = node.args["format"]
            return exp.Anonymous(this="date_format",
                                 expressions=[node.this, exp.Literal.string(_strftime_java(fmt.name))])
        if isinstance(node, exp.CTE):
            node.set("materialized", None)  # a planner hint Spark does not parse
        if isinstance(node, exp.Anonymous) and node.name.lower() == "json_valid":
            # Spark has no json_valid; get_json_object is NULL exactly for text that is not JSON
            return exp.Not(this=exp.Is(this=exp.Anonymous(this="get_json_object", expressions=[
                node.expressions[0], exp.Literal.string("$")]), expression=exp.Null()))
        if isinstance(node, exp.Anonymous) and node.name.lower() == "epoch_us":
            return exp.Anonymous(this="unix_micros", expressions=[
                exp.cast(node.expressions[0], exp.DataType.build("TIMESTAMP_LTZ", dialect="spark"))])
        return node

    # Children before parents, so a rewritten node's arguments are already rewritten.
    for node in reversed(list(tree.walk(bfs=False))):
        new = sub(node)
        if new is not node:
            if node is tree:
                tree = new
            else:
                node.replace(new)
    return tree


def split_ctes(tree):
    """``(ctes, query)``: the CTEs of ``tree``'s WITH, in order, and the query without them.

    Each CTE is ``(name, columns, base, step)``: for a recursive ``r AS (base UNION step)``,
    ``step`` reads ``r`` (a UNION in a recursive CTE: each round's rows that are not yet in
    ``r`` feed the next round, until a round adds none); for any other CTE ``step`` is None
    and ``base`` is its body. ``columns``: the CTE's column list, or None. For an engine
    without recursive CTEs (Spark 3.5), which then computes them outside its statements.
    """
    exp = _exp()
    tree = tree.copy()
    with_ = tree.args.get("with_") or tree.args.get("with")
    if with_ is None:
        return [], tree
    ctes = []
    for cte in with_.expressions:
        name = cte.alias_or_name
        body = cte.this
        alias = cte.args.get("alias")
        cols = [c.name for c in alias.columns] if alias is not None and alias.columns else None
        recursive = with_.args.get("recursive") and any(t.name == name for t in body.find_all(exp.Table))
        if recursive and not (isinstance(body, exp.Union) and body.args.get("distinct")):
            raise ValueError(f"recursive CTE {name} is not `base UNION step`")
        ctes.append((name, cols, body.this, body.expression) if recursive else (name, cols, body, None))
    with_.pop()
    return ctes, tree


def to_spark(sql: str, params: Mapping[str, Any]) -> str:
    """One DuckDB statement as Spark SQL, parameters bound as literals."""
    import sqlglot

    tree = sqlglot.parse_one(sql, read="duckdb")
    tree = rewrite_for_spark(tree, params)
    tree = bind_params(tree, params)
    return tree.sql(dialect="spark", comments=False)
