"""Query-side benchmarks (issue 7, targets 3-5): toolctl's reads against bare DuckDB.

    python benchmarks/queries.py --events 10000000          # the issue's scale (~2 min to build once)
    python benchmarks/queries.py --events 20000 --repeat 1  # smoke size

Builds a seeded store of N tool-call events inside DuckDB (INSERT ... SELECT FROM range(N),
every field derived from hash(i, seed): no Python per row) in a file created by toolctl's own
``Store.open(write=True)``, so the schema, migrations and indexes are the real ones. The
store is cached in --workdir (keyed by N and seed) and re-migrated on every run.

Then, in one run on one machine, so ratios hold on a noisy box (medians of --repeat):
  * the bare reference: minimal hand-written SQL over ``events`` (calls, errors, error
    rate, p50/p95/p99 quantile_cont, auth failures) by tool, and by tool x tenant x version
    x hour, on an open duckdb connection (query time only), and as a fresh process (import
    duckdb, open, query, exit); and toolctl's own stats() library function run on that same
    connection, so the split SQL vs process overhead is visible;
  * ``toolctl stats`` end to end (subprocess wall time) for both groupings;
  * ``toolctl audit search --trace-id / --call-id`` end to end;
  * ``toolctl --help`` and ``toolctl stats`` on a small store, against ``python -c pass``;
  * ``toolctl gate --baseline A --candidate B`` on the N-event store;
  * with --before-tree DIR, the stats and gate commands of that checkout too, alternating
    with this one's (a before/after in one run).
Every toolctl command runs byte-compiled, as `pip install` leaves an installed toolctl (the
checkouts' packages are compiled first; without that, PYTHONDONTWRITEBYTECODE made each run
compile them again).
Prints a table and one JSON document (also written to --json-out when given).
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
T0 = "2026-11-01 00:00:00"
SPAN_DAYS = 7  # events spread evenly over a week: 168 hourly buckets

# One row per event, all fields from hash(i, seed). Retries: 1 event in 20 is attempt 2 of
# the previous event's call (same call_id, tool, tenant, version). ~2% errors, of which a
# fifth are auth failures (401 UNAUTHENTICATED / 403 PERMISSION_DENIED). Inserted in ts order,
# as ingest does (the layout the zone maps rely on).
FILL_SQL = """
INSERT INTO events
WITH r AS (
    SELECT i,
           CASE WHEN i > 0 AND hash(i, $seed, 'retry') % 20 = 0 THEN i - 1 ELSE i END AS c,
           CASE WHEN i > 0 AND hash(i, $seed, 'retry') % 20 = 0 THEN 2 ELSE 1 END AS attempt,
           hash(i, $seed, 'err') % 1000 AS e,
           (hash(i, $seed, 'lat') % 1000000 + 0.5) / 1e6 AS u
    FROM range($n) t(i)
), k AS (
    SELECT *,
           hash(c, $seed, 'tool') % 30 AS tool_no,
           hash(c, $seed, 'tenant') % 40 AS tenant_no,
           hash(c, $seed, 'version') % 4 AS version_no
    FROM r
)
SELECT
    'evt_' || substr(md5(i::VARCHAR || ':' || $seed::VARCHAR), 1, 24) AS event_id,
    TIMESTAMP '2026-11-01 00:00:00' + to_microseconds((i * ($span_us // $n))::BIGINT) AS ts,
    'tool_' || lpad(tool_no::VARCHAR, 2, '0') AS tool,
    CASE WHEN e < 20 THEN 'error' ELSE 'ok' END AS status,
    round(5 + (20 + 4 * tool_no) * -ln(1 - u) + CASE WHEN u > 0.99 THEN 800 * u ELSE 0 END, 3) AS latency_ms,
    1 AS schema_version,
    md5('trace:' || (c // 3)::VARCHAR || ':' || $seed::VARCHAR) AS trace_id,
    substr(md5('span:' || i::VARCHAR || ':' || $seed::VARCHAR), 1, 16) AS span_id,
    'call_' || substr(md5('call:' || c::VARCHAR || ':' || $seed::VARCHAR), 1, 20) AS call_id,
    'sess_' || (c // 40)::VARCHAR AS session_id,
    'tenant-' || lpad(tenant_no::VARCHAR, 3, '0') AS tenant,
    'user-' || (hash(c, $seed, 'user') % 2000)::VARCHAR AS user_id,
    'gateway-eu' AS service,
    ['v1.8.2', 'v1.9.0', 'v1.9.1', 'v2.0.0'][(version_no + 1)::BIGINT] AS version,
    'execute' AS stage,
    attempt,
    'idem_' || substr(md5('idem:' || c::VARCHAR || ':' || $seed::VARCHAR), 1, 20) AS idempotency_key,
    30000.0 AS timeout_ms,
    CASE WHEN e < 2 THEN 'UNAUTHENTICATED' WHEN e < 4 THEN 'PERMISSION_DENIED'
         WHEN e < 12 THEN 'UNAVAILABLE' WHEN e < 20 THEN 'TIMEOUT' END AS error_code,
    CASE WHEN e < 20 THEN 'upstream call failed' END AS message,
    CASE WHEN e < 4 THEN false WHEN e < 20 THEN true END AS retryable,
    CASE WHEN e < 2 THEN 401 WHEN e < 4 THEN 403 WHEN e < 12 THEN 503 WHEN e < 20 THEN 504 END AS http_status,
    CASE WHEN e >= 20 THEN round(0.7 + (e % 300) / 1000.0, 3) END AS confidence,
    ('{"query":"status of order ' || (hash(i, $seed, 'q') % 1000000)::VARCHAR || '","limit":10}')::JSON AS args,
    CASE WHEN e >= 20 THEN ('{"items":' || (e % 100)::VARCHAR || '}')::JSON END AS data,
    '{"region":"eu-west-1"}'::JSON AS extra,
    1 AS batch_id,
    'bench' AS source,
    i + 1 AS line_no
FROM k
ORDER BY i
"""

# The bare DuckDB reference: the same figures, written the shortest way over the events table.
# A call is a call_id (every generated event has one); its final attempt decides its status.
REF_SQL = """
WITH calls AS (
    SELECT {dims}, call_id, arg_max(status, attempt) AS final_status
    FROM events GROUP BY ALL
), c AS (
    SELECT {dims}, count(*) AS calls, count(*) FILTER (WHERE final_status = 'error') AS errors
    FROM calls GROUP BY ALL
), a AS (
    SELECT {dims}, count(*) AS attempts,
           count(*) FILTER (WHERE http_status IN (401, 403)
                            OR error_code IN ('UNAUTHENTICATED', 'PERMISSION_DENIED')) AS auth_failures,
           quantile_cont(latency_ms, [0.5, 0.95, 0.99]) AS q
    FROM events GROUP BY ALL
)
SELECT {dims_a}, c.calls, c.errors, c.errors / c.calls AS error_rate, a.auth_failures,
       a.q[1] AS p50_ms, a.q[2] AS p95_ms, a.q[3] AS p99_ms
FROM a JOIN c USING ({dims})
"""
REF_DIMS = {
    "by_tool": ("tool",),
    "4dim_hourly": ("tool", "tenant", "version", "date_trunc('hour', ts) AS bucket"),
}


#: One bare query in a fresh process: argv[1] the store, argv[2] the SQL (ref_sql's constants).
BARE_PROCESS = ("import sys, duckdb; c = duckdb.connect(sys.argv[1], read_only=True); "
                "c.execute(\"SET TimeZone = 'UTC'\"); c.execute(sys.argv[2]).fetchall(); c.close()")


def ref_sql(kind: str) -> str:
    """Fixed dimension lists (constants above), never user text."""
    dims = REF_DIMS[kind]
    names = [d.split(" AS ")[-1] for d in dims]
    if kind == "by_tool":
        return REF_SQL.format(dims="tool", dims_a="a.tool")
    # time bucket computed once in a subquery so GROUP BY ALL sees a plain column
    src = "(SELECT *, date_trunc('hour', ts) AS bucket FROM events)"
    return REF_SQL.replace("FROM events", "FROM " + src).format(
        dims=", ".join(names), dims_a=", ".join("a." + n for n in names))


def build_store(path: Path, n: int, seed: int) -> float:
    """Create (or re-migrate) the cached store; returns seconds spent building (0 if cached)."""
    from toolctl.store import Store

    if path.exists():
        with Store.open(path, write=True):  # applies migrations added since the cache was built
            pass
        return 0.0
    tmp = path.with_suffix(".building")
    for p in (tmp, Path(str(tmp) + ".wal")):
        p.unlink(missing_ok=True)
    started = time.perf_counter()
    with Store.open(tmp, write=True) as store:
        store.execute("INSERT INTO batches VALUES (1, 'file', 'bench', 1, $n, $n, $n, 0, 0, now()::TIMESTAMP)",
                      {"n": n}).fetchall()
        store.execute(FILL_SQL, {"n": n, "seed": seed, "span_us": SPAN_DAYS * 86_400 * 1_000_000}).fetchall()
        # The batch's ledger entry, as ingest writes it: without one, the first command that
        # appends to the ledger (gate) would digest every stored row (minutes at 10M).
        from toolctl.audit.ledger import record_batch

        with store.transaction():
            record_batch(store, 1, kind="file", source="bench")
        store.execute("CHECKPOINT").fetchall()
    tmp.rename(path)
    return time.perf_counter() - started


def read_through(path: Path) -> None:
    """Read the file once, so the OS page cache holds it before a timed run.

    Some hosts reclaim page cache in the background (on the machine of the 2026-12-03
    runs a 2.8 GB store fell out of it within minutes, and a cold read costs ~9 s): without
    this, whichever case runs after a reclaim pays for it, and before/after comparisons
    drift. ~0.4 s when the file is already cached.
    """
    with open(path, "rb") as f:
        while f.read(16 << 20):
            pass


def median_of(fn, repeat: int, before=None) -> float:
    times = []
    for _ in range(repeat):
        if before is not None:
            before()  # not timed
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def run_cli(args: list[str], env: dict, expect: tuple[int, ...] = (0,), cwd: str | None = None) -> None:
    proc = subprocess.run(args, capture_output=True, env=env, cwd=cwd)
    if proc.returncode not in expect:
        raise SystemExit(f"{' '.join(args)} exited {proc.returncode}:\n{proc.stderr.decode()[-2000:]}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--workdir", default=os.environ.get("TMPDIR", "/tmp") + "/toolctl-bench-queries")
    ap.add_argument("--json-out", default=None)
    ap.add_argument("--before-tree", default=None, metavar="DIR",
                    help="also time stats and gate with the toolctl of this checkout (e.g. a `git "
                         "worktree` of an earlier commit), alternating with this one")
    args = ap.parse_args()
    sys.path.insert(0, str(REPO))
    import duckdb

    from toolctl.metrics.stats import StatsQuery, stats
    from toolctl.store import Store

    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    big = work / f"events-{args.events}-s{args.seed}.duckdb"
    small = work / f"events-2000-s{args.seed}.duckdb"
    build_s = build_store(big, args.events, args.seed)
    build_store(small, 2000, args.seed)
    print(f"store: {big} ({big.stat().st_size / 2**20:,.0f} MiB; built in {build_s:.1f} s)"
          if build_s else f"store: {big} (cached, {big.stat().st_size / 2**20:,.0f} MiB)", file=sys.stderr)

    # toolctl as `pip install` leaves it: byte-compiled. Where PYTHONDONTWRITEBYTECODE is set
    # (this machine's environment sets it), a checkout's modules are otherwise compiled again
    # on every run: measured 40-80 ms of each command's start-up that no installed toolctl pays.
    for tree in filter(None, (REPO, args.before_tree)):
        for package in ("toolctl", "collector"):
            compileall.compile_dir(str(Path(tree) / package), quiet=1)
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               NO_COLOR="1", TOOLCTL_PROFILE="")
    env.pop("TOOLCTL_DB", None)
    tc = [sys.executable, "-m", "toolctl"]
    r = args.repeat
    res: dict[str, float] = {}

    # Pick ids and versions that exist.
    con = duckdb.connect(str(big), read_only=True)
    con.execute("SET TimeZone = 'UTC'")
    trace_id, call_id = con.execute(
        "SELECT trace_id, call_id FROM events WHERE line_no = $k", {"k": args.events // 2 + 1}).fetchall()[0]
    versions = [v for (v,) in con.execute("SELECT DISTINCT version FROM events ORDER BY 1").fetchall()]
    baseline, candidate = versions[0], versions[1]

    # -- bare DuckDB on one open connection (query time only) ---------------------------
    tc_params = {"since": None, "until": None, "every": None, "tool": None, "tenant": None,
                 "version": None, "service": None, "status": None}
    warm = Store(con, big, read_only=True)  # the library function, on this open connection
    for kind, dims, every in (("by_tool", ["tool"], None),
                              ("4dim_hourly", ["tool", "tenant", "version"], timedelta(hours=1))):
        sql = ref_sql(kind)
        con.execute(sql).fetchall()  # warm the buffer pool once; every case below is warm
        res[f"bare_ref_{kind}"] = median_of(lambda: con.execute(sql).fetchall(), r)
        q = StatsQuery(by=dims, every=every)
        res[f"bare_toolctl_sql_{kind}"] = median_of(lambda: stats(warm, q), r)
    con.close()

    db = ["--db", str(big)]
    res["python_pass"] = median_of(lambda: run_cli([sys.executable, "-c", "pass"], env), r)
    # The same bare SQL as a whole process (import duckdb, open the file, run, fetch, exit):
    # what any fresh process pays before and after the query, toolctl or not (the buffer
    # pool starts cold; the OS page cache is warm from the runs above).
    for kind in ("by_tool", "4dim_hourly"):
        argv = [sys.executable, "-c", BARE_PROCESS, str(big), ref_sql(kind)]
        res[f"bare_process_{kind}"] = median_of(lambda: run_cli(argv, env), r, lambda: read_through(big))
    res["cli_help"] = median_of(lambda: run_cli(tc + ["--help"], env), r)
    res["cli_stats_small"] = median_of(lambda: run_cli(tc + ["--db", str(small), "stats"], env), r)
    heavy = {  # timed alternately with --before-tree's toolctl, when given
        "cli_stats_by_tool": (["stats", "--by", "tool", "--format", "json"], (0,)),
        "cli_stats_4dim_hourly": (["stats", "--by", "tool", "--by", "tenant", "--by", "version",
                                   "--every", "1h", "--format", "json"], (0,)),
        "cli_gate": (["gate", "--baseline", baseline, "--candidate", candidate,
                      "--until", "2026-11-08T00:00:00Z", "--format", "json"], (0, 10, 20, 30)),
    }
    trees = {"": (env, None)}
    if args.before_tree:
        before = str(Path(args.before_tree).resolve())
        trees["_before"] = (dict(env, PYTHONPATH=before), before)  # python -m: cwd first on sys.path
    times: dict[str, list[float]] = {}
    for _ in range(r):
        for name, (argv, expect) in heavy.items():
            for suffix, (tree_env, cwd) in trees.items():
                read_through(big)  # not timed: every run starts from a warm OS page cache
                started = time.perf_counter()
                run_cli(tc + db + argv, tree_env, expect=expect, cwd=cwd)
                times.setdefault(name + suffix, []).append(time.perf_counter() - started)
    res.update({k: statistics.median(v) for k, v in times.items()})
    res["cli_audit_trace_id"] = median_of(
        lambda: run_cli(tc + db + ["audit", "search", "--trace-id", trace_id, "--format", "json"], env), r,
        lambda: read_through(big))
    res["cli_audit_call_id"] = median_of(
        lambda: run_cli(tc + db + ["audit", "search", "--call-id", call_id, "--format", "json"], env), r,
        lambda: read_through(big))

    targets = [
        ("stats --by tool", res["cli_stats_by_tool"], res["bare_ref_by_tool"] + 0.4,
         "<= bare + 0.4 s"),
        ("stats 4-dim hourly", res["cli_stats_4dim_hourly"], 1.3 * res["bare_ref_4dim_hourly"],
         "<= 1.3 x bare"),
        # The same two against the bare query run as a fresh process: toolctl's own overhead.
        ("stats --by tool", res["cli_stats_by_tool"], res["bare_process_by_tool"] + 0.4,
         "<= bare process + 0.4 s"),
        ("stats 4-dim hourly", res["cli_stats_4dim_hourly"], 1.3 * res["bare_process_4dim_hourly"],
         "<= 1.3 x bare process"),
        ("audit --trace-id", res["cli_audit_trace_id"], 0.1 + res["cli_help"], "<= 0.1 s + startup"),
        ("audit --call-id", res["cli_audit_call_id"], 0.1 + res["cli_help"], "<= 0.1 s + startup"),
        # The same lookups against the start-up of a command that also imports duckdb and
        # pydantic and opens a store (`--help` does neither): what "startup" costs a lookup.
        ("audit --trace-id", res["cli_audit_trace_id"], 0.1 + res["cli_stats_small"],
         "<= 0.1 s + store-opening startup"),
        ("audit --call-id", res["cli_audit_call_id"], 0.1 + res["cli_stats_small"],
         "<= 0.1 s + store-opening startup"),
        ("--help", res["cli_help"], 0.25, "<= 0.25 s"),
        ("stats, small store", res["cli_stats_small"], 0.5, "<= 0.5 s"),
        ("gate", res["cli_gate"], 3.0, "<= 3 s"),
    ]
    rows = [
        ("bare DuckDB reference SQL, by tool", res["bare_ref_by_tool"], None),
        ("toolctl stats() on the same connection, by tool", res["bare_toolctl_sql_by_tool"],
         res["bare_toolctl_sql_by_tool"] / res["bare_ref_by_tool"]),
        ("bare DuckDB reference SQL, by tool, as a fresh process", res["bare_process_by_tool"],
         res["bare_process_by_tool"] / res["bare_ref_by_tool"]),
        ("`toolctl stats --by tool --format json`", res["cli_stats_by_tool"],
         res["cli_stats_by_tool"] / res["bare_ref_by_tool"]),
        ("bare DuckDB reference SQL, tool x tenant x version x hour", res["bare_ref_4dim_hourly"], None),
        ("toolctl stats() on the same connection, 4-dim hourly", res["bare_toolctl_sql_4dim_hourly"],
         res["bare_toolctl_sql_4dim_hourly"] / res["bare_ref_4dim_hourly"]),
        ("bare DuckDB reference SQL, 4-dim hourly, as a fresh process", res["bare_process_4dim_hourly"],
         res["bare_process_4dim_hourly"] / res["bare_ref_4dim_hourly"]),
        ("`toolctl stats` 4-dim hourly --format json", res["cli_stats_4dim_hourly"],
         res["cli_stats_4dim_hourly"] / res["bare_ref_4dim_hourly"]),
        ("`python -c pass`", res["python_pass"], None),
        ("`toolctl --help`", res["cli_help"], res["cli_help"] / res["python_pass"]),
        ("`toolctl stats` on a 2,000-event store", res["cli_stats_small"],
         res["cli_stats_small"] / res["python_pass"]),
        ("`toolctl audit search --trace-id`", res["cli_audit_trace_id"],
         res["cli_audit_trace_id"] / res["python_pass"]),
        ("`toolctl audit search --call-id`", res["cli_audit_call_id"],
         res["cli_audit_call_id"] / res["python_pass"]),
        (f"`toolctl gate --baseline {baseline} --candidate {candidate}`", res["cli_gate"], None),
    ]
    if args.before_tree:
        name = Path(args.before_tree).name
        rows += [(f"`toolctl stats --by tool`, before ({name})", res["cli_stats_by_tool_before"],
                  res["cli_stats_by_tool_before"] / res["bare_ref_by_tool"]),
                 (f"`toolctl stats` 4-dim hourly, before ({name})", res["cli_stats_4dim_hourly_before"],
                  res["cli_stats_4dim_hourly_before"] / res["bare_ref_4dim_hourly"]),
                 (f"`toolctl gate`, before ({name})", res["cli_gate_before"], None)]
    print(f"\n{args.events:,} events, median of {r}; ratio vs the bare reference (stats) or "
          "`python -c pass` (start-up, audit)\n")
    print("| case | median s | ratio |\n|---|---:|---:|")
    for name, s, ratio in rows:
        print(f"| {name} | {s:.3f} | {'' if ratio is None else f'{ratio:.2f}'} |")
    print("\n| target | measured s | limit s | met |\n|---|---:|---:|---|")
    for name, got, limit, rule in targets:
        print(f"| {name} ({rule}) | {got:.3f} | {limit:.3f} | {'yes' if got <= limit else 'NO'} |")
    doc = {
        "date": time.strftime("%Y-%m-%d"), "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "python": platform.python_version(), "duckdb": duckdb.__version__,
        "events": args.events, "repeat": r, "store_mib": round(big.stat().st_size / 2**20, 1),
        "seconds": {k: round(v, 4) for k, v in res.items()},
        "targets": [{"case": n, "rule": rule, "measured_s": round(g, 4), "limit_s": round(lim, 4),
                     "met": g <= lim} for n, g, lim, rule in targets],
    }
    text = json.dumps(doc, indent=2)
    print("\n" + text)
    if args.json_out:
        Path(args.json_out).write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
