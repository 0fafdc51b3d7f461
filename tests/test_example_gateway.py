"""The example gateway, end to end: real `toolctl serve`, real OTLP/HTTP exporter, real stats."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import REPO, run_toolctl
from tests.test_collector_server import serve  # noqa: F401 (fixture)
from toolctl.models import ToolCallEvent

GATEWAY = REPO / "examples" / "gateway" / "gateway.py"
FIGURES = ("calls", "attempts", "retries", "errors", "auth_failures")


def run_gateway(*args: str, env: dict | None = None) -> dict:
    import os

    full_env = dict(os.environ)
    full_env.update(env or {})
    res = subprocess.run([sys.executable, str(GATEWAY), *args], capture_output=True, text=True,
                         timeout=120, env=full_env, cwd=REPO)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def stats_by_tool(db) -> dict[str, dict]:
    res = run_toolctl("--db", db, "stats", "--by", "tool", "--format", "json")
    assert res.returncode == 0, res.stderr
    return {row["tool"]: {k: row[k] for k in FIGURES} for row in json.loads(res.stdout)}


@pytest.mark.slow
def test_example_gateway_spans_sent_to_serve_give_the_figures_the_gateway_counted(serve, tmp_path):
    s = serve()
    events = tmp_path / "calls.jsonl"
    # The endpoint comes from the standard OTel variable, as in a real deployment.
    truth = run_gateway("--events", str(events), "--capture", "--requests", "60", "--seed", "3",
                        env={"OTEL_EXPORTER_OTLP_ENDPOINT": s.url})
    tools = truth["tools"]
    assert sum(t["calls"] for t in tools.values()) == 60
    # The script exercises every path the figures distinguish.
    assert tools["search_web"]["retries"] > 0 and tools["get_weather"]["errors"] > 0
    assert tools["crm_lookup"]["auth_failures"] > 0 and tools["crm_lookup"]["retries"] == 0

    assert stats_by_tool(s.db) == tools  # while serving: the CLI asks the collector
    res = run_toolctl("--db", s.db, "stats", "--by", "version", "--by", "service", "--format", "json")
    [row] = json.loads(res.stdout)
    assert (row["service"], row["version"]) == ("example-gateway", "v2.0.0")
    assert s.stop() == 0

    # Timeouts are recorded as errors with the TIMEOUT code, one span per attempt, and the
    # secrets in captured arguments never reached the store.
    import duckdb

    conn = duckdb.connect(str(s.db), read_only=True)
    try:
        timeouts = conn.execute("SELECT count(*) FROM tool_calls WHERE tool = 'search_web' "
                                "AND error_code = 'TIMEOUT' AND status = 'error'").fetchall()[0][0]
        shared = conn.execute("SELECT count(DISTINCT idempotency_key) = count(DISTINCT call_id), "
                              "max(attempt) FROM tool_calls WHERE tool = 'get_weather'").fetchall()[0]
        leaked = conn.execute("SELECT count(*) FROM spans WHERE attributes::VARCHAR LIKE "
                              "'%sk-live0123456789%'").fetchall()[0][0]
    finally:
        conn.close()
    assert timeouts == tools["search_web"]["retries"]  # each retry followed a timed-out attempt
    assert shared == (True, 3)
    assert leaked == 0

    # The JSON lines written alongside are valid schema-v1 events that count the same way.
    lines = events.read_text("utf-8").splitlines()
    assert len(lines) == sum(t["attempts"] for t in tools.values())
    for line in lines:
        ToolCallEvent.model_validate_json(line)
    db2 = tmp_path / "jsonl.duckdb"
    res = run_toolctl("--db", db2, "ingest", events)
    assert res.returncode == 0, res.stderr
    assert stats_by_tool(db2) == tools


def test_example_gateway_without_spans_needs_an_events_file():
    res = subprocess.run([sys.executable, str(GATEWAY), "--no-spans"], capture_output=True, text=True,
                         timeout=60, cwd=REPO)
    assert res.returncode == 2 and "--no-spans needs --events" in res.stderr
