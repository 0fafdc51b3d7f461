"""The figures behind `toolctl top` and `toolctl stats --histogram`, against known answers
computed here from the generated lines (numpy), never by the code under test."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from tests.conftest import run_toolctl, write_jsonl

T0 = datetime(2026, 11, 24, 6, 0, 0, tzinfo=timezone.utc)


def _iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def view_docs(t0: datetime = T0) -> list[dict]:
    """A small deterministic workload over [t0, t0 + 30 min):

    * ``search``: 60 single-attempt calls every 30 s, latency 5·1.08^i ms, 5 errors spread out;
    * ``fetch``: 40 calls every 45 s, latency 80 + 13·i ms; from call 20 on every third call
      ends in error (the error rate jumps in the second 15 minutes: a mover); every 8th call
      (i % 8 == 1) is retried: attempt 1 fails with 503, attempt 2 decides;
    * ``login``: 10 calls every 3 min; calls 3 and 7 are refused (401 UNAUTHENTICATED).
    """
    docs = []
    for i in range(60):
        docs.append({"event_id": f"s{i}", "ts": _iso(t0 + timedelta(seconds=30 * i)), "tool": "search",
                     "status": "error" if i % 12 == 5 else "ok", "latency_ms": round(5 * 1.08 ** i, 3),
                     "call_id": f"cs{i}", "version": "v1", "service": "gw"})
    for i in range(40):
        ts = t0 + timedelta(seconds=45 * i)
        lat = 80.0 + 13 * i
        final = "error" if i >= 20 and i % 3 == 0 else "ok"
        if i % 8 == 1:
            docs.append({"event_id": f"f{i}a1", "ts": _iso(ts), "tool": "fetch", "status": "error",
                         "latency_ms": lat / 2, "call_id": f"cf{i}", "attempt": 1, "retryable": True,
                         "error_code": "UNAVAILABLE", "http_status": 503, "version": "v1", "service": "gw"})
            docs.append({"event_id": f"f{i}a2", "ts": _iso(ts + timedelta(seconds=1)), "tool": "fetch",
                         "status": final, "latency_ms": lat, "call_id": f"cf{i}", "attempt": 2,
                         "version": "v1", "service": "gw"})
        else:
            docs.append({"event_id": f"f{i}", "ts": _iso(ts), "tool": "fetch", "status": final,
                         "latency_ms": lat, "call_id": f"cf{i}", "version": "v1", "service": "gw"})
    for i in range(10):
        refused = i in (3, 7)
        doc = {"event_id": f"l{i}", "ts": _iso(t0 + timedelta(minutes=3 * i)), "tool": "login",
               "status": "error" if refused else "ok", "latency_ms": 40.0 + i, "call_id": f"cl{i}",
               "version": "v1", "service": "gw"}
        if refused:
            doc.update(error_code="UNAUTHENTICATED", http_status=401)
        docs.append(doc)
    return docs


def make_view_store(tmp_path, docs=None):
    db = tmp_path / "views.duckdb"
    src = write_jsonl(tmp_path / "views.jsonl", docs or view_docs())
    res = run_toolctl("--db", db, "ingest", src)
    assert res.returncode == 0, res.stderr
    return db


@pytest.fixture(scope="module")
def view_db(tmp_path_factory):
    return make_view_store(tmp_path_factory.mktemp("views"))


def _parse(ts: str) -> datetime:
    return datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)


def known_live(docs, since: datetime, until: datetime) -> dict[str, dict]:
    """Per tool over [since, until): calls, errors (final attempt), error rate, p95 of the
    attempts' latencies, auth failures, retries — the README's figure definitions."""
    out = {}
    inside = [d for d in docs if since <= _parse(d["ts"]) < until]
    for tool in sorted({d["tool"] for d in inside}):
        mine = [d for d in inside if d["tool"] == tool]
        calls: dict[str, dict] = {}
        for d in mine:
            cur = calls.get(d["call_id"])
            if cur is None or d.get("attempt", 1) > cur.get("attempt", 1):
                calls[d["call_id"]] = d
        errors = sum(d["status"] == "error" for d in calls.values())
        out[tool] = {
            "calls": len(calls), "errors": errors, "error_rate": errors / len(calls),
            "p95_ms": float(np.percentile([d["latency_ms"] for d in mine], 95)),
            "auth_failures": sum(d.get("http_status") in (401, 403) for d in mine),
            "retries": len(mine) - len(calls),
        }
    return out


def test_live_snapshot_figures_equal_known_answers_for_both_windows(view_db):
    docs = view_docs()
    until = T0 + timedelta(minutes=30)
    res = run_toolctl("--db", view_db, "top", "--window", "15m", "--until", "2026-11-24T06:30:00Z",
                      "--format", "json")
    assert res.returncode == 0, res.stderr
    snap = json.loads(res.stdout)
    assert (snap["since"], snap["until"], snap["window_s"]) == ("2026-11-24T06:15:00Z", "2026-11-24T06:30:00Z", 900)
    now = known_live(docs, until - timedelta(minutes=15), until)
    prior = known_live(docs, until - timedelta(minutes=30), until - timedelta(minutes=15))
    assert [r["tool"] for r in snap["rows"]] == sorted(now, key=lambda t: (-now[t]["calls"], t))
    for r in snap["rows"]:
        k, p = now[r["tool"]], prior[r["tool"]]
        for key in ("calls", "errors", "auth_failures", "retries"):
            assert r[key] == k[key], (r["tool"], key)
        assert r["error_rate"] == pytest.approx(k["error_rate"])
        assert r["p95_ms"] == pytest.approx(k["p95_ms"], rel=1e-12)
        assert r["calls_per_s"] == pytest.approx(k["calls"] / 900)
        assert r["prior_calls"] == p["calls"]
        assert r["error_rate_delta"] == pytest.approx(k["error_rate"] - p["error_rate"])
        assert r["p95_ratio"] == pytest.approx(k["p95_ms"] / p["p95_ms"])
    # Movers by the documented rule: error rate +1pp or p95 ×1.5 vs the prior window, ranked
    # by how many times over its threshold each moved.
    def times_over(t):
        return max((now[t]["error_rate"] - prior[t]["error_rate"]) / 0.01,
                   now[t]["p95_ms"] / prior[t]["p95_ms"] / 1.5)

    expected = sorted((t for t in now if times_over(t) >= 1), key=lambda t: (-times_over(t), t))
    assert snap["movers"] == expected[:3]
    assert snap["movers"][0] == "fetch"  # the designed regression leads
    assert snap["total"]["calls"] == sum(k["calls"] for k in now.values())


def test_live_window_with_no_calls_is_an_empty_frame_not_an_error(view_db):
    res = run_toolctl("--db", view_db, "top", "--until", "2026-11-24T05:00:00Z", "--format", "json")
    assert res.returncode == 0, res.stderr
    snap = json.loads(res.stdout)
    assert snap["rows"] == [] and snap["movers"] == [] and snap["total"] is None


def test_bad_window_is_a_usage_error_naming_the_option(view_db):
    res = run_toolctl("--db", view_db, "top", "--window", "5 minutes", "--once")
    assert res.returncode == 2
    assert "--window" in res.stderr and res.stdout == ""


@pytest.mark.parametrize("scale", ["log", "linear"])
def test_histogram_bins_equal_numpy_histogram_and_percentiles_equal_stats(view_db, scale):
    docs = view_docs()
    lat = np.array([d["latency_ms"] for d in docs if d["tool"] == "fetch"])
    edges = (np.geomspace(lat.min(), lat.max(), 13) if scale == "log"
             else np.linspace(lat.min(), lat.max(), 13))
    counts, _ = np.histogram(lat, bins=edges)
    res = run_toolctl("--db", view_db, "stats", "--histogram", "--tool", "fetch", "--bins", "12",
                      "--scale", scale, "--format", "json")
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["count"] == len(lat) and doc["scale"] == scale
    assert [b["count"] for b in doc["bins"]] == counts.tolist()
    assert [b["lower_ms"] for b in doc["bins"]] == pytest.approx(edges[:-1].tolist())
    assert [b["upper_ms"] for b in doc["bins"]] == pytest.approx(edges[1:].tolist())
    for q in (50, 95, 99):
        assert doc[f"p{q}_ms"] == pytest.approx(float(np.percentile(lat, q)), rel=1e-12)
    # The very figures `toolctl stats` prints for the same filter.
    [row] = json.loads(run_toolctl("--db", view_db, "stats", "--tool", "fetch", "--format", "json").stdout)
    assert (doc["p50_ms"], doc["p95_ms"], doc["p99_ms"]) == (row["p50_ms"], row["p95_ms"], row["p99_ms"])


def test_histogram_of_nothing_has_no_bins_and_usage_errors_are_one_line(view_db):
    res = run_toolctl("--db", view_db, "stats", "--histogram", "--tool", "nope", "--format", "json")
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    assert (doc["count"], doc["bins"], doc["p95_ms"]) == (0, [], None)
    for args, needle in ((["--histogram", "--scale", "cubic"], "--scale"),
                         (["--histogram", "--every", "5m"], "--histogram"),
                         (["--histogram", "--every", ""], "--histogram"),  # was ignored: exit 0
                         (["--plot"], "--plot needs --every")):
        res = run_toolctl("--db", view_db, "stats", *args)
        assert res.returncode == 2, (args, res.stderr)
        assert needle in res.stderr.splitlines()[0] and res.stdout == ""


def test_histogram_with_all_latencies_equal_is_one_full_bin(tmp_path):
    docs = [{"event_id": f"e{i}", "ts": "2026-11-24T06:00:00Z", "tool": "t", "status": "ok",
             "latency_ms": 7.0} for i in range(5)]
    db = make_view_store(tmp_path, docs)
    doc = json.loads(run_toolctl("--db", db, "stats", "--histogram", "--bins", "4", "--format", "json").stdout)
    assert [b["count"] for b in doc["bins"]] == [5, 0, 0, 0]
    assert doc["p50_ms"] == doc["p99_ms"] == 7.0


def test_a_p95_up_30x_outranks_an_error_rate_up_one_and_a_half_points():
    from toolctl.metrics.live import mover_score

    latency = {"error_rate_delta": 0.0, "p95_ratio": 30.0}
    errors = {"error_rate_delta": 0.015, "p95_ratio": 1.0}
    assert mover_score(latency) > mover_score(errors) >= 1
    assert mover_score({"error_rate_delta": 0.009, "p95_ratio": 1.49}) is None  # under both thresholds
    assert mover_score({"error_rate_delta": None, "p95_ratio": None}) is None  # no prior window


@pytest.mark.parametrize("scale, lat", [("log", [0.000001, 10.0, 5e150, 1e303]),
                                        ("linear", [0.0, 1.0, 9e307, 1.7e308])])
def test_histogram_edges_stay_finite_when_latencies_span_the_double_range(tmp_path, scale, lat):
    # log edges as lo·(hi/lo)^t: hi/lo = 1e309 is +inf, so every edge but the first was inf
    # (null in JSON) and all values but the max fell into bin 0; linear ones as (hi-lo)·i
    # overflowed the same way near 1.8e308.
    docs = [{"event_id": f"e{i}", "ts": "2026-11-24T06:00:00Z", "tool": "t", "status": "ok",
             "latency_ms": x} for i, x in enumerate(lat)]
    db = make_view_store(tmp_path, docs)
    res = run_toolctl("--db", db, "stats", "--histogram", "--bins", "4", "--scale", scale, "--format", "json")
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    edges = np.geomspace(lat[0], lat[-1], 5) if scale == "log" else np.linspace(lat[0], lat[-1], 5)
    counts, _ = np.histogram(np.array(lat), bins=edges)
    assert [b["count"] for b in doc["bins"]] == counts.tolist()
    assert [b["lower_ms"] for b in doc["bins"]] == pytest.approx(edges[:-1].tolist(), rel=1e-9)
    assert [b["upper_ms"] for b in doc["bins"]] == pytest.approx(edges[1:].tolist(), rel=1e-9)
    assert doc["bins"][0]["lower_ms"] == lat[0] and doc["bins"][-1]["upper_ms"] == lat[-1]


def test_histogram_of_only_zero_latencies_on_a_log_scale_is_one_bin_at_zero(tmp_path):
    # No positive latency to start a log axis at: the lower edge was 1.0 and the upper 0.0.
    docs = [{"event_id": f"e{i}", "ts": "2026-11-24T06:00:00Z", "tool": "t", "status": "ok",
             "latency_ms": 0} for i in range(3)]
    db = make_view_store(tmp_path, docs)
    doc = json.loads(run_toolctl("--db", db, "stats", "--histogram", "--bins", "3", "--format", "json").stdout)
    assert [(b["lower_ms"], b["upper_ms"], b["count"]) for b in doc["bins"]] == [(0.0, 0.0, 3), (0.0, 0.0, 0), (0.0, 0.0, 0)]
