"""DuckDB-file, DuckDB-lake and Spark-lake give the same figures and the same gate verdict.

The events are generated (seeded), ingested with the real CLI into two stores (two
collectors, disjoint halves), and both stores are written into one lake by two `toolctl lake
export` processes running at the same time. Size: TOOLCTL_PARITY_EVENTS (default 120 000, which
still gives every tool retries, auth failures and errors and > 500 four-dimension hourly
groups, as asserted; 200 000 cost ~40 s more of the suite's 10-minute budget; CI runs the
default).
"""

from __future__ import annotations

import json
import math
import os
import random
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from tests.conftest import run_toolctl

N_EVENTS = int(os.environ.get("TOOLCTL_PARITY_EVENTS", "120000"))
START = datetime(2026, 11, 20, 0, 0, tzinfo=timezone.utc)
HOURS = 36
TOOLS = ["search_web", "read_file", "send_email", "query_db", "create_ticket"]
TENANTS = ["acme", "globex", "initech", "umbrella"]
OFFSETS = [timedelta(0), timedelta(hours=2), timedelta(hours=-5, minutes=-30), timedelta(hours=9)]


def _stamp(t: datetime, rng: random.Random) -> str:
    """The instant t written in a random UTC offset (what gateways in several regions send)."""
    off = rng.choice(OFFSETS)
    local = t.astimezone(timezone(off))
    s = local.isoformat(timespec="microseconds")
    return s.replace("+00:00", "Z") if off == timedelta(0) else s


def generate_events(n: int, seed: int = 9) -> list[dict]:
    """Calls with retries (shared call_id), auth failures, calls without call_id, duplicates."""
    rng = random.Random(seed)
    out: list[dict] = []
    i = 0
    while len(out) < n:
        i += 1
        tool = rng.choice(TOOLS)
        version = "v2" if rng.random() < 0.4 else "v1"
        t = START + timedelta(seconds=rng.random() * HOURS * 3600)
        attempts = 1 if rng.random() < 0.8 else rng.randint(2, 4)
        call_id = f"call-{i}" if rng.random() < 0.9 else None
        base_lat = {"search_web": 300.0, "read_file": 20.0, "send_email": 150.0,
                    "query_db": 80.0, "create_ticket": 250.0}[tool] * (1.3 if version == "v2" else 1.0)
        for a in range(1, attempts + 1):
            doc = {"event_id": f"e{i}-{a}", "ts": _stamp(t + timedelta(milliseconds=700 * (a - 1)), rng),
                   "tool": tool, "status": "ok",
                   # rounded to µs-exact decimals: ties and repeats exercise the interpolation
                   "latency_ms": round(rng.lognormvariate(math.log(base_lat), 0.6), 1),
                   "tenant": rng.choice(TENANTS), "version": version, "service": "gateway",
                   "attempt": a}
            if call_id:
                doc["call_id"] = call_id
            r = rng.random()
            if a < attempts or r < 0.05:
                doc.update(status="error", error_code="TIMEOUT", retryable=True)
            elif r < 0.07:
                doc.update(status="error", http_status=rng.choice([401, 403]))
            elif r < 0.08:
                doc.update(status="error", error_code="PERMISSION_DENIED")
            elif r < 0.09:
                doc.update(status="error", error_code="VALIDATION")
            if rng.random() < 0.3:
                doc["confidence"] = round(rng.random(), 3)
            out.append(doc)
            if rng.random() < 0.01:
                out.append(dict(doc))  # a gateway re-sent the line: stored once
    return out[:n]


def write_lake(db: Path, lake: Path) -> None:
    """The store's rows into the lake with the real writer, `toolctl lake export`."""
    r = run_toolctl("--db", db, "lake", "export", lake, timeout=600)
    assert r.returncode == 0, r.stderr


def write_lake_concurrently(dbs: list[Path], lake: Path) -> list[dict]:
    """Each store's `toolctl lake export` into one lake (which none has created yet), all
    running at the same time as separate processes, as collectors do; their JSON reports."""
    procs = [subprocess.Popen([sys.executable, "-m", "toolctl", "--db", str(db), "lake", "export", str(lake),
                               "--format", "json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for db in dbs]
    outs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0] * len(procs), [err for _, err in outs]
    return [json.loads(out) for out, _ in outs]


def publish_spans(lake: Path, reports: list[dict]) -> list[tuple[float, float]]:
    """Per writer, (first, last) time one of its files appeared in the lake."""
    spans = []
    for doc in reports:
        times = [(lake / f["path"]).stat().st_mtime for f in doc["files"]]
        spans.append((min(times), max(times)))
    return spans


def build_stores_and_lake(tmp: Path, n: int) -> tuple[Path, Path]:
    """(the one store of every event, the lake written concurrently by two writers from
    disjoint halves)."""
    from tests.conftest import write_jsonl

    docs = generate_events(n)
    half = len(docs) // 2
    while docs[half]["event_id"] == docs[half - 1]["event_id"]:
        half += 1  # a re-sent line stays with its collector (the store dedupes; the lake does not)
    files = [write_jsonl(tmp / f"part{k}.jsonl", part) for k, part in enumerate((docs[:half], docs[half:]))]
    full = tmp / "all.duckdb"
    r = run_toolctl("--db", full, "ingest", *files, timeout=600)
    assert r.returncode == 0, r.stderr
    dbs = []
    for k, f in enumerate(files):
        db = tmp / f"collector{k}.duckdb"
        r = run_toolctl("--db", db, "ingest", f, timeout=600)
        assert r.returncode == 0, r.stderr
        dbs.append(db)
    lake = tmp / "lake"
    reports = write_lake_concurrently(dbs, lake)
    assert len({doc["lake_id"] for doc in reports}) == 1  # both found (or made) the one marker
    assert len({doc["writer_id"] for doc in reports}) == 2
    (a0, a1), (b0, b1) = publish_spans(lake, reports)
    assert a0 < b1 and b0 < a1, "the two exports did not overlap in time"
    return full, lake


# -- the parity test -------------------------------------------------------------------------

def assert_same(got, want, where=""):
    """Equal, except floats to 1e-9 relative (sums and quantiles in another order)."""
    if isinstance(want, dict):
        assert isinstance(got, dict) and set(got) == set(want), where
        for k in want:
            assert_same(got[k], want[k], f"{where}.{k}")
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), f"{where}: {len(got)} vs {len(want)} rows"
        for i, (g, w) in enumerate(zip(got, want)):
            assert_same(g, w, f"{where}[{i}]")
    elif isinstance(want, float) and not isinstance(want, bool):
        assert got == pytest.approx(want, rel=1e-9, abs=1e-12), where
    else:
        assert got == want and type(got) is type(want), f"{where}: {got!r} != {want!r}"


STATS_CASES = {
    "by_tool": dict(by=["tool"]),
    "four_dims_hourly": dict(by=["tool", "tenant", "version"], every=timedelta(hours=1)),
    "window": dict(by=["tool", "version"], since=datetime(2026, 11, 20, 7, 30), until=datetime(2026, 11, 21, 2, 0)),
    "tool_filter": dict(by=["tenant"], tool="search_web", every=timedelta(minutes=90)),
}
GATE_WINDOW = dict(since=datetime(2026, 11, 20, 0, 0), until=datetime(2026, 11, 21, 12, 0))


@pytest.fixture(scope="module")
def parity(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("parity")
    return build_stores_and_lake(tmp, N_EVENTS)


def _figures(source) -> dict:
    from toolctl.gate import GateRequest, run_gate, run_runbook
    from toolctl.gate.runbook import load_runbook
    from toolctl.metrics.stats import StatsQuery, stats

    out = {name: stats(source, StatsQuery(**q)) for name, q in STATS_CASES.items()}
    report = run_gate(source, GateRequest(baseline="v1", candidate="v2", runbook=load_runbook("canary-promotion"),
                                          now=GATE_WINDOW["until"], record=False, **GATE_WINDOW))
    out["gate"] = {k: report[k] for k in ("verdict", "reason", "since", "until", "arms")}
    out["gate"]["checks"] = [{k: c[k] for k in ("name", "outcome", "estimate", "lower", "upper")}
                             for c in report["checks"]]
    health = run_runbook(source, load_runbook("latency-slo"), now=GATE_WINDOW["until"], **GATE_WINDOW)
    out["runbook_latency_slo"] = [{k: c[k] for k in ("name", "outcome", "estimate")} for c in health["checks"]]
    return out


@pytest.mark.slow
def test_duckdb_file_duckdb_lake_and_spark_lake_give_the_same_figures(parity):
    from toolctl.engines import open_source, spark_session
    from toolctl.store import Store

    pytest.importorskip("pyspark")
    full, lake = parity
    with Store.open(full, write=False) as store:
        want = _figures(store)
    # the data really has what the figures must handle
    by_tool = want["by_tool"]
    assert sum(r["attempts"] for r in by_tool) > 0.9 * N_EVENTS  # ~1% duplicates dropped
    assert all(r["retries"] > 0 and r["auth_failures"] > 0 and r["errors"] > 0 for r in by_tool)
    assert len(want["four_dims_hourly"]) > 500
    assert want["gate"]["verdict"] in ("hold", "rollback", "promote", "inconclusive")

    with open_source("duckdb", lake) as src:
        assert_same(_figures(src), want, "duckdb-lake")
    spark_session("local[2]")
    with open_source("spark", lake, "local[2]") as src:
        assert_same(_figures(src), want, "spark-lake")


@pytest.mark.slow
def test_cli_spark_engine_prints_the_store_figures(parity):
    import json as _json

    pytest.importorskip("pyspark")
    full, lake = parity
    args = ["--db", full, "stats", "--by", "tool", "--since", "2026-11-20T10:00:00+02:00",
            "--until", "2026-11-20T20:00:00Z", "--format", "json"]
    want = run_toolctl(*args)
    got = run_toolctl(*args, "--engine", "spark", "--lake", lake, "--spark-master", "local[2]", timeout=300)
    assert want.returncode == 0 and got.returncode == 0, got.stderr
    assert_same(_json.loads(got.stdout), _json.loads(want.stdout))


@pytest.mark.slow
def test_regress_and_audit_search_agree_on_every_engine(parity):
    from toolctl.audit.lookups import EventFilter, search_events
    from toolctl.engines import open_source
    from toolctl.gate.baselines import regress, save_baseline
    from toolctl.store import Store

    pytest.importorskip("pyspark")
    full, lake = parity
    with Store.open(full, write=True) as store:
        save_baseline(store, "stable", version="v1", since=datetime(2026, 11, 20), until=datetime(2026, 11, 20, 12),
                      now=datetime(2026, 11, 22))
    window = dict(since=datetime(2026, 11, 20, 12), until=datetime(2026, 11, 21, 12))
    searches = [EventFilter(call_id="call-77"), EventFilter(tool="read_file", tenant="acme", status="error",
                                                            since=window["since"], until=window["until"])]
    with Store.open(full, write=False) as store:
        want_regress = regress(store, "stable", **window)
        want_search = [search_events(store, f, limit=50) for f in searches]
        assert want_regress["checks"] and all(want_search)
        for engine in ("duckdb", "spark"):
            with open_source(engine, lake, "local[2]") as src:
                assert_same(regress(store, "stable", data=src, **window), want_regress, f"{engine} regress")
                assert_same(_content([search_events(src, f, limit=50) for f in searches]),
                            _content(want_search), f"{engine} search")


def _content(results):
    """Search rows without provenance: the lake's collectors ingested their halves as their own
    batches and files, so batch_id/source/line_no differ from the one store's by design."""
    return [[{k: v for k, v in r.items() if k not in ("batch_id", "source", "line_no")} for r in rows]
            for rows in results]
