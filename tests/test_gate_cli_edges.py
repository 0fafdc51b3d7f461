"""Gate, runbook and regress edges found by fuzzing, end to end: JSON lines ingested into a
tmp DuckDB with the real pipeline, the real CLI in a subprocess (exit codes are the contract)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from collector.pipeline import ingest_paths
from tests.conftest import run_toolctl, write_jsonl
from toolctl.store import Store

WINDOW = ("--since", "2026-11-24T06:00:00Z", "--until", "2026-11-24T07:00:00Z")


def make_store(tmp_path: Path, docs, name: str = "s") -> Path:
    src = write_jsonl(tmp_path / f"{name}.jsonl", docs)
    db = tmp_path / f"{name}.duckdb"
    with Store.open(db, write=True) as store:
        ingest_paths(store, [str(src)])
    return db


def retried_calls(n: int, version: str | None = None) -> list[dict]:
    """n calls that each failed once and succeeded on attempt 2 (2 attempts per call)."""
    docs = []
    for c in range(n):
        for a, status in ((1, "error"), (2, "ok")):
            d = {"event_id": f"c{c}-{a}", "ts": f"2026-11-24T06:{c // 60:02d}:{c % 60:02d}.{a}Z",
                 "tool": "search", "status": status, "latency_ms": 5.0, "call_id": f"c{c}", "attempt": a}
            if version:
                d["version"] = version
            docs.append(d)
    return docs


def test_retry_budget_below_min_samples_is_inconclusive_not_a_critical_fail(tmp_path):
    db = make_store(tmp_path, retried_calls(5))  # 10 attempts, 2 per call: fewer than 30
    proc = run_toolctl("--db", db, "runbook", "run", "retry-storm", *WINDOW, "--format", "json")
    doc = json.loads(proc.stdout)
    budget = next(c for c in doc["checks"] if c["name"] == "retry-budget")
    assert budget["outcome"] == "inconclusive", budget["reason"]
    assert budget["evidence"]["attempts_per_call"] == 2.0
    assert (proc.returncode, doc["status"]) == (10, "warn")


def test_retry_budget_fails_on_attempts_per_call_once_there_are_enough_samples(tmp_path):
    db = make_store(tmp_path, retried_calls(40))  # 80 attempts
    proc = run_toolctl("--db", db, "runbook", "run", "retry-storm", *WINDOW, "--format", "json")
    doc = json.loads(proc.stdout)
    budget = next(c for c in doc["checks"] if c["name"] == "retry-budget")
    assert budget["outcome"] == "fail" and (proc.returncode, doc["status"]) == (20, "fail")


def two_versions(tmp_path: Path) -> Path:
    return make_store(tmp_path, [
        {"event_id": "a", "ts": "2026-11-24T06:00:00Z", "tool": "s", "status": "ok", "latency_ms": 5, "version": "v1"},
        {"event_id": "b", "ts": "2026-11-24T09:00:00Z", "tool": "s", "status": "ok", "latency_ms": 5, "version": "v2"}])


def test_a_gate_over_a_zero_length_window_is_refused_and_records_no_evaluation(tmp_path):
    db = two_versions(tmp_path)
    proc = run_toolctl("--db", db, "gate", "--baseline", "v1", "--candidate", "v2", "--since",
                       "2026-11-24T07:00:00Z", "--until", "2026-11-24T08:00:00+01:00", "--format", "json")
    assert proc.returncode == 2 and proc.stdout == ""
    assert "empty window: --since 2026-11-24T07:00:00Z is not before --until 2026-11-24T07:00:00Z" in proc.stderr
    history = run_toolctl("--db", db, "gate", "history", "--format", "json")
    assert json.loads(history.stdout) == []


def test_an_until_before_the_candidates_first_event_names_that_event_not_a_since_never_given(tmp_path):
    db = two_versions(tmp_path)
    proc = run_toolctl("--db", db, "gate", "--baseline", "v1", "--candidate", "v2", "--until", "2026-11-24T08:00:00Z")
    assert proc.returncode == 2
    first = proc.stderr.splitlines()[0]
    assert first == ("Error: empty window: candidate 'v2' was first seen at 2026-11-24T09:00:00Z, "
                     "not before --until 2026-11-24T08:00:00Z"), proc.stderr
    assert proc.stderr.splitlines()[1].startswith("Hint: ")


def test_a_single_window_abandoned_check_without_max_rate_is_an_invalid_runbook(tmp_path):
    rb = tmp_path / "aband.yaml"
    rb.write_text("name: aband\ntitle: t\ndescription: d\nremediation: [a]\nmode: single\n"
                  "checks:\n  - name: gone\n    kind: abandoned\n    margin_abs: 0.01\n", encoding="utf-8")
    db = make_store(tmp_path, retried_calls(1))
    for args in (("runbook", "show", rb), ("runbook", "run", rb, *WINDOW, "--format", "json")):
        proc = run_toolctl("--db", db, *args)
        assert proc.returncode == 2 and proc.stdout == "", proc.stdout
        lines = proc.stderr.splitlines()
        assert len(lines) == 2 and lines[0].startswith(f"Error: runbook {rb}: ") and "max_rate" in lines[0]
        assert lines[1].startswith("Hint: ")


def test_too_few_samples_says_how_many_more_are_missing_not_the_whole_minimum(tmp_path):
    docs = [{"event_id": f"{v}-{i}", "ts": f"2026-11-24T06:00:{i:02d}Z", "tool": "s", "status": "ok",
             "latency_ms": 10 + i, "version": v, **({"confidence": 0.9} if i < n_conf else {})}
            for v, n_conf in (("v1", 25), ("v2", 12)) for i in range(25)]
    db = make_store(tmp_path, docs)
    proc = run_toolctl("--db", db, "gate", "--baseline", "v1", "--candidate", "v2",
                       "--until", "2026-11-24T07:00:00Z", "--format", "json")
    checks = {c["name"]: c for c in json.loads(proc.stdout)["checks"]}
    # 25 latencies per arm, the shift needs 20: nothing missing, it is evaluated.
    assert checks["latency-shift"]["more_needed"] is None
    # 25 and 12 confidence values, 30 needed per arm: 18 more for the candidate.
    quality = checks["result-quality"]
    assert quality["more_needed"] == 18 and "about 18 more calls" in quality["reason"], quality["reason"]
    # 25 per arm against the p95 minimum of 59: 34 more (as the rate checks count it).
    assert checks["p95-latency"]["more_needed"] == 34


def test_a_latency_shift_without_enough_samples_counts_what_each_arm_lacks(tmp_path):
    docs = [{"event_id": f"{v}-{i}", "ts": f"2026-11-24T06:00:{i:02d}Z", "tool": "s", "status": "ok",
             "latency_ms": 10 + i, "version": v} for v, n in (("v1", 15), ("v2", 12)) for i in range(n)]
    db = make_store(tmp_path, docs)
    proc = run_toolctl("--db", db, "gate", "--baseline", "v1", "--candidate", "v2",
                       "--until", "2026-11-24T07:00:00Z", "--format", "json")
    shift = next(c for c in json.loads(proc.stdout)["checks"] if c["name"] == "latency-shift")
    assert shift["more_needed"] == 8 and "about 8 more calls" in shift["reason"], shift["reason"]


RUNBOOK_HEAD = "name: x\ntitle: t\ndescription: d\nremediation: [a]\n"
P95_CHECK = "checks:\n  - name: p95\n    kind: quantile_compare\n    quantile: 0.95\n    max_ratio: 1.2\n"


@pytest.mark.parametrize("top, check_extra, field", [
    ("consecutive_failures: yes\n", "", "consecutive_failures"),   # YAML 1.1 boolean, not 1
    ("max_evaluations: true\n", "", "max_evaluations"),
    ("max_evaluations: '3'\n", "", "max_evaluations"),
    ("", "    dry_run: 'no'\n", "checks.0.quantile_compare.dry_run"),
    ("", "    min_samples: 100.5\n", "checks.0.quantile_compare.min_samples"),
])
def test_a_runbook_count_or_flag_of_the_wrong_type_is_refused_not_coerced(tmp_path, top, check_extra, field):
    rb = tmp_path / "rb.yaml"
    rb.write_text(RUNBOOK_HEAD + top + P95_CHECK + check_extra, encoding="utf-8")
    proc = run_toolctl("runbook", "show", rb, "--format", "json")
    assert proc.returncode == 2 and proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 2 and lines[0].startswith(f"Error: runbook {rb}: {field}: "), proc.stderr


def test_a_runbook_margin_written_with_an_exponent_still_loads(tmp_path):
    rb = tmp_path / "rb.yaml"  # PyYAML reads 5e-3 (no dot) as a string: margins stay lax
    rb.write_text(RUNBOOK_HEAD + "checks:\n  - name: e\n    kind: ratio_compare\n    metric: error_rate\n"
                  "    margin_abs: 5e-3\n", encoding="utf-8")
    proc = run_toolctl("runbook", "show", rb, "--format", "json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["checks"][0]["margin_abs"] == 0.005


def test_an_unbounded_lower_side_of_a_latency_ratio_reads_0_not_infinity(tmp_path):
    # 70 attempts per arm: enough for the p95 check to run, too few to bound its ratio.
    docs = [{"event_id": f"{v}{i}", "ts": f"2026-11-24T06:{i // 60:02d}:{i % 60:02d}Z", "tool": "s",
             "status": "ok", "latency_ms": 1 + (i * 37) % 100, "version": v} for v in ("v1", "v2") for i in range(70)]
    db = make_store(tmp_path, docs)
    proc = run_toolctl("--db", db, "gate", "--baseline", "v1", "--candidate", "v2",
                       "--until", "2026-11-24T07:00:00Z", "--format", "json")
    p95 = next(c for c in json.loads(proc.stdout)["checks"] if c["name"] == "p95-latency")
    assert p95["outcome"] == "inconclusive" and p95["lower"] is None and p95["upper"] is None
    assert "[0, ∞] vs limit 1.2" in p95["reason"], p95["reason"]
    single = run_toolctl("--db", db, "runbook", "run", "latency-slo", *WINDOW, "--format", "json")
    p99 = next(c for c in json.loads(single.stdout)["checks"] if c["name"] == "p99-slo")
    assert "too few samples" in p99["reason"]
    p95_slo = next(c for c in json.loads(single.stdout)["checks"] if c["name"] == "p95-slo")
    assert "∞," not in p95_slo["reason"], p95_slo["reason"]


def test_gate_history_lists_the_evaluation_recorded_last_first_even_if_its_command_started_earlier(tmp_path):
    from datetime import datetime

    from toolctl.gate import GateRequest, run_gate
    from toolctl.gate.runbook import load_runbook

    db = make_store(tmp_path, retried_calls(3, "v1") + [dict(d, event_id="n" + d["event_id"], call_id="n" + d["call_id"],
                                                             version="v2") for d in retried_calls(3)])
    rb = load_runbook("canary-promotion")
    # Two CI jobs gating the same canary: the one that started later takes the store first.
    for started in (datetime(2026, 11, 24, 9, 0, 5), datetime(2026, 11, 24, 9, 0, 0)):
        with Store.open(db, write=True) as store:
            run_gate(store, GateRequest(baseline="v1", candidate="v2", runbook=rb, now=started,
                                        until=datetime(2026, 11, 24, 7)))
    rows = json.loads(run_toolctl("--db", db, "gate", "history", "--format", "json").stdout)
    assert [r["seq"] for r in rows] == [2, 1]


def test_a_built_in_runbook_name_is_the_built_in_whatever_the_working_directory_holds(tmp_path):
    work = tmp_path / "checkout"
    (work / "canary-promotion").mkdir(parents=True)  # e.g. the rollout's config folder
    (work / "retry-storm").write_text(RUNBOOK_HEAD + P95_CHECK.replace("p95", "local-p95"),
                                      encoding="utf-8")
    db = make_store(tmp_path, [dict(d, event_id=f"{v}{d['event_id']}", call_id=f"{v}{d['call_id']}", version=v)
                               for v in ("v1", "v2") for d in retried_calls(3)])
    gate = run_toolctl("--db", db, "gate", "--baseline", "v1", "--candidate", "v2",
                       "--until", "2026-11-24T07:00:00Z", "--format", "json", cwd=work)
    assert gate.returncode == 10, gate.stderr
    assert json.loads(gate.stdout)["runbook"] == "canary-promotion"
    shown = run_toolctl("runbook", "show", "retry-storm", "--format", "json", cwd=work)
    assert json.loads(shown.stdout)["name"] == "retry-storm"
    local = run_toolctl("runbook", "show", "./retry-storm", "--format", "json", cwd=work)
    assert [c["name"] for c in json.loads(local.stdout)["checks"]] == ["local-p95"]


def test_a_regression_says_which_checks_failed_not_that_they_failed_in_1_consecutive_evaluations(tmp_path):
    slow = [{"event_id": f"{v}{i}", "ts": f"2026-11-24T0{h}:{i // 60:02d}:{i % 60:02d}Z", "tool": "search",
             "status": "ok", "latency_ms": float(10 + i % 50) * k, "version": v}
            for v, h, k in (("v1", 6, 1), ("v2", 8, 3)) for i in range(400)]
    db = make_store(tmp_path, slow)
    assert run_toolctl("--db", db, "baseline", "save", "b", "--version", "v1").returncode == 0
    proc = run_toolctl("--db", db, "regress", "--baseline", "b", "--since", "2026-11-24T08:00:00Z",
                       "--until", "2026-11-24T09:00:00Z", "--format", "json")
    doc = json.loads(proc.stdout)
    assert proc.returncode == 20 and doc["regressed_tools"] == ["search"]
    assert doc["reason"] == "search:p95_ms failed", doc["reason"]


def test_regress_over_a_window_without_any_of_the_baselines_tools_is_no_data_not_a_hold(tmp_path):
    docs = [{"event_id": f"{t}{i}", "ts": f"2026-11-24T0{h}:{i % 60:02d}:00Z", "tool": t, "status": "ok",
             "latency_ms": 5.0} for t, h in (("old_tool", 6), ("new_tool", 8)) for i in range(100)]
    db = make_store(tmp_path, docs)
    assert run_toolctl("--db", db, "baseline", "save", "b", "--until", "2026-11-24T07:00:00Z").returncode == 0
    proc = run_toolctl("--db", db, "regress", "--baseline", "b", "--since", "2026-11-24T08:00:00Z",
                       "--until", "2026-11-24T09:00:00Z", "--format", "json")
    doc = json.loads(proc.stdout)
    assert (proc.returncode, doc["verdict"]) == (30, "inconclusive"), doc["reason"]
    assert "none of the baseline's 1 tools has calls" in doc["reason"]


def test_the_junit_report_stays_well_formed_xml_when_a_version_holds_control_characters(tmp_path):
    import xml.etree.ElementTree as ET

    base, cand = "v1\x1b[31m", "v2\x07\x01"
    db = make_store(tmp_path, [dict(d, event_id=f"{v}{d['event_id']}", call_id=f"{v}{d['call_id']}", version=v)
                               for v in (base, cand) for d in retried_calls(3)])
    for candidate, verdict in ((cand, "hold"), ("v3", "inconclusive")):  # v3: the reason lists the known ones
        junit = tmp_path / "gate.xml"
        proc = run_toolctl("--db", db, "gate", "--baseline", base, "--candidate", candidate,
                           "--until", "2026-11-24T07:00:00Z", "--junit", junit)
        assert proc.returncode in (10, 30), proc.stderr
        props = {p.get("name"): p.get("value") for p in ET.parse(junit).getroot().iter("property")}
        assert props["verdict"] == verdict and props["baseline"] == "v1\\x1b[31m"
        if candidate == cand:
            assert props["candidate"] == "v2\\x07\\x01"
        else:
            assert "v2\\x07\\x01" in props["reason"]


def test_a_gate_runbook_checking_reject_rate_is_refused_instead_of_always_reading_0(tmp_path):
    rb = tmp_path / "rej.yaml"
    rb.write_text(RUNBOOK_HEAD + "checks:\n  - name: rejects\n    kind: threshold\n    metric: reject_rate\n"
                  "    max: 0.001\n    severity: critical\n", encoding="utf-8")
    docs = [dict(d, event_id=f"{v}{d['event_id']}", call_id=f"{v}{d['call_id']}", version=v)
            for v in ("v1", "v2") for d in retried_calls(3)]
    db = make_store(tmp_path, docs)
    proc = run_toolctl("--db", db, "gate", "--runbook", rb, "--baseline", "v1", "--candidate", "v2",
                       "--format", "json")
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.splitlines()[0] == (f"Error: runbook {rb}: runbook: Value error, check 'rejects': reject_rate "
                                           "has no version to compare; use it in a single-window runbook (mode: single)")
    assert json.loads(run_toolctl("--db", db, "gate", "history", "--format", "json").stdout) == []


def test_two_arms_of_zero_latency_have_a_mean_ratio_of_1_not_infinity(tmp_path):
    docs = [{"event_id": f"{v}{i}", "ts": f"2026-11-24T06:00:{i % 60:02d}Z", "tool": "cache", "status": "ok",
             "latency_ms": 0, "version": v} for v in ("v1", "v2") for i in range(100)]
    db = make_store(tmp_path, docs)
    proc = run_toolctl("--db", db, "gate", "--baseline", "v1", "--candidate", "v2",
                       "--until", "2026-11-24T07:00:00Z", "--format", "json")
    shift = next(c for c in json.loads(proc.stdout)["checks"] if c["name"] == "latency-shift")
    assert shift["outcome"] == "pass" and shift["evidence"]["effect_size"] == 1.0
    assert shift["reason"].endswith("mean ratio 1"), shift["reason"]


def test_runbook_reject_rate_for_a_tool_counts_only_the_rejected_lines_naming_it(tmp_path):
    # With --tool, reject_rate divided every rejected line of the store by that tool's attempts:
    # another tool's schema breakage (or unreadable lines) failed this tool's check.
    from datetime import datetime, timedelta, timezone

    now = datetime.now(timezone.utc)
    ts = (now - timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%SZ")
    good = [{"event_id": f"{t}{i}", "ts": ts, "tool": t, "status": "ok", "latency_ms": 5.0}
            for t in ("search", "fetch") for i in range(500)]
    bad = [{"event_id": f"b{i}", "ts": ts, "tool": "fetch", "status": "ok", "latency_ms": "slow"} for i in range(10)]
    db = make_store(tmp_path, good + bad + ['{"event_id": "trunc', "\x00\x01 binary"])
    since = ("--since", (now - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"))

    def rejects(*tool):
        proc = run_toolctl("--db", db, "runbook", "run", "schema-breakage", *since, *tool, "--format", "json")
        check = next(c for c in json.loads(proc.stdout)["checks"] if c["name"] == "reject-rate")
        return check["evidence"], check["outcome"]

    everything, outcome = rejects()
    assert (everything["count"], everything["total"], outcome) == (12, 1012, "fail")
    fetch, outcome = rejects("--tool", "fetch")
    assert (fetch["count"], fetch["total"], outcome) == (10, 510, "fail")
    search, outcome = rejects("--tool", "search")
    # 0 of 500: no failure (the interval's upper bound is still above 0.1 %: too few to pass)
    assert (search["count"], search["total"], outcome) == (0, 500, "inconclusive")
