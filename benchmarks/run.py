"""Benchmarks: toolctl against the physical limit and a peer, as ratios measured in one run.

    python benchmarks/run.py --events 1000000                 # every case, issue 7's scale
    python benchmarks/run.py --events 20000 --repeat 1        # smoke size, every case
    python benchmarks/run.py --events 1000000 --cases ingest  # one part only

The one entry point of the suite. Each part is its own script (so it can be run and read
alone) and runs here as a subprocess, in this order, with sizes derived from --events:

  ingest   (this file)          `toolctl ingest` vs DuckDB's own read_json CTAS of the same file;
  queries  (queries.py)         stats / audit search / gate / start-up vs bare DuckDB and
                                `python -c pass`, on an --events store;
  serve    (serve.py)           `toolctl serve` under concurrent OTLP/HTTP exporters (and the
                                peer given by --peer-python, e.g. Arize Phoenix's venv);
  engines  (engines.py)         DuckDB file vs DuckDB lake vs Spark local (Spark only when
                                pyspark is importable).

Ingest: every case runs in a fresh subprocess (so peak RSS is per case) on the same generated
file; the reference is DuckDB's own `CREATE TABLE AS SELECT * FROM read_json(...)` of that
file, the practical upper bound for getting JSON lines into DuckDB. Each part prints its own
table; at the end this script prints one JSON document holding every part's document.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TOOLS = [f"tool_{i}" for i in range(20)]


def generate(path: Path, n: int, seed: int = 42) -> None:
    """~600 bytes/event, like real gateway logs: ids, args/data objects, an unknown field."""
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n):
            call = i // 2 if i % 25 == 0 else i
            error = rng.random() < 0.02
            f.write(json.dumps({
                "event_id": f"evt-{i:09d}", "ts": "2026-11-24T%02d:%02d:%02d.%03dZ" % (
                    6 + i * 6 // max(n, 1), (i // 60) % 60, i % 60, i % 1000),
                "tool": rng.choice(TOOLS), "status": "error" if error else "ok",
                "latency_ms": round(rng.lognormvariate(5, 1), 3),
                "trace_id": "%032x" % rng.getrandbits(128), "span_id": "%016x" % rng.getrandbits(64),
                "call_id": f"call-{call}", "attempt": 1 + (i % 25 == 1), "session_id": f"s-{i // 40}",
                "tenant": f"tenant-{rng.randrange(50):03d}", "user": f"user-{rng.randrange(500)}",
                "service": "gateway-eu", "version": "v1.9.0" if rng.random() < 0.1 else "v1.8.2",
                "stage": "execute", "idempotency_key": f"idem-{call}", "timeout_ms": 30000,
                **({"error_code": "UNAVAILABLE", "message": "upstream unavailable", "retryable": True,
                    "http_status": 503} if error else {"confidence": round(rng.uniform(0.7, 1), 3)}),
                "args": {"query": "status of order %d for customer" % rng.randrange(10**6), "limit": 10},
                "data": {"result": "ok", "items": rng.randrange(100)}, "region": "eu-west-1",
            }) + "\n")


def run_case(code: str, tree: str | None = None) -> tuple[float, int]:
    """Run Python code in a child process; returns (wall seconds, peak RSS bytes of the child).

    ``tree``: a checkout whose toolctl/collector the child imports instead (PYTHONPATH, and
    the child runs in it: ``python -c`` puts the working directory first on sys.path).
    """
    env = dict(os.environ, PYTHONPATH=tree) if tree else None
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", code + "\nimport resource,sys;"
         "sys.stderr.write('RSS=%d' % resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"],
        capture_output=True, text=True, env=env, cwd=tree,
    )
    wall = time.perf_counter() - started
    if proc.returncode not in (0, 3):
        raise RuntimeError(proc.stderr)
    rss_kb = int(proc.stderr.rsplit("RSS=", 1)[1])
    return wall, rss_kb * 1024


PARTS = ("ingest", "queries", "serve", "engines")
HERE = Path(__file__).resolve().parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--workdir", default=None, help="where the data and stores go (default: a temp dir)")
    ap.add_argument("--cases", default=",".join(PARTS),
                    help=f"comma-separated parts to run, of {', '.join(PARTS)} (default: all)")
    ap.add_argument("--peer-python", default=None,
                    help="serve: the Python of a venv with the peer (Arize Phoenix) installed")
    ap.add_argument("--before-tree", default=None, metavar="DIR",
                    help="ingest: also run the toolctl of this checkout (e.g. a `git worktree` of an "
                         "earlier commit), interleaved with this one, for a before/after in one run")
    args = ap.parse_args()
    parts = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        ap.error(f"unknown case(s) {', '.join(unknown)}; choose from {', '.join(PARTS)}")

    docs = {}
    for part in PARTS:
        if part not in parts:
            continue
        print(f"\n== {part} ==", flush=True)
        docs[part] = ingest_part(args) if part == "ingest" else script_part(part, args)
    print(json.dumps({"date": time.strftime("%Y-%m-%d"), "events": args.events,
                      "repeat": args.repeat, "parts": docs}))


def script_part(part: str, args: argparse.Namespace) -> dict:
    """Run benchmarks/<part>.py with sizes derived from --events; return its JSON document."""
    events, repeat = str(args.events), str(args.repeat)
    argv = {
        "queries": ["--events", events, "--repeat", repeat],
        # Serve: spans on the wire, not stored events; 200k is enough to reach a steady state.
        "serve": ["--spans", str(max(2_000, min(args.events // 5, 200_000))), "--procs", "4"]
                 + (["--peer-python", args.peer_python] if args.peer_python else []),
        "engines": ["--events", events, "--repeat", repeat]
                   + ([] if _has_module("pyspark") else ["--no-spark"]),
    }[part]
    if args.workdir and part in ("queries", "engines"):
        argv += ["--workdir" if part == "queries" else "--work", str(Path(args.workdir) / part)]
    proc = subprocess.run([sys.executable, str(HERE / f"{part}.py"), *argv],
                          stdout=subprocess.PIPE, text=True)
    sys.stdout.write(proc.stdout)
    if proc.returncode != 0:
        return {"error": f"{part}.py exited {proc.returncode}"}
    return last_json_document(proc.stdout)


def last_json_document(text: str) -> dict:
    """The last top-level JSON object in a script's output (they print a table first)."""
    decoder = json.JSONDecoder()
    for start in reversed([i for i, ch in enumerate(text) if ch == "{" and (i == 0 or text[i - 1] == "\n")]):
        try:
            doc, _ = decoder.raw_decode(text, start)
        except ValueError:
            continue
        if isinstance(doc, dict):
            return doc
    return {"error": "no JSON document in the output"}


def _has_module(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def ingest_part(args: argparse.Namespace) -> dict:
    """`toolctl ingest` against DuckDB's read_json CTAS of the same generated file."""
    work = Path(args.workdir or tempfile.mkdtemp(prefix="toolctl-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    data = work / f"events-{args.events}.jsonl"
    if not data.exists():
        generate(data, args.events)
    size = data.stat().st_size

    cases = {
        "duckdb read_json CTAS (reference)": (
            "import duckdb,os\np={db!r}\nos.path.exists(p) and os.remove(p)\n"
            "c=duckdb.connect(p); c.execute(\"CREATE TABLE t AS SELECT * FROM read_json('%s')\")" % data
        ),
        "toolctl ingest": (
            "import os,sys\np={db!r}\nos.path.exists(p) and os.remove(p)\n"
            f"sys.argv=['toolctl','--db',p,'ingest',{str(data)!r}]\n"
            "from toolctl.cli import main\ntry: main()\nexcept SystemExit as e: pass"
        ),
    }
    trees = {name: None for name in cases}
    if args.before_tree:
        before = f"toolctl ingest, before ({Path(args.before_tree).name})"
        cases[before], trees[before] = cases["toolctl ingest"], str(Path(args.before_tree).resolve())
    walls: dict[str, list[float]] = {name: [] for name in cases}
    rss: dict[str, list[int]] = {name: [] for name in cases}
    for _ in range(args.repeat):  # interleaved: a noisy minute hits every case alike
        for i, (name, template) in enumerate(cases.items()):
            db = str(work / f"bench-{i}.duckdb")
            wall, peak = run_case(template.format(db=db), trees[name])
            walls[name].append(wall)
            rss[name].append(peak)
            for suffix in ("", ".wal"):
                if os.path.exists(db + suffix):
                    os.remove(db + suffix)
    results = {name: {"median_s": statistics.median(walls[name]), "peak_rss_mb": max(rss[name]) / 2**20,
                      "runs": walls[name]} for name in cases}
    ref = results["duckdb read_json CTAS (reference)"]["median_s"]
    for r in results.values():
        r["ratio_to_reference"] = r["median_s"] / ref
        r["events_per_s"] = args.events / r["median_s"]
    doc = {"date": time.strftime("%Y-%m-%d"), "machine": f"{platform.machine()} {os.cpu_count()} cores "
           f"{platform.python_implementation()} {platform.python_version()}",
           "events": args.events, "bytes": size, "results": results}
    print(f"{args.events:,} events, {size / 2**20:,.0f} MiB, {args.repeat} run(s) each")
    print(f"{'case':40s} {'median s':>9s} {'ratio':>6s} {'events/s':>10s} {'peak RSS MiB':>13s}")
    for name, r in results.items():
        print(f"{name:40s} {r['median_s']:9.2f} {r['ratio_to_reference']:6.2f} "
              f"{r['events_per_s']:10,.0f} {r['peak_rss_mb']:13,.0f}")
    return doc


if __name__ == "__main__":
    main()
