"""Benchmark: `toolctl serve` under concurrent real OTLP/HTTP protobuf exporters, next to a peer.

    python benchmarks/serve.py --spans 200000 --procs 4                  # as fast as they can
    python benchmarks/serve.py --spans 200000 --procs 4 --rate 20000     # a fixed offered rate
    python benchmarks/serve.py --spans 2000 --procs 2                    # smoke size
    python benchmarks/serve.py --spans 50000 --peer-python /tmp/phoenix-venv/bin/python
    python benchmarks/serve.py --spans 300000 --procs 8 --preload 3000000   # a grown store
    python benchmarks/serve.py --tree /tmp/before ...     # the toolctl of another checkout

Each target is started as a subprocess on 127.0.0.1 (ephemeral port, fresh store in a temp
dir). K load processes (multiprocessing) each build their share of GenAI ``execute_tool``
spans ahead of time as SDK ``ReadableSpan`` objects (an agent root per trace, tool calls with
~20 attributes, HTTP children, some of them 401 auth failures), then wait for a common start
and hand batches of ``--batch`` spans (the BatchSpanProcessor's 512) to the real
``OTLPSpanExporter`` one after another, as a BatchSpanProcessor's worker thread does.
Every HTTP answer is counted through a ``requests`` response hook on the exporter's session,
so 503s and the exporter's own retries show up.

Measured per target: offered rate (spans handed to exporters / time to hand them over),
spans acknowledged (export() == SUCCESS, i.e. a 2xx), failed exports, 503s, end-to-end
spans/s (acknowledged spans / time from the common start to the last 2xx), and the spans
found in the target's store after it stopped; for toolctl that count must equal the
acknowledged count (2xx = durable). Prints a table and one JSON document on stdout.

The reference, run first on the same load: a receiver on the same uvicorn stack that reads
each body and answers 200 with nothing stored (``NULL_RECEIVER``), i.e. what the exporters
and the HTTP path alone reach on this machine; ``toolctl serve / null receiver`` is printed
as a ratio. ``--preload N`` starts toolctl on a store already holding N spans (the stored
count reported is the load's only), ``--tree DIR`` runs another checkout's toolctl.

The peer is Arize Phoenix (``phoenix serve``, default SQLite store), run from a separate
venv given by ``--peer-python``; it is skipped with a message if that interpreter or its
``phoenix`` package is missing. Phoenix inserts asynchronously, so its stored count is read
from its SQLite file once the count stops growing, and its end-to-end time runs to then.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import random
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
TOOLS = ["search_web", "read_file", "write_file", "run_sql", "send_email", "http_get",
         "list_issues", "create_ticket", "fetch_weather", "translate_text", "calendar_lookup",
         "vector_search"]
TENANTS = [f"tenant-{i:02d}" for i in range(8)]
SERVICES = ["agent-gateway", "support-agent", "coding-agent"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- load ------------------------------------------------------------------------------------
def build_batches(seed: int, n_spans: int, batch_size: int) -> list[list]:
    """``n_spans`` SDK ReadableSpans (unique ids, seeded) in export batches of ``batch_size``.

    Per trace: one ``invoke_agent`` root, 1-5 ``execute_tool`` spans under it (~20
    attributes each: tool name, call id, JSON args, tenant, session, user, …), and under
    each tool span one HTTP CLIENT child; 3% of those children answer 401 (auth failure)."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.sdk.util.instrumentation import InstrumentationScope
    from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

    rng = random.Random(seed)
    resources = [Resource.create({"service.name": s, "service.version": f"1.{i}.0",
                                  "deployment.environment": "bench", "host.name": f"host-{i}"})
                 for i, s in enumerate(SERVICES)]
    scope = InstrumentationScope("toolctl.bench", "1.0")
    flags = TraceFlags(TraceFlags.SAMPLED)
    spans: list = []
    t0 = 1_795_000_000_000_000_000 + seed * 10**12
    trace_no = 0
    while len(spans) < n_spans:
        trace_no += 1
        trace_id = rng.getrandbits(128) | 1
        resource = resources[trace_no % len(resources)]
        root_ctx = SpanContext(trace_id, rng.getrandbits(64) | 1, False, flags)
        start = t0 + trace_no * 50_000_000
        session = f"sess-{seed}-{trace_no // 3}"
        tenant = rng.choice(TENANTS)
        tool_spans = []
        for k in range(rng.randint(1, 5)):
            tool = rng.choice(TOOLS)
            ctx = SpanContext(trace_id, rng.getrandbits(64) | 1, False, flags)
            ts = start + k * 5_000_000
            latency = int(rng.lognormvariate(15, 0.8))
            auth_fail = rng.random() < 0.03
            error = auth_fail or rng.random() < 0.02
            attrs = {
                "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": tool,
                "gen_ai.tool.call.id": f"call_{seed}_{trace_no}_{k}",
                "gen_ai.tool.type": "function",
                "gen_ai.tool.description": f"{tool} as exposed to the agent",
                "gen_ai.tool.call.arguments": json.dumps(
                    {"query": f"q{rng.randint(0, 10**6)}", "limit": rng.randint(1, 50),
                     "filters": {"lang": "en", "since": "2026-11-01"}}),
                "gen_ai.tool.call.result": json.dumps({"ok": not error, "items": rng.randint(0, 9)}),
                "gen_ai.conversation.id": session, "gen_ai.agent.name": "support-agent",
                "gen_ai.system": "openai", "gen_ai.request.model": "gpt-4.1-mini",
                "session.id": session, "user.id": f"user-{rng.randint(1, 500)}",
                "tenant.id": tenant, "toolctl.attempt": 1 + (rng.random() < 0.05),
                "toolctl.idempotency_key": f"idem-{seed}-{trace_no}-{k}",
                "toolctl.retryable": rng.random() < 0.5,
                "toolctl.confidence": round(rng.random(), 3),
                "code.function": f"tools.{tool}", "thread.id": rng.randint(1, 64),
            }
            if error:
                attrs["error.type"] = "401" if auth_fail else "tool_error"
            tool_spans.append(ReadableSpan(
                f"execute_tool {tool}", context=ctx, parent=root_ctx, resource=resource,
                attributes=attrs, kind=SpanKind.INTERNAL, start_time=ts, end_time=ts + latency,
                status=Status(StatusCode.ERROR if error else StatusCode.UNSET),
                instrumentation_scope=scope))
            child = SpanContext(trace_id, rng.getrandbits(64) | 1, False, flags)
            tool_spans.append(ReadableSpan(
                "POST", context=child, parent=ctx, resource=resource, kind=SpanKind.CLIENT,
                attributes={"http.request.method": "POST", "url.full": f"https://api.example.com/{tool}",
                            "server.address": "api.example.com",
                            "http.response.status_code": 401 if auth_fail else 200},
                start_time=ts + 1000, end_time=ts + latency - 1000,
                status=Status(StatusCode.ERROR if auth_fail else StatusCode.UNSET),
                instrumentation_scope=scope))
        end = start + 5_000_000 * len(tool_spans) + 10_000_000
        root = ReadableSpan("invoke_agent support-agent", context=root_ctx, resource=resource,
                            attributes={"gen_ai.operation.name": "invoke_agent",
                                        "gen_ai.agent.name": "support-agent", "session.id": session,
                                        "tenant.id": tenant},
                            kind=SpanKind.SERVER, start_time=start, end_time=end,
                            instrumentation_scope=scope)
        spans.append(root)
        spans.extend(tool_spans)
    spans = spans[:n_spans]
    return [spans[i:i + batch_size] for i in range(0, len(spans), batch_size)]


def load_worker(idx: int, url: str, n_spans: int, batch_size: int, rate: float, seed: int,
                encode: str, ready: mp.Barrier, out: mp.Queue) -> None:
    """One exporter process: build, wait for the common start, export batch after batch.

    ``encode='ahead'``: each batch is serialized before the start by the SDK's own encoder
    (``encode_spans``, exactly what ``OTLPSpanExporter.export`` runs) and sent through the
    exporter's own HTTP client (its retries, backoff, headers and session), so the load
    generator costs little CPU next to the server on a small machine. ``'export'``: every
    batch goes through ``exporter.export(spans)`` (encoding ~170 µs a span in the process)."""
    import logging

    import requests
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import SpanExportResult

    logging.getLogger("opentelemetry").setLevel(logging.CRITICAL)
    batches = build_batches(seed * 1000 + idx, n_spans, batch_size)
    statuses: dict[str, int] = {}

    def count(resp, *args, **kwargs):
        statuses[str(resp.status_code)] = statuses.get(str(resp.status_code), 0) + 1

    session = requests.Session()
    session.hooks["response"].append(count)
    exporter = OTLPSpanExporter(endpoint=url, session=session, timeout=60)
    if encode == "ahead":
        from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

        client = getattr(exporter, "_client", None)
        if client is None or not hasattr(client, "export"):
            raise SystemExit("this opentelemetry-exporter-otlp-proto-http has no _client.export: "
                             "use --encode export")
        payloads = [encode_spans(b).SerializePartialToString() for b in batches]

        def send(i: int) -> bool:
            return client.export(payloads[i]).success
    else:
        def send(i: int) -> bool:
            return exporter.export(batches[i]) is SpanExportResult.SUCCESS
    ready.wait()
    t_start = time.time()
    acked = failed = 0
    last_ok = t_start
    sent = 0
    for i, batch in enumerate(batches):
        if rate > 0:  # pacing: batch i is due at start + sent / rate
            due = t_start + sent / rate
            delay = due - time.time()
            if delay > 0:
                time.sleep(delay)
        sent += len(batch)
        if send(i):
            acked += len(batch)
            last_ok = time.time()
        else:
            failed += len(batch)
    t_done = time.time()
    exporter.shutdown()
    out.put({"idx": idx, "t_start": t_start, "t_done": t_done, "last_ok": last_ok,
             "sent": sent, "acked": acked, "failed": failed, "statuses": statuses})


def run_load(url: str, n_spans: int, procs: int, batch_size: int, rate: float, seed: int,
             encode: str) -> dict:
    ctx = mp.get_context("spawn")
    ready = ctx.Barrier(procs + 1)
    out = ctx.Queue()
    share = [n_spans // procs + (1 if i < n_spans % procs else 0) for i in range(procs)]
    workers = [ctx.Process(target=load_worker, args=(i, url, share[i], batch_size,
                                                     rate / procs if rate else 0.0, seed, encode, ready, out))
               for i in range(procs)]
    for w in workers:
        w.start()
    ready.wait()  # every process has built its spans
    t0 = time.time()
    results = [out.get() for _ in workers]
    for w in workers:
        w.join()
    statuses: dict[str, int] = {}
    for r in results:
        for k, v in r["statuses"].items():
            statuses[k] = statuses.get(k, 0) + v
    sent = sum(r["sent"] for r in results)
    t_last_send = max(r["t_done"] for r in results)
    return {
        "t0": t0, "sent": sent, "acked": sum(r["acked"] for r in results),
        "failed": sum(r["failed"] for r in results), "statuses": statuses,
        "last_ok": max(r["last_ok"] for r in results),
        "offered_per_s": sent / max(t_last_send - t0, 1e-9),
    }


# -- targets ---------------------------------------------------------------------------------
def wait_http(url: str, proc: subprocess.Popen, timeout: float, what: str) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited {proc.returncode} before answering {url}")
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"{what} did not answer {url} within {timeout:.0f} s")
        time.sleep(0.2)


def e2e_rate(load: dict, spans: int, end: float | None = None) -> float:
    """End-to-end spans/s: ``spans`` over the time from the common start to ``end`` (default:
    the last 2xx answer)."""
    return spans / max((load["last_ok"] if end is None else end) - load["t0"], 1e-9)


def load_then_stop(proc: subprocess.Popen, log: Any, base: str, health: str, what: str,
                   args: argparse.Namespace) -> tuple[dict, int]:
    """Wait until ``proc`` answers ``health``, run the load at its /v1/traces, stop it (SIGTERM).
    Returns the load's figures and the process's exit code."""
    try:
        wait_http(base + health, proc, 60, what)
        load = run_load(base + "/v1/traces", args.spans, args.procs, args.batch, args.rate, args.seed,
                        args.encode)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=300)
        log.close()
    return load, code


#: --preload: spans already in the store before the load starts (a collector that has run for
#: a while), built inside DuckDB from range(N), in start order. Ids are md5 hex, spread over
#: the whole key space as real ids are (so no batch's key range can skip the stored ones).
PRELOAD_SQL = """
INSERT INTO spans (trace_id, span_id, parent_span_id, name, kind, start_ns, end_ns, start_time,
                   status_code, service, auth_signal, tool_rule, tool, status, latency_ms,
                   call_id, tenant, attempt, batch_id, source)
SELECT md5('preload-trace-' || (i // 4)), left(md5('preload-span-' || i), 16), NULL,
       'execute_tool preload', 1,
       $t0 + i * 1000, $t0 + i * 1000 + 5000000, make_timestamp_ns($t0 + i * 1000), 0,
       'preload', false, 'genai', 'preload_tool', 'ok', 5.0, printf('pre-%d', i), 'tenant-00', 1,
       $b, 'preload'
FROM range($n) t(i)
"""


def preload_store(db: Path, n: int) -> None:
    """A store that already holds ``n`` spans (see PRELOAD_SQL), checkpointed."""
    sys.path.insert(0, str(REPO))
    from toolctl.store import Store

    from toolctl.audit.ledger import record_batch
    from toolctl.store.writer import next_batch_id

    with Store.open(db, write=True) as store:
        with store.transaction():  # one batch, with its ledger entry, as an ingest writes it
            batch_id = next_batch_id(store)
            store.execute("INSERT INTO batches VALUES ($b, 'otlp_file', 'preload', NULL, NULL, $n, $n, 0, 0, "
                          "now()::TIMESTAMP)", {"b": batch_id, "n": n}).fetchall()
            store.execute(PRELOAD_SQL, {"n": n, "b": batch_id, "t0": 1_790_000_000_000_000_000}).fetchall()
            record_batch(store, batch_id, kind="otlp_file", source="preload", batch_kind="span_batch")
        store.execute("CHECKPOINT").fetchall()


def bench_toolctl(args: argparse.Namespace, work: Path) -> dict:
    import duckdb

    db = work / "serve.duckdb"
    if args.preload:
        started = time.perf_counter()
        preload_store(db, args.preload)
        print(f"  preloaded {args.preload:,} spans in {time.perf_counter() - started:.1f} s",
              file=sys.stderr, flush=True)
    port = free_port()
    tree = Path(args.tree).resolve() if args.tree else REPO  # python -m: the cwd's toolctl first
    env = dict(os.environ, PYTHONPATH=str(tree) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    log = open(work / "toolctl-serve.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "toolctl", "--db", str(db), "serve",
                             "--port", str(port), *args.serve_arg],
                            stdout=log, stderr=subprocess.STDOUT, env=env, cwd=tree)
    load, code = load_then_stop(proc, log, f"http://127.0.0.1:{port}", "/healthz", "toolctl serve", args)
    if code != 0:
        raise RuntimeError(f"toolctl serve exited {code}: see {work / 'toolctl-serve.log'}")
    con = duckdb.connect(str(db), read_only=True)
    try:
        stored = con.execute("SELECT count(*) FROM spans").fetchone()[0] - args.preload
        calls = con.execute("SELECT count(*) FROM tool_calls WHERE auth_failure").fetchone()[0]
    finally:
        con.close()
    return {**load, "stored": stored, "auth_failure_calls": calls,
            "e2e_per_s": e2e_rate(load, load["acked"])}


#: The reference receiver: reads each request's body and answers 200 with an empty
#: ExportTraceServiceResponse (what a receiver that stores nothing sends), on the same
#: uvicorn/HTTP stack as `toolctl serve`. It measures what the load generator and the HTTP
#: path alone reach on this machine: the ceiling any receiver could show on it.
NULL_RECEIVER = """
import sys, uvicorn
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    more = True
    while more:
        msg = await receive()
        more = msg.get("more_body", False)
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/x-protobuf"), (b"content-length", b"0")]})
    await send({"type": "http.response.body", "body": b""})
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
"""


def bench_null(args: argparse.Namespace, work: Path) -> dict:
    port = free_port()
    log = open(work / "null-receiver.log", "wb")
    proc = subprocess.Popen([sys.executable, "-c", NULL_RECEIVER, str(port)], stdout=log,
                            stderr=subprocess.STDOUT)
    load, _ = load_then_stop(proc, log, f"http://127.0.0.1:{port}", "/", "the null receiver", args)
    return {**load, "stored": None, "e2e_per_s": e2e_rate(load, load["acked"])}


PHOENIX_COUNT = "SELECT count(*) FROM spans"


def phoenix_count(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            return con.execute(PHOENIX_COUNT).fetchone()[0]
        finally:
            con.close()
    except sqlite3.Error:
        return 0


def bench_phoenix(args: argparse.Namespace, work: Path) -> dict | str:
    py = args.peer_python
    if not py or not Path(py).exists():
        return f"skipped: no peer interpreter ({py or 'pass --peer-python /tmp/phoenix-venv/bin/python'})"
    if subprocess.run([py, "-c", "import phoenix"], capture_output=True).returncode != 0:
        return f"skipped: {py} has no `phoenix` package (pip install arize-phoenix into that venv)"
    pdir = work / "phoenix"
    pdir.mkdir()
    port, grpc = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PHOENIX_", "PYTHONPATH"))}
    env.update(PHOENIX_WORKING_DIR=str(pdir), PHOENIX_PORT=str(port), PHOENIX_HOST="127.0.0.1",
               PHOENIX_GRPC_PORT=str(grpc), PHOENIX_TELEMETRY_ENABLED="false",
               DO_NOT_TRACK="1")
    log = open(work / "phoenix.log", "wb")
    proc = subprocess.Popen([py, "-m", "phoenix.server.main", "serve"], stdout=log,
                            stderr=subprocess.STDOUT, env=env, cwd=pdir, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    db = pdir / "phoenix.db"
    try:
        wait_http(base + "/healthz", proc, 180, "phoenix serve")
        load = run_load(base + "/v1/traces", args.spans, args.procs, args.batch, args.rate, args.seed,
                        args.encode)
        # Phoenix answers before it inserts: wait until the stored count stops growing.
        last, stable_since, t_last_growth = -1, time.time(), time.time()
        deadline = time.time() + args.peer_drain_s
        while time.time() < deadline:
            n = phoenix_count(db)
            if n != last:
                last, stable_since, t_last_growth = n, time.time(), time.time()
            if n >= load["acked"] or time.time() - stable_since > args.peer_idle_s:
                break
            time.sleep(0.5)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()
    stored = phoenix_count(db)
    end = max(load["last_ok"], t_last_growth if stored else load["last_ok"])
    return {**load, "stored": stored, "e2e_per_s": e2e_rate(load, min(load["acked"], stored), end)}


# -- report ----------------------------------------------------------------------------------
def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--spans", type=int, default=200_000, help="spans in total, across all processes")
    p.add_argument("--procs", type=int, default=4, help="concurrent exporter processes")
    p.add_argument("--batch", type=int, default=512, help="spans per export (BatchSpanProcessor: 512)")
    p.add_argument("--rate", type=float, default=0.0,
                   help="offered spans/s in total (0: each exporter sends as fast as answered)")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--encode", choices=("ahead", "export"), default="ahead",
                   help="ahead: SDK-encode batches before the start, send via the exporter's client; "
                        "export: call exporter.export(spans) per batch")
    p.add_argument("--peer-python", default=None,
                   help="python of a venv with arize-phoenix (e.g. /tmp/phoenix-venv/bin/python)")
    p.add_argument("--peer-drain-s", type=float, default=600.0,
                   help="longest wait for the peer's asynchronous inserts after the load")
    p.add_argument("--peer-idle-s", type=float, default=60.0,
                   help="stop waiting for the peer's inserts after its count has not grown this long")
    p.add_argument("--serve-arg", action="append", default=[], help="extra `toolctl serve` option")
    p.add_argument("--keep", action="store_true", help="keep the temp dir (stores and logs)")
    p.add_argument("--preload", type=int, default=0, metavar="N",
                   help="start toolctl serve on a store already holding N spans (a collector that "
                        "has run a while); default: an empty store")
    p.add_argument("--tree", default=None, metavar="DIR",
                   help="run the toolctl of this checkout (e.g. a `git worktree` of an earlier "
                        "commit, for a before/after); default: this one")
    p.add_argument("--no-reference", action="store_true",
                   help="skip the reference run (a receiver that reads and acknowledges, stores nothing)")
    args = p.parse_args()

    work = Path(tempfile.mkdtemp(prefix="toolctl-bench-serve-"))
    rows: list[dict] = []
    try:
        targets = [("toolctl serve", bench_toolctl), ("Arize Phoenix (SQLite)", bench_phoenix)]
        if not args.no_reference:
            targets.insert(0, ("reference: null receiver", bench_null))
        for name, fn in targets:
            if name.startswith("Arize") and args.peer_python is None:
                print("peer: skipped (pass --peer-python /tmp/phoenix-venv/bin/python)", file=sys.stderr)
                continue
            print(f"{name}: {args.spans} spans, {args.procs} exporters …", file=sys.stderr, flush=True)
            r = fn(args, work)
            if isinstance(r, str):
                print(f"peer: {r}", file=sys.stderr)
                rows.append({"target": name, "skipped": r})
                continue
            r.pop("t0", None)
            r.pop("last_ok", None)
            rows.append({"target": name, **r})
    finally:
        if args.keep:
            print(f"kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)

    print("| target | spans | exporters | offered/s | acked | failed | 503s | e2e spans/s | stored | stored = acked |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in rows:
        if "skipped" in r:
            print(f"| {r['target']} | {r['skipped']} |||||||||")
            continue
        stored = "–" if r["stored"] is None else f"{r['stored']:,}"
        same = "–" if r["stored"] is None else "yes" if r["stored"] == r["acked"] else "NO"
        print(f"| {r['target']} | {args.spans:,} | {args.procs} | {r['offered_per_s']:,.0f} | {r['acked']:,} "
              f"| {r['failed']:,} | {r['statuses'].get('503', 0):,} | {r['e2e_per_s']:,.0f} "
              f"| {stored} | {same} |")
    ref = next((r for r in rows if r["target"].startswith("reference") and r.get("e2e_per_s")), None)
    ours = next((r for r in rows if r["target"] == "toolctl serve"), None)
    if ref and ours:
        print(f"\ntoolctl serve / null receiver, same load and run: {ours['e2e_per_s'] / ref['e2e_per_s']:.2f}")
    print(json.dumps({"machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                                  "python": platform.python_version()},
                      "spans": args.spans, "procs": args.procs, "batch": args.batch, "encode": args.encode,
                      "preload": args.preload,
                      "rate": args.rate, "results": rows}, indent=2))
    ok = all("skipped" in r or r["target"] != "toolctl serve" or r["stored"] == r["acked"] for r in rows)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
