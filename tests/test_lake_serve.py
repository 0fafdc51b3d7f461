"""Many writers, one lake: `toolctl serve --lake` collectors and exports killed mid-way."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from tests.conftest import event, run_toolctl, write_jsonl
from tests.test_collector_server import NDJSON, ndjson, serve  # noqa: F401  (fixture)

T0 = 1_764_000_000_000_000_000  # 2025-11-24T16:00:00Z in ns


def span_doc(spans: list[tuple[str, str, int]]) -> bytes:
    body = [{"traceId": t, "spanId": s, "name": "execute_tool", "kind": 1,
             "startTimeUnixNano": str(start), "endTimeUnixNano": str(start + 5_000_000),
             "attributes": [{"key": "gen_ai.operation.name", "value": {"stringValue": "execute_tool"}},
                            {"key": "gen_ai.tool.name", "value": {"stringValue": "lookup"}}]}
            for t, s, start in spans]
    return json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": body}]}]}).encode()


def lake_ids(lake: Path) -> tuple[list[str], list[str]]:
    conn = duckdb.connect()
    ev = [r[0] for r in conn.sql(f"SELECT event_id FROM read_parquet('{lake}/events/**/*.parquet')").fetchall()] \
        if list(lake.glob("events/*/*/*.parquet")) else []
    sp = [r[0] for r in conn.sql(f"SELECT trace_id || ':' || span_id FROM read_parquet('{lake}/spans/**/*.parquet')")
          .fetchall()] if list(lake.glob("spans/*/*/*.parquet")) else []
    conn.close()
    return ev, sp


def wait_for(predicate, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.1)


@pytest.mark.slow
def test_two_collectors_writing_one_lake_give_exactly_the_union(serve, tmp_path):
    lake = tmp_path / "lake"
    a = serve("--lake", str(lake), "--lake-flush-seconds", "0.2", db=tmp_path / "a.duckdb")
    b = serve("--lake", str(lake), "--lake-flush-seconds", "0.2", db=tmp_path / "b.duckdb")
    sent_events: list[str] = []
    sent_spans: list[str] = []
    lock = threading.Lock()
    errors: list[str] = []

    def client(k: int, target) -> None:
        for rnd in range(15):
            base = 100_000 * k + 1000 * rnd
            docs = [event(base + i, ts=f"2026-11-24T{(rnd + i) % 6:02d}:{i % 60:02d}:00Z", latency_ms=float(i))
                    for i in range(40)]
            r = target.post("/v1/tool-calls", ndjson(docs), NDJSON)
            spans = [(f"a{k:02x}{rnd:02x}{i:04x}".ljust(32, "0"), f"{i + 1:016x}", T0 + (rnd * 40 + i) * 60_000_000_000)
                     for i in range(20)]
            r2 = target.post("/v1/traces", span_doc(spans), {"Content-Type": "application/json"})
            with lock:
                if r.status_code != 200 or r2.status_code != 200 or r2.json() != {}:
                    errors.append(f"{r.status_code} {r.text} {r2.status_code} {r2.text}")
                    return
                sent_events.extend(d["event_id"] for d in docs)
                sent_spans.extend(f"{t}:{s}" for t, s, _ in spans)

    threads = [threading.Thread(target=client, args=(k, target)) for k, target in enumerate((a, b, a, b))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    # The lake follows the stores while they run (lag ~ the flush interval).
    wait_for(lambda: tuple(map(len, lake_ids(lake))) == (len(sent_events), len(sent_spans)))
    assert a.stop() == 0 and b.stop() == 0
    events, spans = lake_ids(lake)
    assert sorted(events) == sorted(sent_events) and len(set(events)) == len(events) == 4 * 15 * 40
    assert sorted(spans) == sorted(sent_spans) and len(set(spans)) == len(spans) == 4 * 15 * 20
    writers = {p.name.rsplit("-", 1)[0] for p in lake.glob("*/*/*/*.parquet")}
    assert len(writers) == 2
    for db in (a.db, b.db):
        v = run_toolctl("--db", db, "audit", "verify", "--lake", lake, "--format", "json")
        assert v.returncode == 0, v.stderr
        doc = json.loads(v.stdout)["lake"]
        assert doc["files_present"] == doc["files_recorded"] > 0 and doc["unknown_files"] > 0


def test_a_restarted_collector_exports_what_it_acknowledged_before_a_kill_9(serve, tmp_path):
    lake, db = tmp_path / "lake", tmp_path / "s.duckdb"
    s = serve("--lake", str(lake), "--lake-flush-seconds", "600", db=db)
    docs = [event(i, ts=f"2026-11-24T0{i % 3}:00:00Z") for i in range(30)]
    assert s.post("/v1/tool-calls", ndjson(docs), NDJSON).status_code == 200
    s.kill()  # acknowledged = in the store; the lake lags and catches up on restart
    assert lake_ids(lake)[0] == []
    s = serve("--lake", str(lake), "--lake-flush-seconds", "0.2", db=db)
    wait_for(lambda: len(lake_ids(lake)[0]) == 30)
    assert s.stop() == 0
    assert sorted(lake_ids(lake)[0]) == sorted(d["event_id"] for d in docs)


@pytest.mark.slow
def test_kill_9_during_an_export_leaves_only_complete_files_and_the_next_export_no_doubles(tmp_path):
    db, lake = tmp_path / "s.duckdb", tmp_path / "lake"
    docs = [event(i, ts=f"2026-0{1 + i % 9}-{1 + i % 28:02d}T{i % 24:02d}:00:00Z", latency_ms=float(i % 97))
            for i in range(40_000)]
    r = run_toolctl("--db", db, "ingest", write_jsonl(tmp_path / "e.jsonl", docs))
    assert r.returncode == 0, r.stderr
    proc = subprocess.Popen([sys.executable, "-m", "toolctl", "--db", str(db), "lake", "export", str(lake)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: len(list(lake.glob("events/*/*/*.parquet"))) >= 5 or proc.poll() is not None, timeout=60)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL, "the export finished before it could be killed"
    visible = list(lake.glob("events/*/*/*.parquet"))
    assert visible, "the export finished before it could be killed"
    for f in visible:  # every visible file is complete: readable to its last row group
        assert pq.ParquetFile(f).read().num_rows > 0
    assert all(p.name.startswith(".") for p in lake.rglob("*.tmp"))  # temp names stay hidden
    # The killed export never committed: the next one replaces its files, doubling nothing.
    r = run_toolctl("--db", db, "lake", "export", lake, "--format", "json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["orphans_removed"] == len(visible)
    assert list(lake.rglob("*.tmp")) == []  # and its leftovers are gone
    events = lake_ids(lake)[0]
    assert len(events) == len(set(events)) == len(docs)
    v = run_toolctl("--db", db, "audit", "verify", "--lake", lake)
    assert v.returncode == 0, v.stderr


def test_export_compact_and_verify_run_on_the_collector_that_holds_the_store(serve, tmp_path):
    lake, db = tmp_path / "lake", tmp_path / "s.duckdb"
    s = serve(db=db)
    for k in range(2):
        docs = [event(100 * k + i, ts="2026-11-24T03:00:00Z") for i in range(20)]
        assert s.post("/v1/tool-calls", ndjson(docs), NDJSON).status_code == 200
        r = run_toolctl("--db", db, "lake", "export", lake, "--format", "json")
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["rows"]["events"] == 20
    r = run_toolctl("--db", db, "lake", "compact", lake, "--format", "json")
    assert r.returncode == 0, r.stderr
    assert len(json.loads(r.stdout)["compacted"]) == 1
    v = run_toolctl("--db", db, "audit", "verify", "--lake", lake, "--format", "json")
    assert v.returncode == 0, v.stderr
    assert json.loads(v.stdout)["lake"]["compacted_away"] == 2
    assert s.stop() == 0
    assert sorted(lake_ids(lake)[0]) == sorted(f"e{i}" for i in [*range(20), *range(100, 120)])
