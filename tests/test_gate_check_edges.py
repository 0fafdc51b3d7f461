"""Gate checks at the edges fuzzing found: zero latencies, one value per arm, long streaks,
single windows with a few samples, and burn-rate windows that cannot be read."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pytest

from toolctl.gate.checks import evaluate
from toolctl.gate.data import EMPTY_COUNTS, ArmData, EvalContext
from toolctl.gate.runbook import RunbookError, load_runbook
from toolctl.gate.verdict import decide

UNTIL = datetime(2026, 1, 1, 11)


def _check(kind: str, **fields):
    """One check of a runbook validated as a file would be."""
    import yaml

    from toolctl.gate.runbook import Runbook

    doc = {"name": "t", "title": "t", "description": "d", "remediation": ["r"],
           "checks": [{"name": "c", "kind": kind, **fields}]}
    return Runbook.model_validate(yaml.safe_load(yaml.safe_dump(doc))).checks[0]


def _arm(latencies=(), **counts) -> ArmData:
    lat = np.sort(np.asarray(latencies, dtype=float))
    return ArmData(dict(EMPTY_COUNTS, **counts), lambda: lat)


@pytest.mark.parametrize("base, cand, outcome", [
    ([0.0] * 400, [0.0] * 400, "pass"),        # identical arms of zero latency: equal
    ([0.0] * 400, [100.0] * 400, "fail"),      # slower than a zero baseline
    ([0.0] * 200 + [50.0] * 200, [0.0] * 400, "pass"),
])
def test_quantile_compare_decides_against_a_zero_baseline(base, cand, outcome):
    check = _check("quantile_compare", quantile=0.5, max_ratio=1.2)
    res = evaluate(check, EvalContext(base=_arm(base), cand=_arm(cand), until=UNTIL), 0.95)
    assert res.outcome == outcome, res.reason


def test_quality_compare_with_one_confidence_value_per_arm_waits_instead_of_crashing():
    check = _check("quality_compare", min_samples=1, max_mean_drop=0.05, max_low_share_increase=0.05)
    arm = _arm(conf_n=1, conf_mean=0.9, conf_var=None, conf_low=0)
    res = evaluate(check, EvalContext(base=arm, cand=arm, until=UNTIL), 0.95)
    assert res.outcome == "inconclusive" and "too few samples" in res.reason, res.reason


def test_a_hold_says_how_many_evaluations_in_a_row_a_check_has_failed():
    class R:
        name, dry_run, outcome, severity = "p99", False, "fail", "major"

    for streak, words in [(0, "failed once (rollback after 5"), (1, "failed twice in a row"),
                          (2, "failed 3 times in a row")]:
        verdict, why = decide([R()], prior_streaks={"p99": streak}, consecutive=5, seq=1, max_evaluations=10)
        assert verdict == "hold" and words in why, why


def test_a_single_window_counts_the_samples_it_has_when_it_says_how_many_more():
    check = _check("threshold", metric="auth_failure_rate", max=0.01, min_samples=30)
    res = evaluate(check, EvalContext(base=None, cand=_arm(attempts=6, auth_failures=1), until=UNTIL), 0.95)
    assert res.outcome == "inconclusive" and res.more_needed == 24
    assert "per arm" not in res.reason and "about 24 more calls" in res.reason


@pytest.mark.parametrize("window, needle", [
    ({"long": "abc", "short": "5m", "factor": 2}, "invalid long window 'abc'"),
    ({"long": "0s", "short": "5m", "factor": 2}, "invalid long window '0s'"),
    ({"long": "5m", "short": "1h", "factor": 2}, "must be longer than the short one"),
    ({"long": "999999999d", "short": "5m", "factor": 2}, "longer than the SLO period"),
])
def test_a_burn_rate_window_that_cannot_be_read_refuses_the_runbook(tmp_path, window, needle):
    import yaml

    path = tmp_path / "rb.yaml"
    path.write_text(yaml.safe_dump({
        "name": "b", "title": "t", "description": "d", "remediation": ["r"], "mode": "single",
        "checks": [{"name": "burn", "kind": "burn_rate", "objective": 0.999, "windows": [window]}]}))
    with pytest.raises(RunbookError) as err:
        load_runbook(str(path))
    assert needle in err.value.message


def test_wilson_bounds_are_exact_at_zero_and_all_successes():
    from toolctl.gate.statistics import wilson

    assert wilson(0, 37).lower == 0.0 and wilson(37, 37).upper == 1.0  # were ~2e-17 off


def test_a_shift_between_latencies_near_the_double_limit_is_reported_without_warnings(recwarn):
    check = _check("distribution_shift", max_shift_rel=0.15)
    base, cand = _arm([1e300] * 200 + [1.797e308] * 200), _arm([1.797e308] * 400)
    res = evaluate(check, EvalContext(base=base, cand=cand, until=UNTIL), 0.95)
    assert res.outcome != "error", res.reason
    assert len(res.reason) < 400 and not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]


def test_a_latency_shift_on_one_value_per_arm_is_inconclusive_not_a_fail():
    # min_samples: 1 let the Moses interval of 1 + 1 values, a single point, fail the check.
    check = _check("distribution_shift", max_shift_rel=0.15, min_samples=1)
    res = evaluate(check, EvalContext(base=_arm([100.0]), cand=_arm([130.0]), until=UNTIL), 0.95)
    assert res.outcome == "inconclusive" and (res.lower, res.upper) == (None, None), res.reason
    assert res.estimate == pytest.approx(0.3) and "-∞, +∞" in res.reason, res.reason


def test_a_stored_gate_report_is_standard_json_even_with_an_infinite_ratio(tmp_path):
    # A candidate slower than a zero baseline has an infinite ratio; the stored report held
    # the non-standard token Infinity (json.dumps), which JSON readers other than Python's refuse.
    import json

    import duckdb

    from conftest import event, run_toolctl, write_jsonl

    docs = [event(i, version="v1" if i % 2 else "v2", latency_ms=0.0 if i % 2 else 100.0,
                  ts=f"2026-01-01T10:{i % 60:02d}:{i // 60:02d}Z") for i in range(800)]
    db = tmp_path / "z.duckdb"
    assert run_toolctl("--db", db, "ingest", write_jsonl(tmp_path / "z.jsonl", docs)).returncode == 0
    proc = run_toolctl("--db", db, "gate", "--baseline", "v1", "--candidate", "v2",
                       "--until", "2026-01-01T11:00:00Z", "--format", "json")
    p95 = next(c for c in json.loads(proc.stdout)["checks"] if c["name"] == "p95-latency")
    assert p95["outcome"] == "fail"
    stored = duckdb.connect(str(db), read_only=True).execute("SELECT report::VARCHAR FROM gate_evaluations").fetchone()[0]
    json.loads(stored, parse_constant=lambda name: pytest.fail(f"non-standard JSON token {name}"))
