"""toolctl.engines: the lake views, partition pruning, the DuckDB → Spark rewrites, CLI errors."""

from __future__ import annotations

import json
import os
import shutil
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import REPO, TOOL, event, ingest_spans, otlp_span, run_toolctl, write_jsonl
from tests.test_lake_parity import write_lake

OTLP = REPO / "tests" / "fixtures" / "otlp"


def _stats(*args):
    r = run_toolctl(*args, "--format", "json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


@pytest.fixture
def small_lake(tmp_path):
    """12 events over 3 hours (4 per hour), one store, its lake."""
    docs = [event(i, ts=f"2026-11-24T{6 + i // 4:02d}:{(i % 4) * 15:02d}:00Z", latency_ms=10.0 * (i + 1),
                  tool="a" if i % 2 else "b", call_id=f"c{i // 2}", attempt=1 + i % 2,
                  status="error" if i % 3 == 0 else "ok") for i in range(12)]
    db = tmp_path / "s.duckdb"
    assert run_toolctl("--db", db, "ingest", write_jsonl(tmp_path / "e.jsonl", docs)).returncode == 0
    lake = tmp_path / "lake"
    write_lake(db, lake)
    return db, lake


# -- the lake ------------------------------------------------------------------------------

W0, W1 = "host_000000000000000a", "host_000000000000000b"


def test_pruning_lists_only_hour_partitions_meeting_the_window(tmp_path):
    from toolctl.lake.layout import list_files

    for d, h in [("2026-11-23", "23"), ("2026-11-24", "00"), ("2026-11-24", "01"), ("2026-11-24", "02")]:
        p = tmp_path / "events" / f"dt={d}" / f"hour={h}"
        p.mkdir(parents=True)
        for name in (f"{W0}-000000000001.parquet", f"{W1}-000000000001.parquet",
                     f".{W0}-000000000002.parquet.tmp", "_w3-0.parquet", "w4-0.parquet"):
            (p / name).write_bytes(b"")
    got = list_files(tmp_path, "events", since=datetime(2026, 11, 24, 0, 30), until=datetime(2026, 11, 24, 2, 0))
    assert [f.path for f in got] == [f"events/dt=2026-11-24/hour={h}/{w}-000000000001.parquet"
                                     for h in ("00", "01") for w in (W0, W1)]
    assert len(list_files(tmp_path, "events")) == 8  # no window: every data file, no temp/marker/stray files
    assert list_files(tmp_path, "spans") == []


def test_a_windowed_lake_query_runs_when_a_partition_is_the_last_day_of_9999(tmp_path):
    # Pruning computed the partition's start + 1 day: for dt=9999-12-31 an OverflowError, so
    # one "never" sentinel timestamp made every windowed lake query a traceback (exit 1).
    db, lake = tmp_path / "s.duckdb", tmp_path / "lake"
    docs = [event(1, ts="9999-12-31T23:00:00Z"), event(2, ts="2026-11-24T06:00:00Z")]
    assert run_toolctl("--db", db, "ingest", write_jsonl(tmp_path / "e.jsonl", docs)).returncode == 0
    assert run_toolctl("--db", db, "lake", "export", lake).returncode == 0
    for window, attempts in ((["--since", "2026-01-01T00:00:00Z"], 2), (["--since", "9999-12-31T23:30:00Z"], 0),
                             (["--since", "2026-11-24T06:00:00Z", "--until", "2026-11-24T07:00:00Z"], 1)):
        rows = _stats("--db", db, "stats", "--lake", lake, *window)
        assert sum(r["attempts"] for r in rows) == attempts, window


def _stray_copies(lake: Path) -> int:
    """Files in a partition that are not the layout's data files, each holding real rows."""
    n = 0
    for real in lake.glob("events/dt=*/hour=*/*.parquet"):
        for name in ("copy-of-an-export.parquet",  # a hand copy: the same rows again
                     f".{real.name}.tmp",  # a write in flight
                     "part-00000-1b2c.snappy.parquet",  # another tool's output
                     f"{real.stem}-1.parquet"):  # almost a lake name
            shutil.copyfile(real, real.with_name(name))
            n += 1
    return n


def test_engines_read_only_the_layouts_data_files_not_strays_or_temp_files(small_lake):
    from toolctl.engines import open_source
    from toolctl.metrics.stats import StatsQuery, stats
    from toolctl.store import Store

    db, lake = small_lake
    q = StatsQuery(by=["tool"])
    with Store.open(db, write=False) as store:
        want = stats(store, q)
    assert _stray_copies(lake) == 12
    with open_source("duckdb", lake) as src:
        assert stats(src, q) == want
        assert src.files_read == {"events": 3, "spans": 0}
    r = run_toolctl("lake", "ls", lake, "--format", "json")  # the same files as lake ls counts
    assert [p["files"] for p in json.loads(r.stdout)] == [1, 1, 1]


def test_duckdb_lake_opens_only_the_window_files_and_matches_the_store(small_lake):
    from toolctl.engines import open_source
    from toolctl.metrics.stats import StatsQuery, stats
    from toolctl.store import Store

    db, lake = small_lake
    q = StatsQuery(by=["tool"], since=datetime(2026, 11, 24, 7, 0), until=datetime(2026, 11, 24, 8, 0))
    with Store.open(db, write=False) as store:
        want = stats(store, q)
    with open_source("duckdb", lake) as src:
        got = stats(src, q)
        assert src.files_read == {"events": 1, "spans": 0}
        assert stats(src, StatsQuery(by=["tool"])) and src.files_read["events"] == 3
    assert got == want and sum(r["attempts"] for r in got) == 4
    # Proof that files outside the window are never opened: corrupt them, query the window.
    for f in lake.glob("events/dt=2026-11-24/hour=0[68]/*.parquet"):
        f.write_bytes(b"not parquet")
    with open_source("duckdb", lake) as src:
        assert stats(src, q) == want
        with pytest.raises(Exception, match="(?i)parquet"):
            stats(src, StatsQuery(by=["tool"]))


def test_lake_views_have_the_store_schema(small_lake):
    import duckdb

    from toolctl.engines import open_source

    db, lake = small_lake
    con = duckdb.connect(str(db), read_only=True)
    want = [(r[0], r[1]) for r in con.execute("DESCRIBE events").fetchall()]
    con.close()
    with open_source("duckdb", lake) as src:
        src.execute("SELECT 1", {})
        got = [(r[0], r[1]) for r in src.conn.execute("DESCRIBE events").fetchall()]
    assert got == [(c, "VARCHAR" if t == "JSON" else t) for c, t in want]


def test_not_a_lake_is_a_usage_error_naming_the_dir_and_an_unknown_version_an_error(tmp_path):
    (tmp_path / "nolake").mkdir()
    r = run_toolctl("stats", "--lake", tmp_path / "nolake")
    assert r.returncode == 2
    assert "is not a toolctl lake" in r.stderr and "nolake" in r.stderr
    r = run_toolctl("stats", "--lake", tmp_path / "missing")
    assert r.returncode == 2 and "does not exist" in r.stderr
    (tmp_path / "v9").mkdir()
    (tmp_path / "v9" / "_toolctl_lake.json").write_text('{"format": "toolctl-lake", "version": 9}')
    r = run_toolctl("stats", "--lake", tmp_path / "v9")  # the same refusal as `lake ls` (exit 1)
    assert r.returncode == 1 and "has layout version 9" in r.stderr


def test_spark_engine_without_a_lake_is_a_usage_error():
    r = run_toolctl("stats", "--engine", "spark")
    assert r.returncode == 2 and "--lake DIR is missing" in r.stderr


def _empty_lake(tmp_path: Path) -> Path:
    from toolctl.lake.layout import open_lake

    lake = tmp_path / "lake"
    open_lake(lake, create=True)
    return lake


def _path_without_java() -> str:
    return os.pathsep.join(d for d in os.environ.get("PATH", "").split(os.pathsep)
                           if d and not (Path(d) / "java").exists())


def test_spark_engine_without_java_is_one_error_line_and_exit_2(tmp_path):
    pytest.importorskip("pyspark")
    lake = _empty_lake(tmp_path)
    for java_home in (str(tmp_path / "no-such-jdk"), None):
        env = {"PATH": _path_without_java(), "JAVA_HOME": java_home}
        r = run_toolctl("stats", "--engine", "spark", "--lake", lake,
                        env={k: v for k, v in env.items() if v is not None},
                        unset=() if java_home else ("JAVA_HOME",))
        assert r.returncode == 2, r.stderr
        assert "Traceback" not in r.stderr and r.stdout == ""
        lines = r.stderr.splitlines()
        assert lines[0].startswith("Error: --engine spark needs a Java runtime: ")
        assert lines[1].startswith("Hint: install Java 17") and len(lines) == 2
        assert (java_home or "no `java` on PATH") in lines[0]


def test_spark_engine_whose_java_cannot_start_is_an_error_not_a_traceback(tmp_path):
    """A JAVA_HOME whose java exits at once: Spark's gateway never comes up."""
    pytest.importorskip("pyspark")
    lake = _empty_lake(tmp_path)
    java = tmp_path / "broken-jdk" / "bin" / "java"
    java.parent.mkdir(parents=True)
    java.write_text("#!/bin/sh\necho 'broken java' >&2\nexit 1\n")
    java.chmod(0o755)
    r = run_toolctl("stats", "--engine", "spark", "--lake", lake, env={"JAVA_HOME": str(java.parent.parent)})
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr and "JAVA_GATEWAY_EXITED" not in r.stderr
    lines = r.stderr.splitlines()
    assert lines[-2] == f"Error: --engine spark could not start Java ({java}): Spark's gateway exited before it was ready"
    assert lines[-1].startswith(f"Hint: run `{java} -version`")


def test_spark_engine_without_pyspark_names_the_extra_to_install(tmp_path):
    lake = _empty_lake(tmp_path)
    shim = tmp_path / "shim" / "pyspark"
    shim.mkdir(parents=True)
    (shim / "__init__.py").write_text('raise ImportError("No module named pyspark (test shim)")\n')
    path = os.pathsep.join([str(shim.parent), str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    r = run_toolctl("stats", "--engine", "spark", "--lake", lake, env={"PYTHONPATH": path})
    assert r.returncode == 2
    assert r.stderr.splitlines() == ["Error: --engine spark needs pyspark, which is not installed",
                                     "Hint: pip install 'toolctl[spark]' (and Java 17)"]


def test_stats_and_audit_search_on_the_duckdb_lake_equal_the_store(small_lake):
    db, lake = small_lake
    for args in (["--by", "tool"], ["--by", "tool", "--every", "1h"], ["--tool", "a", "--since", "2026-11-24T07:00:00Z"]):
        assert _stats("--db", db, "stats", *args, "--lake", lake) == _stats("--db", db, "stats", *args)
    for args in (["--tool", "a"], ["--call-id", "c3"]):
        assert (_stats("--db", db, "audit", "search", *args, "--lake", lake)
                == _stats("--db", db, "audit", "search", *args))


def test_runbook_run_on_the_duckdb_lake_decides_as_on_the_store(small_lake):
    # docs/engines.md promised single-window runbooks over the lake; the CLI had no --lake.
    db, lake = small_lake
    window = ["--since", "2026-11-24T06:00:00Z", "--until", "2026-11-24T12:00:00Z", "--format", "json"]
    for name in ("error-budget", "latency-slo"):
        on_lake = run_toolctl("--db", db, "runbook", "run", name, *window, "--lake", lake)
        on_store = run_toolctl("--db", db, "runbook", "run", name, *window)
        assert on_lake.returncode == on_store.returncode, (on_lake.stderr, on_store.stderr)
        lake_doc, store_doc = json.loads(on_lake.stdout), json.loads(on_store.stdout)
        for doc in (lake_doc, store_doc):
            doc.pop("recorded", None)
        assert [(c["name"], c["outcome"], c.get("estimate")) for c in lake_doc["checks"]] == \
            [(c["name"], c["outcome"], c.get("estimate")) for c in store_doc["checks"]]
        assert lake_doc["status"] == store_doc["status"]


def _damage(path: Path, how: str) -> None:
    data = bytearray(path.read_bytes())
    if how == "appended":  # `echo x >> file`: the footer's magic bytes are no longer last
        data += b"x\n"
    elif how == "metadata":  # the footer's thrift bytes scrambled, magic bytes intact
        for i in range(len(data) - 400, len(data) - 8):
            data[i] ^= 0x5A
    else:
        data = bytearray(b"not parquet")
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("how", ["appended", "metadata", "replaced"])
def test_a_damaged_lake_file_is_one_error_naming_it_with_a_hint_not_a_traceback(small_lake, how):
    db, lake = small_lake
    assert run_toolctl("--db", db, "baseline", "save", "b").returncode == 0
    bad = sorted(lake.glob("events/dt=2026-11-24/hour=07/*.parquet"))[0]
    _damage(bad, how)
    hint = f"Hint: check the lake with `toolctl audit verify --lake {lake}`"
    window = ("--since", "2026-11-24T06:00:00Z", "--until", "2026-11-24T09:00:00Z")
    for args, code in ((("stats",), 4), (("audit", "search", "--tool", "a"), 4),
                       (("gate", "--baseline", "v1", "--candidate", "v2", *window, "--format", "json"), 40),
                       (("regress", "--baseline", "b", *window, "--format", "json"), 40)):
        r = run_toolctl("--db", db, *args, "--lake", lake)
        assert r.returncode == code, (args, r.stderr)
        error, hint_line = r.stderr.splitlines()
        assert error.startswith(f"Error: cannot read lake file {bad}: "), (args, error)
        assert hint_line.startswith(hint), args
        if code == 40:  # the gate's contract: still one JSON document, verdict error
            doc = json.loads(r.stdout)
            assert doc["verdict"] == "error" and str(bad) in doc["reason"]


@pytest.mark.parametrize("how", ["appended", "metadata", "replaced"])
def test_a_damaged_lake_file_read_by_spark_is_the_same_error_naming_it(small_lake, spark, how):
    # Spark's job failure (a Py4JJavaError many screens long) reached the user as a traceback.
    from toolctl.engines import open_source
    from toolctl.errors import LakeFileError
    from toolctl.metrics.stats import StatsQuery, stats

    _, lake = small_lake
    bad = sorted(lake.glob("events/dt=2026-11-24/hour=07/*.parquet"))[0]
    _damage(bad, how)
    with open_source("spark", lake, "local[2]") as src:
        with pytest.raises(LakeFileError) as err:
            stats(src, StatsQuery(by=("tool",)))
    message = str(err.value)
    assert message.startswith(f"cannot read lake file {bad.absolute()}: ") and "\n" not in message, message
    assert err.value.hint.startswith(f"check the lake with `toolctl audit verify --lake {lake}`")


def test_a_spark_failure_naming_no_file_finds_the_damaged_one_by_its_footer(small_lake):
    # Scrambled footer metadata: Spark's failure says only "can not read class
    # org.apache.parquet.format.FileMetaData: don't know what type: 15", naming no file, and
    # reached the user as a Py4JJavaError traceback (exit 1). (No JVM here: the failure's text.)
    from toolctl.engines import SparkLake
    from toolctl.errors import LakeFileError

    _, lake = small_lake
    files = sorted(lake.glob("events/dt=*/hour=*/*.parquet"))
    bad = files[1]
    _damage(bad, "metadata")
    src = object.__new__(SparkLake)  # no session: only the failure's diagnosis is exercised
    src.root, src._known_files = lake, {str(f) for f in files}
    failure = Exception("An error occurred while calling o72.getResult.\n: org.apache.spark.SparkException: "
                        "Job aborted due to stage failure: java.io.IOException: can not read class "
                        "org.apache.parquet.format.FileMetaData: don't know what type: 15\n\tat org.apache...")
    err = src._damaged(failure)
    assert isinstance(err, LakeFileError), err
    assert str(err).startswith(f"cannot read lake file {bad}: ") and "\n" not in str(err), str(err)
    other = Exception("[UNRESOLVED_COLUMN] A column with name `x` cannot be resolved")
    assert src._damaged(other) is other  # a failure that is not about a file stays as it was


def test_a_lake_whose_marker_cannot_be_read_is_verdict_error_for_gate_regress_and_runbooks(small_lake):
    # A damaged _toolctl_lake.json made these exit 1 with no report: CI scripts branch on 40
    # (error: the data cannot be read) and parse the one JSON document.
    db, lake = small_lake
    assert run_toolctl("--db", db, "baseline", "save", "b").returncode == 0
    (lake / "_toolctl_lake.json").write_bytes(b"\x00garbled")
    window = ("--since", "2026-11-24T06:00:00Z", "--until", "2026-11-24T09:00:00Z", "--format", "json")
    for args, key in ((("gate", "--baseline", "v1", "--candidate", "v2"), "verdict"),
                      (("regress", "--baseline", "b"), "verdict"),
                      (("runbook", "run", "error-budget"), "status")):
        r = run_toolctl("--db", db, *args, *window, "--lake", lake)
        assert r.returncode == 40, (args, r.stderr)
        assert json.loads(r.stdout)[key] == "error", args
        error, hint = r.stderr.splitlines()
        assert error.startswith(f"Error: cannot read {lake / '_toolctl_lake.json'}") and hint.startswith("Hint: "), error


# -- the one tool_calls definition, its recursive walk split for Spark ---------------------

WALK = """
WITH RECURSIVE up(trace_id, span_id) AS (
    SELECT trace_id, parent_span_id FROM spans WHERE auth_signal AND parent_span_id IS NOT NULL
    UNION
    SELECT s.trace_id, s.parent_span_id FROM spans s JOIN up u ON s.trace_id = u.trace_id AND s.span_id = u.span_id
    WHERE s.parent_span_id IS NOT NULL
) SELECT span_id FROM up ORDER BY span_id"""


def test_split_ctes_gives_a_recursive_ctes_base_and_step_and_the_query_without_its_with():
    import sqlglot

    from toolctl.engines.transpile import split_ctes

    [(name, cols, base, step)], query = split_ctes(sqlglot.parse_one(WALK, read="duckdb"))
    assert (name, cols) == ("up", ["trace_id", "span_id"])
    assert base.sql("duckdb").startswith("SELECT trace_id, parent_span_id FROM spans WHERE auth_signal")
    assert "JOIN up AS u" in step.sql("duckdb")
    assert query.sql("duckdb") == "SELECT span_id FROM up ORDER BY span_id"
    plain = split_ctes(sqlglot.parse_one("WITH a AS (SELECT 1 AS x) SELECT x FROM a", read="duckdb"))
    assert [(n, c, b.sql("duckdb"), st) for n, c, b, st in plain[0]] == [("a", None, "SELECT 1 AS x", None)]
    with pytest.raises(ValueError, match="not `base UNION step`"):  # UNION ALL never ends on a cycle
        split_ctes(sqlglot.parse_one(WALK.replace("UNION", "UNION ALL"), read="duckdb"))


def test_lake_tool_calls_is_the_migrations_view_with_its_recursive_walk_on_every_span_file():
    from toolctl.engines.lake import tool_calls_tree

    sql = tool_calls_tree().sql("duckdb")
    assert sql.startswith("WITH RECURSIVE auth_family AS MATERIALIZED")
    assert "FROM spans_all" in sql and "FROM spans AS s" in sql and "ANTI JOIN events_all" in sql


# -- DuckDB → Spark rewrites ----------------------------------------------------------------

def test_strftime_formats_become_quoted_java_patterns():
    from toolctl.engines.transpile import _strftime_java

    assert _strftime_java("%Y-%m-%dT%H:%M:%SZ") == "yyyy'-'MM'-'dd'T'HH':'mm':'ss'Z'"
    assert _strftime_java("%Y%m%d") == "yyyyMMdd"
    with pytest.raises(ValueError):
        _strftime_java("%j")


def test_params_bind_as_literals_not_text():
    from toolctl.engines.transpile import to_spark

    sql = to_spark("SELECT * FROM t WHERE tool = $tool::VARCHAR AND ts >= $since::TIMESTAMP "
                   "AND list_contains($tools::VARCHAR[], tool) LIMIT $limit",
                   {"tool": "x' OR 1=1 --", "since": datetime(2026, 1, 2, 3, 4, 5, 6),
                    "tools": ["a", "b"], "limit": 5})
    assert "'x\\' OR 1=1 --'" in sql or "'x'' OR 1=1 --'" in sql  # one quoted string literal
    assert "'2026-01-02 03:04:05.000006'" in sql and "ARRAY('a', 'b')" in sql and "LIMIT 5" in sql
    with pytest.raises(KeyError):
        to_spark("SELECT $missing", {})


# -- Spark (one session per test process) ---------------------------------------------------

@pytest.fixture(scope="session")
def spark():
    pytest.importorskip("pyspark")
    from toolctl.engines import spark_session

    return spark_session("local[2]")


def _duck(sql):
    import duckdb

    return duckdb.connect().execute(sql).fetchall()


@pytest.mark.slow
def test_spark_rewrites_compute_what_duckdb_computes(spark):
    from toolctl.engines.transpile import to_spark

    values = "(VALUES (1, 3e0, 'x', TIMESTAMP '2026-11-24 06:59:59.999999'), (1, 1e0, 'y', TIMESTAMP '2026-11-24 07:00:00'), " \
             "(2, 10e0, 'z', TIMESTAMP '2026-11-24 07:44:00'), (1, 2e0, 'w', TIMESTAMP '2026-11-24 07:14:59'), " \
             "(2, 4e0, 'v', TIMESTAMP '2026-11-23 23:01:00')) AS v(g, x, s, ts)"
    cases = [
        # quantile_cont ↔ percentile: linear interpolation between closest ranks
        (f"SELECT g, quantile_cont(x, [0.0, 0.25, 0.5, 0.95, 1.0]) AS q FROM {values} GROUP BY g ORDER BY g", {}),
        (f"SELECT quantile_cont(x, $f::DOUBLE[]) AS q FROM {values}", {"f": [0.1, 0.333]}),
        # arg_max with a tuple key compares field by field
        (f"SELECT g, arg_max(s, (x > 2, ts, s)) AS m FROM {values} GROUP BY g ORDER BY g", {}),
        # time_bucket widths that do and do not divide a day, and a NULL width
        (f"SELECT strftime(time_bucket($every::INTERVAL, ts), '%Y-%m-%dT%H:%M:%SZ') AS b, count(*) AS n "
         f"FROM {values} GROUP BY b ORDER BY b", {"every": timedelta(minutes=15)}),
        (f"SELECT strftime(time_bucket($every::INTERVAL, ts), '%Y-%m-%dT%H:%M:%SZ') AS b, count(*) AS n "
         f"FROM {values} GROUP BY b ORDER BY b", {"every": timedelta(hours=7)}),
        (f"SELECT time_bucket($every::INTERVAL, ts) IS NULL AS b, count(*) AS n FROM {values} GROUP BY b", {"every": None}),
        (f"SELECT g, list(x ORDER BY x) AS l FROM {values} GROUP BY g ORDER BY g", {}),
        # the one-pass final-attempt key, as stats.sql and arm_calls.sql build it: (attempt, µs
        # since the epoch) packed into a BIGINT by shifts, an outcome class in its low bits
        (f"SELECT g, max(coalesce((coalesce(g, 1)::BIGINT << 54) | (epoch_us(ts) << 2) | CASE WHEN x > 2 THEN 1 ELSE 0 END, "
         f"9223372036854775807)) AS kc, max(coalesce(NULL::BIGINT, 9223372036854775807)) & 3 AS s "
         f"FROM {values} GROUP BY g ORDER BY g", {}),
        (f"SELECT g, count(*) FILTER (WHERE x > 2) AS n, arg_max({{'s': s, 'x': x}}, ts).s AS last_s "
         f"FROM {values} GROUP BY g ORDER BY g", {}),
        # a rejected line's tool (window_rejects.sql): only a line that is valid JSON names one
        ("SELECT raw, CASE WHEN json_valid(raw) THEN raw ->> '$.tool' END AS tool FROM (VALUES "
         "('{\"tool\": \"a\", \"latency_ms\": \"x\"}'), ('{\"tool\": \"tru'), ('[1, 2]'), ('{}')) AS r(raw) "
         "ORDER BY raw", {}),
    ]
    import duckdb

    for sql, params in cases:
        want = [tuple(r) for r in duckdb.connect().execute(sql, params or None).fetchall()]
        got = [tuple(r) for r in spark.sql(to_spark(sql, params)).collect()]
        assert len(got) == len(want), sql
        for g, w in zip(got, want):
            for a, b in zip(g, w):
                if isinstance(b, list):
                    assert a == pytest.approx(b, rel=1e-12), sql
                else:
                    assert a == b, sql


@pytest.mark.slow
def test_spark_time_buckets_equal_duckdb_a_microsecond_before_a_boundary_far_from_2000(spark):
    # Beyond 2^53 µs from the origin (~285 years) floor((µs - origin) / w) in doubles put
    # these times into the next bucket.
    from toolctl.engines.transpile import to_spark

    # (Year-1 times whose bucket starts in year 1 for every width below: 0001-01-01 is a
    # Monday, and a 25h boundary falls on 0001-01-03 06:00.)
    times = ["0001-01-07 23:59:59.999999", "0001-01-03 05:59:59.999999", "1700-03-01 06:59:59.999999",
             "2500-06-01 00:00:59.999999", "8000-01-01 23:59:59.999999", "9999-12-31 23:58:59.999999",
             "9999-12-31 23:59:59.999999", "2026-11-24 06:59:59.999999"]
    values = "(VALUES " + ", ".join(f"(TIMESTAMP '{t}')" for t in times) + ") AS v(ts)"
    sql = (f"SELECT strftime(time_bucket($every::INTERVAL, ts), '%Y-%m-%dT%H:%M:%S.%fZ') AS b, count(*) AS n "
           f"FROM {values} GROUP BY b ORDER BY b")
    import duckdb

    for every in (timedelta(minutes=7), timedelta(hours=25), timedelta(weeks=1)):
        want = [tuple(r) for r in duckdb.connect().execute(sql, {"every": every}).fetchall()]
        got = [tuple(r) for r in spark.sql(to_spark(sql, {"every": every})).collect()]
        assert got == want, every


@pytest.mark.slow
def test_spark_reads_only_the_layouts_data_files_not_strays(small_lake, spark):
    from toolctl.engines import open_source
    from toolctl.metrics.stats import StatsQuery, stats
    from toolctl.store import Store

    db, lake = small_lake
    with Store.open(db, write=False) as store:
        want = stats(store, StatsQuery(by=["tool"]))
    _stray_copies(lake)
    with open_source("spark", lake, "local[2]") as src:
        assert stats(src, StatsQuery(by=["tool"])) == want and src.files_read["events"] == 3


@pytest.mark.slow
def test_spark_reads_a_lake_whose_path_holds_glob_characters(small_lake, spark, tmp_path):
    # Spark expands a path with {}[]*? as a glob: "lake [x]" matched "lake x" or nothing.
    import shutil

    from toolctl.engines import open_source
    from toolctl.metrics.stats import StatsQuery, stats
    from toolctl.store import Store

    db, lake = small_lake
    odd = tmp_path / "lake [x]{a,b}*?"
    shutil.copytree(lake, odd)
    with Store.open(db, write=False) as store:
        want = stats(store, StatsQuery(by=["tool"]))
    with open_source("spark", odd, "local[2]") as src:
        assert stats(src, StatsQuery(by=["tool"])) == want

@pytest.mark.slow
def test_spark_results_reach_the_driver_as_arrow_not_row_objects(small_lake, spark, monkeypatch):
    from pyspark.sql import DataFrame

    from toolctl.engines import open_source
    from toolctl.gate.data import fetch_latencies
    from toolctl.metrics.stats import StatsQuery, stats
    from toolctl.store import Store

    db, lake = small_lake
    window = dict(since=datetime(2026, 11, 24), until=datetime(2026, 11, 25), version=None, tools=None)
    with Store.open(db, write=False) as store:
        want_stats, want_lat = stats(store, StatsQuery(by=["tool"])), fetch_latencies(store, **window)
    monkeypatch.setattr(DataFrame, "collect", lambda self: pytest.fail("collect() made a Row per row"))
    with open_source("spark", lake, "local[2]") as src:
        assert stats(src, StatsQuery(by=["tool"])) == want_stats
        got = fetch_latencies(src, **window)
    assert got.dtype == want_lat.dtype and got.tolist() == want_lat.tolist() and len(got) == 12


@pytest.mark.slow
def test_spark_reads_the_local_files_when_the_default_filesystem_is_not_local(small_lake, spark):
    """A cluster whose fs.defaultFS is HDFS: the lake's files are named as file:// URIs."""
    from toolctl.engines import open_source
    from toolctl.metrics.stats import StatsQuery, stats
    from toolctl.store import Store

    db, lake = small_lake
    with Store.open(db, write=False) as store:
        want = stats(store, StatsQuery(by=["tool"]))
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    before = conf.get("fs.defaultFS")
    conf.set("fs.defaultFS", "nofs://cluster:8020")  # a bare path would resolve to a scheme Hadoop lacks
    try:
        with open_source("spark", lake, "local[2]") as src:
            assert stats(src, StatsQuery(by=["tool"])) == want
    finally:
        conf.set("fs.defaultFS", before)


@pytest.mark.slow
def test_span_auth_failures_agree_on_all_engines(tmp_path, spark):
    """The OTLP auth fixtures: a 401 on a child and a PERMISSION_DENIED on a grandchild; and
    a 401 forty levels below its tool span, and a trace whose parent links form a cycle (the
    store's recursive walk has no depth bound and ends on a cycle; so must the lake's)."""
    from toolctl.engines import open_source
    from toolctl.metrics.stats import StatsQuery, stats
    from toolctl.store import Store

    db = tmp_path / "s.duckdb"
    for name in ("auth_parent.json", "auth_child.json", "auth_middle.json"):
        assert run_toolctl("--db", db, "ingest", OTLP / name).returncode == 0
    deep, loop = "d" * 32, "e" * 32
    chain = [otlp_span(deep, f"{1:016x}", "execute_tool deep", attrs={**TOOL, "gen_ai.tool.name": "deep"})]
    chain += [otlp_span(deep, f"{k:016x}", "step", parent=f"{k - 1:016x}", start=k) for k in range(2, 41)]
    chain += [otlp_span(deep, f"{41:016x}", "POST", parent=f"{40:016x}", start=41,
                        attrs={"http.response.status_code": 401})]
    cycle = [otlp_span(loop, "a" * 16, "execute_tool loop", parent="c" * 16,
                       attrs={**TOOL, "gen_ai.tool.name": "loop"}),
             otlp_span(loop, "b" * 16, "step", parent="a" * 16, start=1),
             otlp_span(loop, "c" * 16, "POST", parent="b" * 16, start=2, attrs={"http.response.status_code": 403})]
    ingest_spans(db, tmp_path / "deep.json", chain + cycle)
    lake = tmp_path / "lake"
    write_lake(db, lake)
    q = StatsQuery(by=["tool"])
    with Store.open(db, write=False) as store:
        want = stats(store, q)
    assert {r["tool"]: r["auth_failures"] for r in want} == {"charge_card": 2, "deep": 1, "loop": 1}
    with open_source("duckdb", lake) as src:
        assert stats(src, q) == want
    with open_source("spark", lake, "local[2]") as src:
        assert stats(src, q) == want


@pytest.mark.slow
def test_spark_stats_group_by_every_dimension_as_the_store_does(tmp_path, spark):
    # --by status on Spark was AMBIGUOUS_REFERENCE: stats.sql selected `status AS status` and
    # the raw `status` side by side, which DuckDB tolerates and Spark refuses.
    from toolctl.engines import open_source
    from toolctl.metrics.stats import StatsQuery, stats
    from toolctl.store import Store

    docs = [event(i, tool="ab"[i % 2], status="error" if i % 3 == 0 else "ok", call_id=f"c{i // 2}",
                  attempt=1 + i % 2, user=f"u{i % 2}", error_code="E" if i % 3 == 0 else None,
                  tenant="t", version="v", service="s") for i in range(12)]
    # a tie: one call, same attempt and ts, an error and a success (the arg_max path)
    docs += [event(20, call_id="tie", status="error"), event(21, call_id="tie", status="ok")]
    db, lake = tmp_path / "s.duckdb", tmp_path / "lake"
    assert run_toolctl("--db", db, "ingest", write_jsonl(tmp_path / "e.jsonl", docs)).returncode == 0
    write_lake(db, lake)
    # --by status with another dimension and buckets (each Spark query costs seconds on 2
    # cores; the other dimensions are covered by the parity tests)
    queries = [StatsQuery(by=["status", "tool"], every=timedelta(hours=1))]
    with Store.open(db, write=False) as store:
        want = [stats(store, q) for q in queries]
    with open_source("spark", lake, "local[2]") as src:
        for q, w in zip(queries, want):
            assert stats(src, q) == w, q.by


def test_regress_on_a_relative_lake_path_equals_regress_on_the_store(small_lake):
    db, lake = small_lake
    assert run_toolctl("--db", db, "baseline", "save", "b").returncode == 0
    window = ("--since", "2026-11-24T06:00:00Z", "--until", "2026-11-24T09:00:00Z", "--format", "json")
    on_store = run_toolctl("--db", db, "regress", "--baseline", "b", *window)
    on_lake = run_toolctl("--db", db, "regress", "--baseline", "b", *window, "--lake", lake.name, cwd=lake.parent)
    assert on_lake.returncode == on_store.returncode != 40, on_lake.stderr
    assert json.loads(on_lake.stdout) == json.loads(on_store.stdout)
