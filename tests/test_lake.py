"""The Parquet lake: export, compaction and verification as operators run them (real CLI
subprocesses, real DuckDB files, the lake read back with DuckDB's own Parquet reader)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.conftest import REPO, event, run_toolctl, write_jsonl

OTLP = sorted((REPO / "tests" / "fixtures" / "otlp").glob("*.json*"))
EU = sorted((REPO / "sample_logs" / "gateway-eu").glob("*.gz"))
US = sorted((REPO / "sample_logs" / "gateway-us").glob("*.gz"))


def toolctl(db: Path, *args) -> subprocess.CompletedProcess:
    r = run_toolctl("--db", db, *args)
    assert r.returncode in (0, 3), r.stderr  # 3: ingest kept rejects
    return r


def export(db: Path, lake: Path, *args) -> dict:
    r = run_toolctl("--db", db, "lake", "export", lake, "--format", "json", *args)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def store_rows(db: Path, table: str) -> list[tuple]:
    """The store's rows, JSON columns as text, in a fixed order (the file must be closed)."""
    conn = duckdb.connect(str(db), read_only=True)
    try:
        cols = [r[0] for r in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = ? ORDER BY ordinal_position",
            [table]).fetchall()]
        key = "event_id" if table == "events" else "trace_id, span_id"
        return conn.execute(f"SELECT * FROM {table} ORDER BY {key}").fetchall(), cols  # fixed names
    finally:
        conn.close()


def lake_rows(lake: Path, dataset: str) -> tuple[list[tuple], list[str]]:
    conn = duckdb.connect()
    try:
        glob = str(lake / dataset / "**" / "*.parquet")
        key = "event_id" if dataset == "events" else "trace_id, span_id"
        rel = conn.sql(f"SELECT * EXCLUDE (dt, hour) FROM read_parquet('{glob}', hive_partitioning = true)"
                       f" ORDER BY {key}")
        return rel.fetchall(), rel.columns
    finally:
        conn.close()


def _jsonish(rows: list[tuple], cols: list[str], json_cols: set[str]) -> list[tuple]:
    """JSON columns compared as parsed values (the lake holds their text)."""
    idx = [i for i, c in enumerate(cols) if c in json_cols]
    out = []
    for r in rows:
        r = list(r)
        for i in idx:
            r[i] = None if r[i] is None else json.loads(r[i])
        out.append(tuple(r))
    return out


JSON_COLS = {"events": {"args", "data", "extra"},
             "spans": {"resource", "attributes", "events", "links", "args", "result"}}


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    """A store with the EU sample logs and the OTLP fixtures (spans at nanosecond precision)."""
    d = tmp_path_factory.mktemp("seeded")
    db = d / "store.duckdb"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOOLCTL_")}
    r = subprocess.run([sys.executable, "-m", "toolctl", "--db", str(db), "ingest", *map(str, EU[:2] + OTLP)],
                       capture_output=True, text=True, env=env)
    assert r.returncode in (0, 3), r.stderr
    return db


def copy_store(seeded: Path, tmp_path: Path) -> Path:
    db = tmp_path / "store.duckdb"
    db.write_bytes(seeded.read_bytes())
    return db


# -- export ----------------------------------------------------------------------------------
def test_export_round_trip_is_row_for_row_the_store(seeded, tmp_path):
    db, lake = copy_store(seeded, tmp_path), tmp_path / "lake"
    doc = export(db, lake)
    for dataset in ("events", "spans"):
        want, want_cols = store_rows(db, dataset)
        got, got_cols = lake_rows(lake, dataset)
        assert got_cols == want_cols  # the store's columns, in its order
        assert len(got) == len(want) > 0
        assert _jsonish(got, got_cols, JSON_COLS[dataset]) == _jsonish(want, want_cols, JSON_COLS[dataset])
        assert doc["rows"][dataset] == len(want)
    marker = json.loads((lake / "_toolctl_lake.json").read_text())
    assert marker["format"] == "toolctl-lake" and marker["version"] == 1


def test_files_follow_the_layout_partitioned_by_utc_hour_sorted_zstd(seeded, tmp_path):
    db, lake = copy_store(seeded, tmp_path), tmp_path / "lake"
    doc = export(db, lake)
    assert doc["files"]
    for f in doc["files"]:
        path = lake / f["path"]
        dataset, dt, hour, name = f["path"].split("/")
        writer, seq = name.removesuffix(".parquet").rsplit("-", 1)
        assert writer == doc["writer_id"] and len(seq) == 12 and seq.isdigit()
        table = pq.ParquetFile(path).read()
        ts_col = "ts" if dataset == "events" else "start_time"
        raw = table.column(ts_col).cast(pa.int64()).to_pylist()
        assert raw == sorted(raw)
        times = table.column(ts_col).cast(pa.timestamp("us"), safe=False).to_pylist()
        assert {f"dt={t:%Y-%m-%d}/hour={t:%H}" for t in times} == {f"{dt}/{hour}"}
        meta = pq.ParquetFile(path).metadata
        assert meta.row_group(0).column(0).compression == "ZSTD"
        assert meta.num_rows == f["rows"]
    # Nanoseconds of span start times survive the round trip.
    spans = lake_rows(lake, "spans")[0]
    got = duckdb.connect().sql(f"SELECT max(start_ns % 1000) FROM read_parquet('{lake}/spans/**/*.parquet')").fetchall()
    assert got[0][0] > 0 and spans


def test_re_export_adds_nothing_and_a_window_then_the_rest_adds_exactly_the_rest(seeded, tmp_path):
    db, lake = copy_store(seeded, tmp_path), tmp_path / "lake"
    first = export(db, lake, "--since", "2026-11-24T06:30:00Z", "--until", "2026-11-24T07:10:00Z")
    # The window is widened to whole hours: 06:00-08:00.
    conn = duckdb.connect(str(db), read_only=True)
    in_window = conn.execute("SELECT count(*) FROM events WHERE ts >= '2026-11-24 06:00' AND ts < '2026-11-24 08:00'").fetchall()[0][0]
    total = conn.execute("SELECT count(*) FROM events").fetchall()[0][0]
    conn.close()
    assert first["rows"]["events"] == in_window > 0
    assert export(db, lake, "--since", "2026-11-24T06:30:00Z", "--until", "2026-11-24T07:10:00Z")["files"] == []
    rest = export(db, lake)
    assert rest["rows"]["events"] == total - in_window
    assert export(db, lake)["files"] == []
    got, _ = lake_rows(lake, "events")
    assert len(got) == total and len({r[0] for r in got}) == total


def test_export_to_a_directory_of_other_files_is_refused_with_exit_1(seeded, tmp_path):
    db = copy_store(seeded, tmp_path)
    (tmp_path / "notalake").mkdir()
    (tmp_path / "notalake" / "data.csv").write_text("x\n")
    r = run_toolctl("--db", db, "lake", "export", tmp_path / "notalake")
    assert r.returncode == 1
    assert "holds other files" in r.stderr and "Hint:" in r.stderr
    assert not (tmp_path / "notalake" / "_toolctl_lake.json").exists()


# -- compaction ------------------------------------------------------------------------------
FIGURES = """
SELECT tool, count(*) AS calls, sum((status = 'error')::INT) AS errors,
       quantile_cont(latency_ms, 0.5) AS p50, quantile_cont(latency_ms, 0.99) AS p99,
       count(DISTINCT event_id) AS ids
FROM read_parquet('{glob}', hive_partitioning = true)
GROUP BY tool ORDER BY tool
"""


def figures(lake: Path) -> list[tuple]:
    return duckdb.connect().sql(FIGURES.format(glob=lake / "events" / "**" / "*.parquet")).fetchall()


def test_compaction_keeps_the_figures_merges_each_closed_hour_and_is_recorded(seeded, tmp_path):
    db, lake = copy_store(seeded, tmp_path), tmp_path / "lake"
    export(db, lake)
    toolctl(db, "ingest", *US[:2])  # same hours, new rows: a second file per partition
    export(db, lake)
    before = figures(lake)
    parts_before = {p.parent for p in lake.glob("events/*/*/*.parquet")}
    assert len(list(lake.glob("events/*/*/*.parquet"))) > len(parts_before)
    r = run_toolctl("--db", db, "lake", "compact", lake, "--before", "2026-11-24T07:00:00Z", "--format", "json")
    assert r.returncode == 0, r.stderr
    done = json.loads(r.stdout)
    assert [c["partition"] for c in done["compacted"]] == ["events/dt=2026-11-24/hour=06"]
    r = run_toolctl("--db", db, "lake", "compact", lake, "--before", "2026-11-25T00:00:00Z", "--format", "json")
    assert r.returncode == 0, r.stderr
    done = json.loads(r.stdout)
    assert figures(lake) == before
    for part in parts_before:
        files = list(part.glob("*.parquet"))
        assert len(files) == 1
        times = pq.ParquetFile(files[0]).read().column("ts").to_pylist()
        assert times == sorted(times)
    for c in done["compacted"]:
        assert sum(i["rows"] for i in c["inputs"]) == c["output"]["rows"]
        assert not any((lake / i["path"]).exists() for i in c["inputs"])
    log = json.loads(run_toolctl("--db", db, "audit", "log", "--kind", "lake_compact", "--format", "json").stdout)
    assert {e["payload"]["output"]["path"] for e in log} >= {c["output"]["path"] for c in done["compacted"]}
    v = run_toolctl("--db", db, "audit", "verify", "--lake", lake, "--format", "json")
    assert v.returncode == 0, v.stderr
    assert json.loads(v.stdout)["lake"]["compacted_away"] > 0
    # Nothing left to merge: a second run changes nothing.
    again = json.loads(run_toolctl("--db", db, "lake", "compact", lake, "--before", "2026-11-25T00:00:00Z",
                                   "--format", "json").stdout)
    assert again["compacted"] == []


def test_default_compaction_leaves_the_open_hours_alone(tmp_path):
    db, lake = tmp_path / "s.duckdb", tmp_path / "lake"
    now = datetime.utcnow()
    recent = [event(i, ts=(now - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")) for i in range(3)]
    old = [event(100 + i, ts="2026-01-01T03:15:00Z") for i in range(3)]
    for k, docs in enumerate((recent[:2] + old[:2], recent[2:] + old[2:])):
        toolctl(db, "ingest", write_jsonl(tmp_path / f"{k}.jsonl", docs))
        export(db, lake)
    r = json.loads(run_toolctl("--db", db, "lake", "compact", lake, "--format", "json").stdout)
    assert [c["partition"] for c in r["compacted"]] == ["events/dt=2026-01-01/hour=03"]
    hour = now - timedelta(minutes=5)
    assert len(list(lake.glob(f"events/dt={hour:%Y-%m-%d}/hour={hour:%H}/*.parquet"))) == 2


def test_a_held_partition_lock_is_skipped_and_a_stale_one_taken_over(seeded, tmp_path):
    db, lake = copy_store(seeded, tmp_path), tmp_path / "lake"
    export(db, lake)
    toolctl(db, "ingest", *US[:1])
    export(db, lake)
    part = lake / "events" / "dt=2026-11-24" / "hour=06"
    lock = part / "_compact.lock"
    lock.write_text('{"held": "by someone else"}')
    r = json.loads(run_toolctl("--db", db, "lake", "compact", lake, "--before", "2026-11-24T07:00:00Z",
                               "--format", "json").stdout)
    assert r["compacted"] == [] and r["busy"] == ["events/dt=2026-11-24/hour=06"]
    assert len(list(part.glob("*.parquet"))) == 2 and lock.exists()
    old = time.time() - 3600
    os.utime(lock, (old, old))  # its holder died an hour ago (timeout: 600 s)
    r = json.loads(run_toolctl("--db", db, "lake", "compact", lake, "--before", "2026-11-24T07:00:00Z",
                               "--format", "json").stdout)
    assert [c["partition"] for c in r["compacted"]] == ["events/dt=2026-11-24/hour=06"]
    assert len(list(part.glob("*.parquet"))) == 1 and not lock.exists()


@pytest.mark.slow
def test_two_compactors_from_two_stores_lose_and_double_nothing(tmp_path):
    lake = tmp_path / "lake"
    dbs = []
    for k in range(2):  # two writers, the same 40 hours, disjoint events, two files per hour each
        db = tmp_path / f"s{k}.duckdb"
        for rnd in range(2):
            docs = [event(10_000 * k + 1000 * rnd + i, ts=f"2026-02-{1 + i % 2:02d}T{i % 20:02d}:{i % 60:02d}:00Z",
                          latency_ms=float(i)) for i in range(200)]
            toolctl(db, "ingest", write_jsonl(tmp_path / f"{k}-{rnd}.jsonl", docs))
            export(db, lake)
        dbs.append(db)
    before = figures(lake)
    procs = [subprocess.Popen([sys.executable, "-m", "toolctl", "--db", str(db), "lake", "compact", str(lake),
                               "--before", "2026-03-01T00:00:00Z", "--format", "json"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for db in dbs]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    docs = [json.loads(o[0]) for o in outs]
    assert figures(lake) == before
    assert before[0][1] == 2 * 2 * 200
    # Each partition was compacted at most once per pass and is now one file or was busy.
    for part in {p.parent for p in lake.glob("events/*/*/*.parquet")}:
        busy = sum(str(part.relative_to(lake)) in d["busy"] for d in docs)
        assert len(list(part.glob("*.parquet"))) == 1 or busy
    for db in dbs:  # each store accounts for its files, whoever compacted them
        v = run_toolctl("--db", db, "audit", "verify", "--lake", lake, "--format", "json")
        assert v.returncode == 0, v.stderr


# -- verify ----------------------------------------------------------------------------------
def test_verify_lake_passes_then_exits_5_on_a_modified_or_deleted_file(seeded, tmp_path):
    db, lake = copy_store(seeded, tmp_path), tmp_path / "lake"
    doc = export(db, lake)
    v = run_toolctl("--db", db, "audit", "verify", "--lake", lake)
    assert v.returncode == 0, v.stderr
    assert f"{len(doc['files'])} of {len(doc['files'])} recorded file(s) present" in v.stdout
    victim = lake / doc["files"][0]["path"]
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF
    victim.write_bytes(bytes(data))
    v = run_toolctl("--db", db, "audit", "verify", "--lake", lake)
    assert v.returncode == 5
    assert f"{doc['files'][0]['path']} was modified" in v.stderr
    assert "Hint: lake files were changed or removed outside toolctl" in v.stderr
    victim.unlink()
    v = run_toolctl("--db", db, "audit", "verify", "--lake", lake, "--format", "json")
    assert v.returncode == 5
    problems = json.loads(v.stdout)["lake"]["problems"]
    assert [p["path"] for p in problems] == [doc["files"][0]["path"]]
    assert "deleted" in problems[0]["problem"]


def test_verify_lake_lists_other_writers_files_as_information(seeded, tmp_path):
    db, lake = copy_store(seeded, tmp_path), tmp_path / "lake"
    other = tmp_path / "other.duckdb"
    toolctl(other, "ingest", write_jsonl(tmp_path / "o.jsonl", [event(i) for i in range(5)]))
    export(db, lake)
    export(other, lake)
    v = run_toolctl("--db", db, "audit", "verify", "--lake", lake, "--format", "json")
    assert v.returncode == 0, v.stderr
    lake_doc = json.loads(v.stdout)["lake"]
    assert lake_doc["unknown_files"] == 1 and lake_doc["intact"]


def test_verify_lake_rows_are_the_rows_this_store_exported_even_after_a_shared_compaction(tmp_path):
    lake = tmp_path / "lake"
    a, b = tmp_path / "a.duckdb", tmp_path / "b.duckdb"
    toolctl(a, "ingest", write_jsonl(tmp_path / "a.jsonl", [event(i, ts=f"2026-03-01T05:{i:02d}:00Z") for i in range(5)]))
    toolctl(b, "ingest", write_jsonl(tmp_path / "b.jsonl", [event(100 + i, ts=f"2026-03-01T05:{30 + i:02d}:00Z")
                                                             for i in range(3)]))
    export(a, lake)
    export(b, lake)

    def verified(db):
        v = run_toolctl("--db", db, "audit", "verify", "--lake", lake, "--format", "json")
        assert v.returncode == 0, v.stderr
        return json.loads(v.stdout)["lake"]

    assert [verified(db)["rows"] for db in (a, b)] == [5, 3]
    # a merges both writers' files of the hour into one file of its own
    r = json.loads(run_toolctl("--db", a, "lake", "compact", lake, "--before", "2026-03-02T00:00:00Z",
                               "--format", "json").stdout)
    assert [c["output"]["rows"] for c in r["compacted"]] == [8]
    got = [verified(db) for db in (a, b)]
    assert [g["rows"] for g in got] == [5, 3]  # not 8 and 0: a's output holds b's rows too
    assert [g["compacted_away"] for g in got] == [1, 1]
    v = run_toolctl("--db", a, "audit", "verify", "--lake", lake)
    assert "5 rows exported by this store" in v.stdout


def test_pruning_the_store_after_export_keeps_the_lake_provable_and_exports_nothing_twice(tmp_path):
    """docs/lake.md: the store stays (staging + ledger) but `db prune` keeps it small."""
    db, lake = tmp_path / "s.duckdb", tmp_path / "lake"
    toolctl(db, "ingest", write_jsonl(tmp_path / "old.jsonl", [event(i, ts="2026-01-01T03:00:00Z") for i in range(6)]))
    first = export(db, lake)
    r = run_toolctl("--db", db, "db", "prune", "--older-than", "1d", "--format", "json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["events"] == 6
    assert store_rows(db, "events")[0] == []
    for args in ([], ["--lake", lake]):
        v = run_toolctl("--db", db, "audit", "verify", *args, "--format", "json")
        assert v.returncode == 0, v.stderr
    assert json.loads(v.stdout)["lake"]["rows"] == first["rows"]["events"] == 6
    assert export(db, lake)["files"] == []  # nothing pending: pruned rows are not exported again
    toolctl(db, "ingest", write_jsonl(tmp_path / "new.jsonl", [event(10 + i) for i in range(2)]))
    assert export(db, lake)["rows"]["events"] == 2
    help_text = run_toolctl("serve", "--help", env={"COLUMNS": "300"}).stdout
    assert "The store stays" in help_text and "toolctl db prune" in help_text


def test_lake_ls_counts_files_rows_and_bytes_per_partition(seeded, tmp_path):
    db, lake = copy_store(seeded, tmp_path), tmp_path / "lake"
    doc = export(db, lake)
    r = run_toolctl("lake", "ls", lake, "--format", "json")
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert sum(p["rows"] for p in rows) == doc["rows"]["events"] + doc["rows"]["spans"]
    assert sum(p["files"] for p in rows) == len(doc["files"])
    assert sum(p["bytes"] for p in rows) == sum(f["bytes"] for f in doc["files"])
    r = run_toolctl("lake", "ls", tmp_path / "nothing")
    assert r.returncode == 2 and "not a toolctl lake" in r.stderr


def test_a_directory_named_like_a_partition_but_no_date_is_not_read(seeded, tmp_path):
    """Found by fuzzing: a stray `dt=2026-13-45/hour=99` directory (a bad copy, another tool)
    made every lake command crash with a traceback; like any name outside the layout, it is
    not data."""
    db, lake = copy_store(seeded, tmp_path), tmp_path / "lake"
    doc = export(db, lake)
    good = next(lake.glob("events/*/*/*.parquet"))
    for dt, hour in (("dt=2026-13-45", "hour=00"), ("dt=2026-11-24", "hour=24")):
        (lake / "events" / dt / hour).mkdir(parents=True, exist_ok=True)
        (lake / "events" / dt / hour / good.name).write_bytes(good.read_bytes())
    for args in (["lake", "ls", lake, "--format", "json"], ["stats", "--lake", lake, "--format", "json"],
                 ["audit", "verify", "--lake", lake, "--format", "json"],
                 ["lake", "compact", lake, "--format", "json"], ["lake", "export", lake, "--format", "json"]):
        r = run_toolctl("--db", db, *args)
        assert r.returncode == 0 and "Traceback" not in r.stderr, (args, r.stderr)
    rows = json.loads(run_toolctl("lake", "ls", lake, "--format", "json").stdout)
    assert sum(p["rows"] for p in rows) == doc["rows"]["events"] + doc["rows"]["spans"]


def test_a_damaged_file_is_one_error_line_for_ls_and_compact_and_nothing_is_merged(seeded, tmp_path):
    """Found by fuzzing: `lake ls` and `lake compact` met a truncated file (or a Parquet file
    without the dataset's columns) with a traceback; like `stats --lake`, they name the file
    (exit 4)."""
    db, lake = copy_store(seeded, tmp_path), tmp_path / "lake"
    export(db, lake)
    toolctl(db, "ingest", *US[:1])  # same hours, new rows: a second file per partition
    export(db, lake)
    part = sorted(p.parent for p in lake.glob("events/*/*/*.parquet"))[0]
    files = sorted(part.glob("*.parquet"))
    assert len(files) == 2
    damaged = files[1]
    damaged.write_bytes(damaged.read_bytes()[:500])
    r = run_toolctl("lake", "ls", lake)
    assert r.returncode == 4 and "Traceback" not in r.stderr, r.stderr
    assert f"Error: cannot read lake file {damaged}" in r.stderr and "Hint:" in r.stderr
    r = run_toolctl("--db", db, "lake", "compact", lake, "--before", "2026-11-25T00:00:00Z")
    assert r.returncode == 4 and "Traceback" not in r.stderr, r.stderr
    assert f"Error: cannot read lake file {damaged}" in r.stderr
    assert sorted(p.name for p in part.iterdir()) == sorted(f.name for f in files)  # nothing merged or left
    # a Parquet file of the layout's name but not of the dataset: named too
    duckdb.sql(f"COPY (SELECT 1 AS x) TO '{damaged}' (FORMAT parquet)")
    r = run_toolctl("--db", db, "lake", "compact", lake, "--before", "2026-11-25T00:00:00Z")
    assert r.returncode == 4 and f"cannot read lake file {damaged}: it has no column ts" in r.stderr, r.stderr
    assert sorted(p.name for p in part.iterdir()) == sorted(f.name for f in files)


def test_export_to_a_lake_whose_marker_was_lost_is_refused_rather_than_doubling_it(seeded, tmp_path):
    """Found by fuzzing: with `_toolctl_lake.json` gone (a sync that skips `_` names, a bad
    restore) `lake export` wrote a new marker with a new lake_id, found nothing exported to
    that id and wrote every row again: each event twice in the lake."""
    db, lake = copy_store(seeded, tmp_path), tmp_path / "lake"
    doc = export(db, lake)
    (lake / "_toolctl_lake.json").unlink()
    r = run_toolctl("--db", db, "lake", "export", lake)
    assert r.returncode == 1, r.stderr
    assert "holds lake data files but no _toolctl_lake.json" in r.stderr and "Hint:" in r.stderr
    assert not (lake / "_toolctl_lake.json").exists()
    assert len(lake_rows(lake, "events")[0]) == doc["rows"]["events"]
    empty = tmp_path / "empty"  # dataset directories without data still start a lake
    (empty / "events").mkdir(parents=True)
    export(db, empty)


def test_events_before_the_year_1000_are_in_a_partition_every_lake_reader_lists(tmp_path):
    # 0001-01-01T00:00:00Z is Go's zero time: a gateway that never set the timestamp. Its
    # partition was written as dt=1-01-01 (%Y does not zero-pad), which does not match the
    # layout's dt=YYYY-MM-DD, so `stats --lake` and `lake ls` silently left the event out.
    db, lake = tmp_path / "s.duckdb", tmp_path / "lake"
    write_jsonl(tmp_path / "a.jsonl", [event(1, ts="0001-01-01T00:00:00Z", status="error"),
                                       event(2, ts="0999-12-31T23:59:59Z"), event(3)])
    toolctl(db, "ingest", tmp_path / "a.jsonl")
    export(db, lake)
    assert sorted(p.name for p in (lake / "events").iterdir() if p.name.startswith("dt=")) == [
        "dt=0001-01-01", "dt=0999-12-31", "dt=2026-11-24"]
    from_store = json.loads(toolctl(db, "stats", "--format", "json").stdout)
    from_lake = json.loads(toolctl(db, "stats", "--lake", lake, "--format", "json").stdout)
    assert from_lake == from_store and from_store[0]["attempts"] == 3 and from_store[0]["errors"] == 1
    windowed = json.loads(toolctl(db, "stats", "--lake", lake, "--until", "1000-01-01T00:00:00Z",
                                  "--format", "json").stdout)
    assert windowed[0]["attempts"] == 2
    listed = json.loads(toolctl(db, "lake", "ls", lake, "--format", "json").stdout)
    assert sum(p["rows"] for p in listed) == 3


def test_export_until_the_last_hour_of_9999_exports_instead_of_overflowing(tmp_path):
    # --until is widened to the next whole hour, which for 9999-12-31T23:xx is past what a
    # datetime holds: an OverflowError traceback. It now ends at the last representable time.
    db, lake = tmp_path / "s.duckdb", tmp_path / "lake"
    write_jsonl(tmp_path / "a.jsonl", [event(1), event(2, ts="9999-12-31T23:00:00Z")])
    toolctl(db, "ingest", tmp_path / "a.jsonl")
    doc = export(db, lake, "--until", "9999-12-31T23:30:00Z")
    assert doc["rows"]["events"] == 2
