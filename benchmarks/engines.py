"""Engines benchmark: the same figures on a DuckDB file, on DuckDB over the lake, on Spark local.

    python benchmarks/engines.py                     # 10M events (the RESULTS.md case)
    python benchmarks/engines.py --events 200000     # smoke size
    python benchmarks/engines.py --no-spark

The events are generated inside DuckDB (no JSON parsing: this measures the queries), over 72
hours, 8 tools, 20 tenants, 3 versions, 20% retries sharing a call id, 5% errors, 1% auth
failures. The DuckDB file holds them all. The lake is what users get: two collector stores
(the same events split by call) each run the real `toolctl lake export` into it at the same
time, so every hour has one file per writer. Each engine runs `stats --by tool` and the
4-dimension hourly `stats --by tool --by tenant --by version --every 1h`; wall time per query
(best of --repeat, and the first run, which also defines the lake views once per source),
Spark's session start-up reported separately. Prints a table and one JSON
document.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

GENERATE = """
INSERT INTO events (event_id, ts, tool, status, latency_ms, schema_version, call_id, tenant,
                    version, service, attempt, error_code, http_status, batch_id)
SELECT 'e' || i,
       TIMESTAMP '2026-11-01 00:00:00' + to_microseconds((i * (259200000000 // $n))::BIGINT),
       'tool_' || (i % 8),
       CASE WHEN hash(i) % 100 < 5 OR i % 5 = 3 THEN 'error' ELSE 'ok' END,
       round(exp(3.5 + (hash(i * 7) % 1000) / 400.0), 3),
       1,
       'c' || (i - (i % 5 = 4)::INT),
       'tenant_' || (hash(i * 3) % 20),
       'v' || (i % 3),
       'gateway',
       1 + (i % 5 = 4)::INT,
       CASE WHEN hash(i * 11) % 100 = 0 THEN 'PERMISSION_DENIED' END,
       CASE WHEN hash(i * 13) % 200 = 0 THEN 401 END,
       1
FROM range($n) t(i)
WHERE (i // 5) % $writers = $writer  -- one writer's share: whole calls (a retry is i % 5 = 4)
"""
BATCH = """
INSERT INTO batches VALUES (1, 'file', 'benchmarks/engines.py', NULL, NULL, $n, $n, 0, 0, now()::TIMESTAMP)
"""
#: Collectors writing the lake (each its own store and writer id).
WRITERS = 2

QUERIES = {
    "stats --by tool": dict(by=["tool"]),
    "4-dim hourly": dict(by=["tool", "tenant", "version"], every=timedelta(hours=1)),
}


def generate(db: Path, n: int, writers: int = 1, writer: int = 0) -> int:
    """A store holding the generated events (of one writer's share); returns its row count."""
    from toolctl.store import Store

    with Store.open(db, write=True) as store:
        store.execute(GENERATE, {"n": n, "writers": writers, "writer": writer})
        rows = int(store.scalar("SELECT count(*) FROM events"))
        store.execute(BATCH, {"n": rows})  # one ingest batch, as a store written by ingest has
        store.execute("CHECKPOINT")
    return rows


def export_concurrently(dbs: list[Path], lake: Path) -> None:
    """`toolctl lake export` of every store into one lake, all at the same time."""
    repo = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [repo, os.environ.get("PYTHONPATH")]))}
    procs = [subprocess.Popen([sys.executable, "-m", "toolctl", "--db", str(db), "lake", "export", str(lake),
                               "--format", "json"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              text=True, env=env) for db in dbs]
    errors = [(db, p.communicate()[1]) for db, p in zip(dbs, procs)]
    failed = [f"{db}: {err.strip()}" for (db, err), p in zip(errors, procs) if p.returncode != 0]
    if failed:
        raise SystemExit("lake export failed: " + "; ".join(failed))


def build(work: Path, n: int) -> tuple[Path, Path]:
    db, lake = work / f"engines-{n}.duckdb", work / f"lake-{n}-export-{WRITERS}w"
    if db.exists() and lake.exists():
        return db, lake
    writer_dbs = [work / f"engines-{n}-writer{k}.duckdb" for k in range(WRITERS)]
    for p in (db, lake, *writer_dbs):
        shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
    t = time.perf_counter()
    total = generate(db, n)
    shares = [generate(w, n, WRITERS, k) for k, w in enumerate(writer_dbs)]
    assert sum(shares) == total, (shares, total)
    generated = time.perf_counter() - t
    export_concurrently(writer_dbs, lake)
    for w in writer_dbs:
        for f in (w, w.with_name(w.name + ".wal")):
            f.unlink(missing_ok=True)
    print(f"generated {n:,} events in {generated:.1f} s; {WRITERS} writers exported them to the lake "
          f"in {time.perf_counter() - t - generated:.1f} s", file=sys.stderr)
    return db, lake


def time_queries(source, repeat: int) -> dict:
    from toolctl.metrics.stats import StatsQuery, stats

    out = {}
    for name, q in QUERIES.items():
        walls = []
        for _ in range(repeat):
            t = time.perf_counter()
            rows = stats(source, StatsQuery(**q))
            walls.append(time.perf_counter() - t)
        # first_s: what one command pays (the first statement defines the views; on Spark it
        # also computes the auth walk); best_s: the query alone, warm.
        out[name] = {"best_s": min(walls), "first_s": walls[0], "rows": len(rows)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--work", default="/tmp/toolctl-bench")
    ap.add_argument("--no-spark", action="store_true")
    ap.add_argument("--spark-master", default="local[*]")
    args = ap.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    db, lake = build(work, args.events)

    from toolctl.engines import open_source, spark_session
    from toolctl.store import Store

    results = {}
    with Store.open(db, write=False) as store:
        results["duckdb file"] = time_queries(store, args.repeat)
    with open_source("duckdb", lake) as src:
        results["duckdb lake"] = time_queries(src, args.repeat)
    startup = None
    if not args.no_spark:
        t = time.perf_counter()
        spark_session(args.spark_master)
        startup = time.perf_counter() - t
        with open_source("spark", lake, args.spark_master) as src:
            results[f"spark {args.spark_master}"] = time_queries(src, args.repeat)
    lake_bytes = sum(f.stat().st_size for f in lake.rglob("*.parquet"))
    print(f"{args.events:,} events; store {db.stat().st_size / 2**20:,.0f} MiB, lake {lake_bytes / 2**20:,.0f} MiB "
          f"in {len(list(lake.rglob('*.parquet')))} files; best of {args.repeat}")
    print(f"{'engine':22s} " + " ".join(f"{q + ' best / first':>30s}" for q in QUERIES))
    for engine, r in results.items():
        print(f"{engine:22s} " + " ".join(f"{r[q]['best_s']:>20.2f}s / {r[q]['first_s']:5.2f}s" for q in QUERIES))
    if startup is not None:
        print(f"(Spark session start-up: {startup:.1f} s, not included)")
    print(json.dumps({"events": args.events, "repeat": args.repeat, "spark_startup_s": startup,
                      "results": results}))


if __name__ == "__main__":
    main()
