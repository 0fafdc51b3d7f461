"""The gate end to end: generated scenarios written as JSON lines, ingested with the real
pipeline into a tmp DuckDB, gated by the real CLI in a subprocess (exit codes matter)."""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from collector.pipeline import ingest_paths
from tests.conftest import REPO, run_toolctl
from toolctl.store import Store

BASE, CAND = "v1", "v2"
UNTIL = "2026-11-24T12:00:00Z"


def _iso(sec: float) -> str:
    from datetime import datetime, timezone

    return datetime.fromtimestamp(sec, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def gen_arm(rng, version, n, *, err=0.003, lat_scale=1.0, auth=0.0, start=None):
    """n single-attempt calls of one version spread over the hour before UNTIL."""
    from datetime import datetime, timezone

    end = datetime(2026, 11, 24, 12, 0, 0, tzinfo=timezone.utc).timestamp() - 1
    begin = end - 3600 if start is None else start
    ts = np.sort(rng.uniform(begin, end, n))
    lat = rng.lognormal(math.log(120), 0.6, n) * lat_scale
    is_err = rng.random(n) < err
    is_auth = rng.random(n) < auth
    docs = []
    for i in range(n):
        d = {"event_id": f"{version}-{i}", "ts": _iso(ts[i]), "tool": ("search", "sql", "fetch")[i % 3],
             "status": "ok", "latency_ms": round(float(lat[i]), 3), "version": version,
             "call_id": f"{version}-c{i}", "tenant": f"t{i % 7}", "confidence": 0.9}
        if is_auth[i]:
            d.update(status="error", http_status=403, error_code="PERMISSION_DENIED", retryable=False)
        elif is_err[i]:
            d.update(status="error", http_status=500, error_code="INTERNAL", retryable=False)
        docs.append(d)
    return docs


def make_store(tmp_path: Path, docs, name="s") -> Path:
    src = tmp_path / f"{name}.jsonl"
    src.write_text("".join(json.dumps(d) + "\n" for d in docs), encoding="utf-8")
    db = tmp_path / f"{name}.duckdb"
    with Store.open(db, write=True) as store:
        ingest_paths(store, [str(src)])
    return db


def gate(db, *extra):
    return run_toolctl("--db", db, "gate", "--baseline", BASE, "--candidate", CAND, "--until", UNTIL,
                       "--format", "json", *extra)


def _doc(proc):
    assert proc.stdout.count("\n") == 1, proc.stdout + proc.stderr
    return json.loads(proc.stdout)


@pytest.fixture(scope="module")
def aa_db(tmp_path_factory):
    rng = np.random.default_rng(11)
    tmp = tmp_path_factory.mktemp("aa")
    docs = gen_arm(rng, BASE, 20000) + gen_arm(rng, CAND, 20000)
    return make_store(tmp, docs), docs


def test_aa_comparison_of_20000_calls_per_arm_promotes(aa_db, tmp_path):
    db, docs = aa_db
    junit = tmp_path / "gate.xml"
    proc = gate(db, "--junit", junit)
    doc = _doc(proc)
    assert proc.returncode == 0, doc["reason"]
    assert doc["verdict"] == "promote"
    # Arm figures, computed independently from the generated lines.
    # Both arms over the same window, which starts at the candidate's first event.
    start = min(d["ts"] for d in docs if d["version"] == CAND)
    assert doc["since"] == start
    for arm, version in (("baseline", BASE), ("candidate", CAND)):
        mine = [d for d in docs if d["version"] == version and d["ts"] >= start]
        assert doc["arms"][arm]["calls"] == len(mine)
        assert doc["arms"][arm]["errors"] == sum(d["status"] == "error" for d in mine)
    assert doc["arms"]["candidate"]["calls"] == 20000
    p95 = next(c for c in doc["checks"] if c["name"] == "p95-latency")
    cand_lat = np.array([d["latency_ms"] for d in docs if d["version"] == CAND])
    assert p95["evidence"]["candidate_ms"] == pytest.approx(float(np.quantile(cand_lat, 0.95)))
    for c in doc["checks"]:
        assert {"n_baseline", "n_candidate", "estimate", "lower", "upper", "margin", "reason"} <= set(c)
    suite = ET.parse(junit).getroot()
    assert len(suite.findall("testcase")) == len(doc["checks"])
    assert not suite.findall("testcase/failure")


def test_human_output_has_banner_table_and_reason(aa_db):
    db, _ = aa_db
    proc = run_toolctl("--db", db, "gate", "--baseline", BASE, "--candidate", CAND, "--until", UNTIL)
    assert proc.returncode == 0
    assert proc.stdout.startswith("VERDICT: PROMOTE")
    assert "p99-latency" in proc.stdout and "interval" in proc.stdout
    assert "Reason: all 7 checks passed." in proc.stdout


@pytest.mark.parametrize("scenario", ["latency_x1.5", "errors_0.3_to_5pct"])
def test_regressed_candidate_never_promotes_and_rolls_back_by_the_second_evaluation(tmp_path, scenario):
    rng = np.random.default_rng(5)
    cand = (gen_arm(rng, CAND, 20000, lat_scale=1.5) if scenario == "latency_x1.5"
            else gen_arm(rng, CAND, 20000, err=0.05))
    db = make_store(tmp_path, gen_arm(rng, BASE, 20000) + cand)
    first = gate(db)
    d1 = _doc(first)
    assert d1["verdict"] in ("hold", "rollback") and first.returncode in (10, 20)
    if d1["verdict"] == "hold":
        second = gate(db)
        d2 = _doc(second)
        assert (d2["verdict"], second.returncode, d2["evaluation"]) == ("rollback", 20, 2)
        assert "consecutive" in d2["reason"]
    hist = run_toolctl("--db", db, "gate", "history", "--format", "json")
    rows = json.loads(hist.stdout)
    assert rows[0]["verdict"] == "rollback" and all(r["verdict"] != "promote" for r in rows)


def test_403_burst_on_3pct_of_candidate_calls_rolls_back_at_once(tmp_path):
    rng = np.random.default_rng(9)
    db = make_store(tmp_path, gen_arm(rng, BASE, 20000) + gen_arm(rng, CAND, 20000, auth=0.03))
    proc = gate(db)
    doc = _doc(proc)
    assert (doc["verdict"], proc.returncode, doc["evaluation"]) == ("rollback", 20, 1)
    auth = next(c for c in doc["checks"] if c["name"] == "auth-failures")
    assert auth["outcome"] == "fail" and auth["severity"] == "critical"
    # The decision is persisted once in the history and once in the audit ledger.
    with Store.open(db, write=False) as store:
        assert store.scalar("SELECT count(*) FROM gate_evaluations") == 1
        payload = json.loads(store.scalar("SELECT payload FROM ledger WHERE kind = 'gate_decision'"))
    assert payload["verdict"] == "rollback" and payload["checks"]["auth-failures"] == "fail"


def test_40_candidate_calls_hold_or_inconclusive_never_decide(tmp_path):
    rng = np.random.default_rng(4)
    db = make_store(tmp_path, gen_arm(rng, BASE, 20000) + gen_arm(rng, CAND, 40))
    for _ in range(2):
        proc = gate(db)
        doc = _doc(proc)
        assert doc["verdict"] in ("hold", "inconclusive") and proc.returncode in (10, 30)
    p99 = next(c for c in doc["checks"] if c["name"] == "p99-latency")
    assert p99["outcome"] == "inconclusive" and p99["more_needed"] == 299 - 40


def test_a_version_with_no_events_is_inconclusive_naming_it_and_uses_up_no_evaluation(tmp_path):
    rng = np.random.default_rng(5)
    db = make_store(tmp_path, gen_arm(rng, BASE, 200) + gen_arm(rng, CAND, 200))
    typo = run_toolctl("--db", db, "gate", "--baseline", BASE, "--candidate", "v2-rc2", "--format", "json")
    for _ in range(7):  # a CI typo looked at again and again: never a hold, never "7/6"
        proc = run_toolctl("--db", db, "gate", "--baseline", BASE, "--candidate", "v2-rc2")
        assert proc.returncode == 30 and "evaluation" not in proc.stdout.splitlines()[0], proc.stdout
    doc = _doc(typo)
    assert typo.returncode == 30 and doc["verdict"] == "inconclusive" and doc["evaluation"] is None
    assert doc["reason"].startswith("no events of candidate version 'v2-rc2' at all")
    assert "known versions: " in doc["reason"] and set(doc["known_versions"]) == {BASE, CAND}
    assert doc["missing_versions"] == ["v2-rc2"] and doc["checks"] == []
    # the same for a baseline typo, with an explicit window (regress answers 30 for no data too)
    doc = _doc(proc := gate(db, "--baseline", "v0", "--since", "2026-11-24T10:00:00Z"))
    assert proc.returncode == 30 and doc["missing_versions"] == ["v0"], doc["reason"]
    # nothing recorded: no history, no ledger decision; the first real look is evaluation 1
    assert json.loads(run_toolctl("--db", db, "gate", "history", "--format", "json").stdout) == []
    log = json.loads(run_toolctl("--db", db, "audit", "log", "--format", "json").stdout)
    assert not [e for e in log if e["kind"] == "gate_decision"]
    assert _doc(gate(db))["evaluation"] == 1


def test_a_tool_with_no_events_is_inconclusive_naming_it_and_uses_up_no_evaluation(tmp_path):
    rng = np.random.default_rng(6)
    db = make_store(tmp_path, gen_arm(rng, BASE, 200) + gen_arm(rng, CAND, 200))
    for _ in range(3):  # `--tool serch` in CI: never a hold that uses up the runbook's looks
        proc = gate(db, "--tool", "serch")
        doc = _doc(proc)
        assert proc.returncode == 30 and doc["verdict"] == "inconclusive", doc["reason"]
    assert doc["evaluation"] is None and doc["checks"] == [] and doc["missing_tools"] == ["serch"]
    assert doc["reason"].startswith("no events of tool 'serch' at all")
    assert "search" in doc["known_tools"] and "known tools: " in doc["reason"]
    # a typo next to a real tool is named too: the gate would silently judge the other alone
    doc = _doc(proc := gate(db, "--tool", "search", "--tool", "serch"))
    assert proc.returncode == 30 and doc["missing_tools"] == ["serch"]
    assert json.loads(run_toolctl("--db", db, "gate", "history", "--format", "json").stdout) == []
    assert _doc(gate(db, "--tool", "search"))["evaluation"] == 1


def test_an_existing_version_with_no_calls_in_the_window_is_still_an_evaluation(tmp_path):
    rng = np.random.default_rng(6)
    db = make_store(tmp_path, gen_arm(rng, BASE, 200) + gen_arm(rng, CAND, 200))
    proc = gate(db, "--since", "2026-11-24T12:00:00Z", "--until", "2026-11-24T13:00:00Z")
    doc = _doc(proc)  # the runbook's on_no_data decides, as before: a look without evidence
    assert proc.returncode == 10 and doc["evaluation"] == 1 and doc["checks"]


def test_the_banner_past_max_evaluations_says_the_limit_not_7_of_6(tmp_path):
    rng = np.random.default_rng(7)
    db = make_store(tmp_path, gen_arm(rng, BASE, 200) + gen_arm(rng, CAND, 200))
    shipped = (REPO / "runbooks" / "canary-promotion.yaml").read_text()
    assert "max_evaluations: 6" in shipped
    rb = tmp_path / "one-look.yaml"
    rb.write_text(shipped.replace("max_evaluations: 6", "max_evaluations: 1"))
    banners = [run_toolctl("--db", db, "gate", "--baseline", BASE, "--candidate", CAND, "--until", UNTIL,
                           "--runbook", rb).stdout.splitlines()[0] for _ in range(2)]
    assert "evaluation 1/1" in banners[0]
    assert "evaluation 2 (limit 1)" in banners[1] and "2/1" not in banners[1]


def test_bad_runbook_is_a_one_line_error_with_exit_2(tmp_path, aa_db):
    db, _ = aa_db
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ntitle: t\ndescription: d\nremediation: [a]\n"
                   "checks:\n  - name: c\n    kind: quantile_compare\n    quantile: 1.5\n    max_ratio: 1.2\n")
    proc = gate(db, "--runbook", bad)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.startswith(f"Error: runbook {bad}: checks.0.quantile_compare.quantile")
    proc = gate(db, "--runbook", tmp_path / "missing.yaml")
    assert proc.returncode == 2 and "cannot read runbook" in proc.stderr


def test_a_runbook_nested_too_deeply_is_a_runbook_error_not_a_recursion_crash(tmp_path):
    from toolctl.gate.runbook import RunbookError, load_runbook

    deep = tmp_path / "deep.yaml"
    deep.write_text("name: x\nchecks: " + "[" * 500 + "]" * 500 + "\n")  # found by fuzzing
    with pytest.raises(RunbookError) as err:
        load_runbook(str(deep))
    assert err.value.exit_code == 2 and "nested too deeply" in err.value.message

def test_a_runbook_key_written_twice_is_refused_with_its_line_not_silently_overridden(tmp_path):
    from toolctl.gate.runbook import RunbookError, load_runbook

    twice = tmp_path / "twice.yaml"
    twice.write_text("name: x\ntitle: t\ndescription: d\nremediation: [a]\nchecks:\n"
                     "  - name: p99\n    kind: quantile_compare\n    quantile: 0.99\n"
                     "    max_ratio: 1.2\n    max_ratio: 5\n")  # a typo'd edit: which one holds?
    with pytest.raises(RunbookError) as err:
        load_runbook(str(twice))
    assert err.value.exit_code == 2
    assert err.value.message == f"runbook {twice}: key 'max_ratio' appears twice (line 10)"
    merged = tmp_path / "merged.yaml"  # a key merged in with `<<` may still be set locally
    merged.write_text("name: x\ntitle: t\ndescription: d\nremediation: [a]\nchecks:\n"
                      "  - &b {name: p99, kind: quantile_compare, quantile: 0.99, max_ratio: 1.2}\n"
                      "  - <<: *b\n    name: p95\n    quantile: 0.95\n")
    assert [(c.name, c.quantile) for c in load_runbook(str(merged)).checks] == [("p99", 0.99), ("p95", 0.95)]


def test_unreadable_store_gives_verdict_error_exit_40(tmp_path):
    db = tmp_path / "junk.duckdb"
    db.write_bytes(b"this is not a duckdb file" * 100)
    proc = gate(db)
    assert proc.returncode == 40
    assert _doc(proc)["verdict"] == "error"


def test_sample_logs_canary_holds_or_rolls_back(tmp_path):
    db = tmp_path / "sample.duckdb"
    with Store.open(db, write=True) as store:
        ingest_paths(store, [str(REPO / "sample_logs")])
    proc = run_toolctl("--db", db, "gate", "--baseline", "v1.8.2", "--candidate", "v1.9.0-rc1",
                       "--until", UNTIL, "--format", "json")
    assert proc.returncode in (10, 20), proc.stderr
    assert _doc(proc)["verdict"] in ("hold", "rollback")


def test_shipped_runbooks_match_the_repo_copies_and_load():
    shipped = REPO / "toolctl" / "gate" / "runbooks"
    names = sorted(p.name for p in (REPO / "runbooks").glob("*.yaml"))
    assert names == sorted(p.name for p in shipped.glob("*.yaml"))
    assert {"canary-promotion.yaml", "auth-mismatch.yaml", "retry-storm.yaml", "schema-breakage.yaml",
            "latency-slo.yaml", "error-budget.yaml"} <= set(names)
    for n in names:
        assert (REPO / "runbooks" / n).read_bytes() == (shipped / n).read_bytes()
    proc = run_toolctl("runbook", "show", "retry-storm")
    assert proc.returncode == 0 and "Remediation" in proc.stdout and "retry_budget" in proc.stdout


def test_runbook_run_flags_the_auth_burst_and_passes_a_quiet_hour(tmp_path):
    rng = np.random.default_rng(2)
    db = make_store(tmp_path, gen_arm(rng, BASE, 3000, auth=0.03))
    bad = run_toolctl("--db", db, "runbook", "run", "auth-mismatch", "--until", UNTIL, "--format", "json")
    assert bad.returncode == 20 and json.loads(bad.stdout)["status"] == "fail"
    db2 = make_store(tmp_path, gen_arm(rng, BASE, 3000), name="quiet")
    ok = run_toolctl("--db", db2, "runbook", "run", "auth-mismatch", "--until", UNTIL, "--format", "json")
    assert ok.returncode == 0 and json.loads(ok.stdout)["status"] == "pass"


def test_baseline_save_and_regress_flags_the_slower_tools(tmp_path):
    from datetime import datetime, timezone

    rng = np.random.default_rng(8)
    end = datetime(2026, 11, 24, 12, 0, 0, tzinfo=timezone.utc).timestamp()
    old = gen_arm(rng, BASE, 9000, start=end - 7200)
    old = [d for d in old if d["ts"] < "2026-11-24T11:00:00"]
    new = gen_arm(rng, CAND, 9000, lat_scale=1.6, start=end - 3600)
    db = make_store(tmp_path, old + new)
    save = run_toolctl("--db", db, "baseline", "save", "stable", "--version", BASE, "--format", "json")
    assert save.returncode == 0, save.stderr
    saved = json.loads(save.stdout)
    assert sum(t["calls"] for t in saved["tools"]) == len(old)
    again = run_toolctl("--db", db, "baseline", "save", "stable")
    assert again.returncode == 2 and "already exists" in again.stderr
    proc = run_toolctl("--db", db, "regress", "--baseline", "stable", "--since", "2026-11-24T11:00:00Z",
                       "--until", UNTIL, "--format", "json")
    doc = json.loads(proc.stdout)
    assert proc.returncode == 20 and doc["verdict"] == "rollback"
    assert doc["regressed_tools"] == ["fetch", "search", "sql"]
    listed = json.loads(run_toolctl("--db", db, "baseline", "list", "--format", "json").stdout)
    assert [b["name"] for b in listed] == ["stable"]
    assert run_toolctl("--db", db, "baseline", "delete", "stable").returncode == 0
    assert run_toolctl("--db", db, "baseline", "show", "stable").returncode == 2
