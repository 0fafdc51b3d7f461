"""Shared fixtures: every test runs with its own data dir and no inherited toolctl env."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path, monkeypatch):
    for var in list(os.environ):
        if var.startswith("TOOLCTL_"):
            monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.setenv("NO_COLOR", "1")
    # The runner's terminal size is not the test's (pytest-xdist workers get 80x24).
    monkeypatch.delenv("COLUMNS", raising=False)
    monkeypatch.delenv("LINES", raising=False)


def run_toolctl(*args, env=None, input=None, timeout=120, cwd=None, unset=()):
    """Run the real CLI in a subprocess (exit codes are part of the contract); ``unset``: names
    of environment variables the subprocess must not inherit."""
    full_env = {k: v for k, v in os.environ.items() if k not in unset}
    # A known width, whatever the runner's (pytest-xdist workers inherit COLUMNS=80): human
    # output is asserted on; a test that wants another width passes env={"COLUMNS": ...}.
    full_env["COLUMNS"] = "200"
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "toolctl", *map(str, args)],
        capture_output=True, text=True, env=full_env, input=input, timeout=timeout, cwd=cwd,
    )


def event(i, **overrides):
    doc = {"event_id": f"e{i}", "ts": "2026-11-24T06:00:00Z", "tool": "search", "status": "ok",
           "latency_ms": float(i)}
    doc.update(overrides)
    return doc


def write_jsonl(path: Path, docs, newline="\n"):
    path.write_text("".join((d if isinstance(d, str) else json.dumps(d)) + newline for d in docs),
                    encoding="utf-8")
    return path


SPAN_T0 = 1_764_000_000_000_000_000  # ns: 2025-11-24T16:00:00Z
#: The attribute that makes an OTLP span a tool call (rule gen_ai, docs/spans.md).
TOOL = {"gen_ai.operation.name": "execute_tool"}


def otlp_span(trace, sid, name, *, parent=None, start=0, dur_ns=2_000_000, status=0, attrs=None):
    """One OTLP/JSON span; ``start`` in ns after SPAN_T0; string or int attributes."""
    doc = {"traceId": trace, "spanId": sid, "name": name, "kind": 1,
           "startTimeUnixNano": str(SPAN_T0 + start), "endTimeUnixNano": str(SPAN_T0 + start + dur_ns),
           "status": {"code": status},
           "attributes": [{"key": k, "value": {"intValue": str(v)} if isinstance(v, int) else {"stringValue": v}}
                          for k, v in (attrs or {}).items()]}
    if parent:
        doc["parentSpanId"] = parent
    return doc


def ingest_spans(db, path, spans, service="gw"):
    """Write ``spans`` as one OTLP/JSON request to ``path`` and ingest it into ``db``."""
    res = {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]}
    path.write_text(json.dumps({"resourceSpans": [{"resource": res, "scopeSpans": [{"spans": spans}]}]}))
    r = run_toolctl("--db", db, "ingest", path)
    assert r.returncode == 0, r.stderr


def submit_burst(queue, jobs: list) -> list:
    """Submit jobs to a collector WriteQueue while its writer is blocked, so they form one
    burst (one group commit); returns their futures."""
    import threading

    gate = threading.Event()
    blocker = queue.submit(lambda s: gate.wait(10), 1)
    futures = [queue.submit(job, 1) for job in jobs]
    gate.set()
    blocker.result(10)
    return futures


def pytest_configure(config):
    """Byte-compile the checkout once, before any test starts (on the controller, not on each
    xdist worker). The CLI tests run `python -m toolctl` hundreds of times from this tree;
    where PYTHONDONTWRITEBYTECODE is set (as on this project's CI machines) nothing else
    writes the checkout's `__pycache__`, and every one of those processes compiled every
    module it imports again: ~0.1 s of each `stats` run (README, Development)."""
    import compileall

    if not hasattr(config, "workerinput"):
        for package in ("toolctl", "collector"):
            compileall.compile_dir(str(REPO / package), quiet=2)


def pytest_collection_modifyitems(config, items):
    """Tests that start Spark run on one xdist worker (``--dist loadgroup``): one JVM and one
    Spark session for all of them instead of one per worker, two JVMs on two cores slowing
    each other (and the parity stores built once)."""
    for item in items:
        uses_spark = {"spark", "parity"} & set(getattr(item, "fixturenames", ()))
        if uses_spark or "spark" in item.name:
            item.add_marker(pytest.mark.xdist_group("spark"))
